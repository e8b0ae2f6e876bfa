package chatroomtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// clientHeader tags each handshake request of the kit's clients, so that the
// server learns when the handler has finished with it. It is removed before
// the handler sees the request.
const clientHeader = "Chatroomtest-Client"

var errServerClosed = errors.New("chatroomtest: the server is closed")

// shutdowner is a handler that can be shut down gracefully: a
// *chatroom.Room, a *chatroom.Registry, or what Mount returns for them.
type shutdowner interface {
	Shutdown(ctx context.Context) error
}

// A Server serves a chat handler on a loopback httptest.Server and connects
// clients to it. Create one with NewServer, or with Remote for a server the
// test runs itself; it is closed when the test ends.
type Server struct {
	// URL is the server's base URL, "ws://127.0.0.1:port", with no path.
	// Clients of other WebSocket libraries can dial it; the kit's own
	// clients use Connect.
	URL string

	t        TB
	handler  http.Handler     // nil for Remote
	http     *httptest.Server // nil for Remote
	defaults []Option
	timeout  time.Duration

	mu      sync.Mutex // guards the fields below
	clients []*Client
	served  map[string]chan struct{} // by clientHeader: closed once the handler has returned
	nextID  int
	closed  bool

	closeOnce sync.Once
}

// NewServer starts a loopback HTTP server that serves h, typically a
// *chatroom.Room, at every path. opts apply to every client the server
// connects. The server is closed when the test ends, with t.Cleanup; see
// Close for what closing does.
//
// If h has a method Shutdown(context.Context) error, as *chatroom.Room and
// *chatroom.Registry do, the server owns it: closing the server shuts h down
// first, so that every member is sent close status 1001 and every leave hook
// has finished before the test ends. To keep a room open beyond the server,
// hide the method: NewServer(t, http.HandlerFunc(room.ServeHTTP)).
func NewServer(t TB, h http.Handler, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		t:        t,
		handler:  h,
		defaults: opts,
		timeout:  newSettings(opts).timeout,
		served:   make(map[string]chan struct{}),
	}
	s.http = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = "ws" + strings.TrimPrefix(s.http.URL, "http")
	t.Cleanup(s.Close)
	return s
}

// Remote returns a Server that connects clients to a chat server the test
// runs itself, rather than one NewServer starts: a host's own http.Server,
// with its real middleware and limits, or a process the test has started.
// url is that server's base URL, such as "ws://127.0.0.1:8080" ("http" and
// "https" stand for "ws" and "wss"); a path in it is every client's default
// path, as if given with Path, and its query parameters every client's, as
// with Query. opts apply to every client, as NewServer's do.
//
//	addr := startApp(t) // the host's server, on a loopback port
//	srv := chatroomtest.Remote(t, "ws://"+addr, chatroomtest.Path("/chat"))
//	ann := srv.Connect("ann")
//
// The kit does not serve the requests, so it cannot tell when the handler
// has returned: Connect and Dial return as soon as the WebSocket handshake
// is done, as with NoJoinWait, and the client may not have joined yet. Before
// another client talks to the room, have this one receive something that
// proves it has joined: its own message back, its join notice, a greeting
// from the join hook.
//
// Close, and the test's cleanup, drop the clients' connections and wait for
// their reader goroutines; they leave the server itself to the test. Remote
// fails the test with Fatalf if url is not a base URL it can dial.
func Remote(t TB, url string, opts ...Option) *Server {
	t.Helper()
	u, err := neturl.Parse(url)
	if err == nil {
		switch u.Scheme {
		case "ws", "wss":
		case "http", "https":
			u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
		default:
			err = fmt.Errorf("scheme %q, want ws or wss", u.Scheme)
		}
	}
	if err == nil && (u.Host == "" || u.User != nil || u.Fragment != "") {
		err = errors.New("want ws://host:port[/path][?query]")
	}
	if err != nil {
		t.Fatalf("chatroomtest: Remote(%q): %v", url, err)
		return nil
	}
	var defaults []Option
	if u.Path != "" && u.Path != "/" {
		defaults = append(defaults, Path(u.Path))
	}
	for key, values := range u.Query() {
		for _, v := range values {
			defaults = append(defaults, Query(key, v))
		}
	}
	defaults = append(defaults, opts...)
	s := &Server{
		URL:      u.Scheme + "://" + u.Host,
		t:        t,
		defaults: defaults,
		timeout:  newSettings(defaults).timeout,
		served:   make(map[string]chan struct{}),
	}
	t.Cleanup(s.Close)
	return s
}

// serveHTTP serves a request with the handler, and tells the client that
// sent it when the handler has returned.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get(clientHeader); id != "" {
		r = r.Clone(r.Context())
		r.Header.Del(clientHeader)
		defer s.handlerReturned(id)
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Server) handlerReturned(id string) {
	s.mu.Lock()
	ch := s.served[id]
	delete(s.served, id)
	s.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// Connect connects a client with the given nickname (the "nickname" query
// parameter; none if empty) and waits until the handler has returned for its
// request, which for a chatroom.Room means that the client has joined or has
// been refused (see NoJoinWait). A client refused after the upgrade, by the
// join hook or the authenticator, is returned: check its close status with
// Client.ExpectClose. Connect fails the test with Fatalf if the handshake
// fails, for example when the handler answers with an HTTP error; use Dial to
// test those. A Server made by Remote does not wait for the join (see
// Remote).
//
// Call Connect from the test's goroutine only.
func (s *Server) Connect(nickname string, opts ...Option) *Client {
	s.t.Helper()
	c, _, err := s.Dial(nickname, opts...)
	if err != nil {
		s.t.Fatalf("chatroomtest: Connect: %v", err)
		return nil
	}
	return c
}

// Dial is Connect that returns the handshake's error instead of failing the
// test, together with the HTTP response if there was one: a handler that
// refuses the request before the upgrade (an invalid nickname, a room shut
// down, WithHTTPUnauthorized) answers with an HTTP status, and the response
// body holds the first kilobyte of its plain-text reason. The error wraps the
// error of websocket.Dial, or context.DeadlineExceeded if the handler did not
// return in time.
//
// Dial does not call Fatalf and may be called from any goroutine; the client
// it returns reports to the server's TB, from the test's goroutine only.
func (s *Server) Dial(nickname string, opts ...Option) (*Client, *http.Response, error) {
	cfg := newSettings(s.defaults, opts)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, errServerClosed
	}
	s.nextID++
	id := strconv.Itoa(s.nextID)
	served := make(chan struct{})
	s.served[id] = served
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.served, id)
		s.mu.Unlock()
	}()

	query := cfg.query
	if nickname != "" {
		query.Set("nickname", nickname)
	}
	u := s.URL + cfg.path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	name := fmt.Sprintf("client %q", nickname)
	if nickname == "" {
		name = "client #" + id
	}

	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	header := cfg.header.Clone()
	dialOpts := &websocket.DialOptions{HTTPHeader: header}
	if s.http != nil {
		header.Set(clientHeader, id)
		dialOpts.HTTPClient = s.http.Client()
	}
	conn, resp, err := websocket.Dial(ctx, u, dialOpts)
	if err != nil {
		return nil, resp, fmt.Errorf("chatroomtest: %s: dial %s: %w", name, u, err)
	}
	c := newClient(s.t, name, nickname, conn, cfg)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.stop()
		return nil, resp, errServerClosed
	}
	s.clients = append(s.clients, c)
	s.mu.Unlock()

	if cfg.joinWait && s.http != nil {
		select {
		case <-served:
		case <-ctx.Done():
			return nil, resp, fmt.Errorf("chatroomtest: %s: the handler did not return within %v (a join hook that blocks? see NoJoinWait): %w",
				name, cfg.timeout, ctx.Err())
		}
	}
	return c, resp, nil
}

// Close closes the server, as the test's cleanup does; it may be called
// earlier, and more than once. In order, it shuts the handler down if the
// server owns it (see NewServer), within the server's timeout; drops every
// client's connection and waits for the client's reader goroutine; then
// closes the HTTP server. For a Server made by Remote, it only drops the
// clients. A failure to shut down is reported with Errorf.
//
// After Close, a Room the server owned has run every leave hook, so a test
// can check what they did; clients can still read what they received before.
func (s *Server) Close() {
	s.t.Helper()
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()

		if sd, ok := s.handler.(shutdowner); ok {
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			err := sd.Shutdown(ctx)
			cancel()
			if err != nil {
				s.t.Errorf("chatroomtest: shutting the handler down: %v", err)
			}
		}

		s.mu.Lock()
		clients := s.clients
		s.clients = nil
		s.mu.Unlock()
		for _, c := range clients {
			if err := c.stop(); err != nil {
				s.t.Errorf("chatroomtest: %v", err)
			}
		}
		if s.http != nil {
			s.http.Close()
		}
	})
}
