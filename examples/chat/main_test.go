package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

// timeout bounds every dial, read and write, and the server's shutdown.
const timeout = 10 * time.Second

// server is one run of the example on a loopback port.
type server struct {
	addr string
	stop context.CancelFunc
	done chan error
}

// start runs the example with args on 127.0.0.1:0 and stops it when the test
// ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	s := &server{stop: stop, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard, ready) }()
	select {
	case s.addr = <-ready:
	case err := <-s.done:
		stop()
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		if err := s.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// shutdown stops the server as SIGINT does and returns what run returned.
// It may be called more than once.
func (s *server) shutdown() error {
	s.stop()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(2 * timeout):
		return errors.New("run did not return")
	}
}

// get fetches a path of the server.
func (s *server) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// dial connects a WebSocket client to a path of the server.
func (s *server) dial(t *testing.T, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.addr+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// join connects nickname to a room of the page, resuming after since if it
// is not empty.
func (s *server) join(t *testing.T, room, nickname, since string) *websocket.Conn {
	t.Helper()
	q := url.Values{"nickname": {nickname}}
	if since != "" {
		q.Set("since", since)
	}
	return s.dial(t, "/rooms/"+url.PathEscape(room)+"/chat?"+q.Encode())
}

func readRaw(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("read a %v frame, want text", typ)
	}
	return data
}

// read reads one envelope frame, refusing fields a Message does not have.
func read(t *testing.T, c *websocket.Conn) chatroom.Message {
	t.Helper()
	data := readRaw(t, c)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m chatroom.Message
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("frame %s: %v", data, err)
	}
	if m.ID == 0 || m.Time.IsZero() {
		t.Fatalf("frame %s: no id or time", data)
	}
	return m
}

// readN reads n frames and checks that their IDs increase, but for a
// truncated notice, which takes a new ID before the replayed frames that
// keep theirs (PROTOCOL.md, section 5).
func readN(t *testing.T, c *websocket.Conn, n int) []chatroom.Message {
	t.Helper()
	ms := make([]chatroom.Message, n)
	var prev uint64
	for i := range ms {
		ms[i] = read(t, c)
		if ms[i].Type == chatroom.TypeTruncated {
			continue
		}
		if ms[i].ID <= prev {
			t.Fatalf("frame %d has id %d after %d", i, ms[i].ID, prev)
		}
		prev = ms[i].ID
	}
	return ms
}

func send(t *testing.T, c *websocket.Conn, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	data, err := json.Marshal(map[string]string{"message": text})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, data); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// Frames as the tests expect them: IDs and times are checked by read and
// readN, not compared.
var ignoreStamps = cmpopts.IgnoreFields(chatroom.Message{}, "ID", "Time")

func members(names ...string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeMembers, Members: names}
}

func joined(name string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeJoin, Nickname: name}
}

func left(name string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeLeave, Nickname: name}
}

func message(name, text string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeMessage, Nickname: name, Text: text}
}

func want(t *testing.T, c *websocket.Conn, frames ...chatroom.Message) []chatroom.Message {
	t.Helper()
	got := readN(t, c, len(frames))
	if diff := cmp.Diff(frames, got, ignoreStamps, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("frames (-want +got):\n%s", diff)
	}
	return got
}

func TestPage(t *testing.T) {
	s := start(t)

	resp, page := s.get(t, "/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, ref := range []string{`src="/static/app.js"`, `href="/static/style.css"`, `id="messages"`, `id="members"`, `id="status"`} {
		if !bytes.Contains(page, []byte(ref)) {
			t.Errorf("the page has no %s", ref)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	for path, typ := range map[string]string{
		"/static/app.js":      "text/javascript",
		"/static/style.css":   "text/css",
		"/static/favicon.svg": "image/svg+xml",
	} {
		resp, body := s.get(t, path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) || len(body) == 0 {
			t.Errorf("GET %s = %d %q, %d bytes; want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), typ)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", path)
		}
	}

	// The page renders what it receives as text: it has no way to parse it
	// as HTML.
	_, js := s.get(t, "/static/app.js")
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if bytes.Contains(js, []byte(sink)) {
			t.Errorf("app.js uses %s", sink)
		}
	}

	for _, path := range []string{"/nope", "/static/nope.js", "/static/index.html", "/static/", "/index.html"} {
		if resp, _ := s.get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}

// The tutorial's endpoint speaks the default protocol, byte for byte.
func TestTutorialEndpoint(t *testing.T) {
	s := start(t)
	sei := s.dial(t, "/chat?nickname=sei")
	send(t, sei, "hello")
	if diff := cmp.Diff(`{"nickname":"sei","message":"hello"}`, string(readRaw(t, sei))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	anon := s.dial(t, "/chat")
	send(t, anon, "hi")
	for _, c := range []*websocket.Conn{sei, anon} {
		if diff := cmp.Diff(`{"nickname":"unknown_127.0.0.1","message":"hi"}`, string(readRaw(t, c))); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestRoomChat(t *testing.T) {
	s := start(t)
	ann := s.join(t, "lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	bob := s.join(t, "lobby", "bob", "")
	want(t, bob, joined("ann"), members("ann", "bob"), joined("bob")) // the history, then the list
	want(t, ann, joined("bob"))

	const japanese = "こんにちは、世界 🌏🎉 日本語もOK"
	send(t, ann, japanese)
	raw := readRaw(t, bob)
	if !bytes.Contains(raw, []byte(`"message":"`+japanese+`"`)) {
		t.Errorf("frame %s does not carry the text as UTF-8", raw)
	}
	want(t, ann, message("ann", japanese))

	// Markup is only text: the page must render it so.
	const markup = `<script>alert(1)</script><img src=x onerror="alert(2)">`
	send(t, bob, markup)
	for _, c := range []*websocket.Conn{ann, bob} {
		want(t, c, message("bob", markup))
	}

	bob.Close(websocket.StatusNormalClosure, "")
	want(t, ann, left("bob"))
}

func TestRoomsAreIsolated(t *testing.T) {
	s := start(t)
	ann := s.join(t, "lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	send(t, ann, "only for the lobby")
	want(t, ann, message("ann", "only for the lobby"))

	// Had the lobby's message leaked, it would come before cat's own: it
	// was sent first.
	cat := s.join(t, "台所", "cat", "")
	send(t, cat, "only for the kitchen")
	want(t, cat, members("cat"), joined("cat"), message("cat", "only for the kitchen"))

	tutorial := s.dial(t, "/chat?nickname=tut")
	send(t, tutorial, "only for /chat")
	if got := string(readRaw(t, tutorial)); got != `{"nickname":"tut","message":"only for /chat"}` {
		t.Errorf("/chat read %s", got)
	}

	send(t, ann, "still only the lobby")
	want(t, ann, message("ann", "still only the lobby"))

	if resp, body := s.get(t, "/rooms/no%20spaces/chat"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("invalid room name: %d %s, want 400", resp.StatusCode, body)
	}
}

func TestHistoryResume(t *testing.T) {
	s := start(t, "-history", "50")
	ann := s.join(t, "lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	bob := s.join(t, "lobby", "bob", "")
	want(t, bob, joined("ann"), members("ann", "bob"), joined("bob")) // the history, then the list
	want(t, ann, joined("bob"))

	send(t, ann, "one")
	want(t, ann, message("ann", "one"))
	last := want(t, bob, message("ann", "one"))[0].ID

	// Bob goes away; ann talks on.
	bob.Close(websocket.StatusGoingAway, "")
	want(t, ann, left("bob"))
	send(t, ann, "two")
	send(t, ann, "three 🍣")
	missed := want(t, ann, message("ann", "two"), message("ann", "three 🍣"))

	// Bob resumes: exactly what he missed, with the IDs ann saw, then the
	// member list and his join.
	bob = s.join(t, "lobby", "bob", strconv.FormatUint(last, 10))
	got := want(t, bob, left("bob"), message("ann", "two"), message("ann", "three 🍣"), members("ann", "bob"), joined("bob"))
	if diff := cmp.Diff(missed, got[1:3]); diff != "" {
		t.Errorf("replayed frames differ from the live ones (-live +replayed):\n%s", diff)
	}
	want(t, ann, joined("bob"))

	// A newcomer gets the whole history; a client that resumes from an ID
	// this room never gave (a server restart) is told that some is gone.
	history := []chatroom.Message{
		joined("ann"), joined("bob"), message("ann", "one"), left("bob"),
		message("ann", "two"), message("ann", "three 🍣"), joined("bob"),
	}
	cat := s.join(t, "lobby", "cat", "")
	want(t, cat, append(history, members("ann", "bob", "cat"), joined("cat"))...)
	dan := s.join(t, "lobby", "dan", "1")
	truncated := chatroom.Message{Type: chatroom.TypeTruncated}
	want(t, dan, append(append([]chatroom.Message{truncated}, history...),
		joined("cat"), members("ann", "bob", "cat", "dan"), joined("dan"))...)
}

func TestHistoryFlag(t *testing.T) {
	for _, tt := range []struct {
		history string
		replay  []chatroom.Message
	}{
		{"2", []chatroom.Message{message("ann", "b"), message("ann", "c")}},
		{"0", nil},
	} {
		t.Run("history="+tt.history, func(t *testing.T) {
			s := start(t, "-history", tt.history)
			ann := s.join(t, "lobby", "ann", "")
			want(t, ann, members("ann"), joined("ann"))
			for _, text := range []string{"a", "b", "c"} {
				send(t, ann, text)
				want(t, ann, message("ann", text))
			}
			bob := s.join(t, "lobby", "bob", "")
			want(t, bob, append(tt.replay, members("ann", "bob"), joined("bob"))...)
		})
	}
}

// SIGINT's path: the context ends, every member gets 1001, run returns nil.
func TestShutdown(t *testing.T) {
	s := start(t)
	ann := s.join(t, "lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	sei := s.dial(t, "/chat?nickname=sei")
	send(t, sei, "hello")
	readRaw(t, sei)

	// Read while the server shuts down, so that the close handshakes
	// complete at once.
	codes := make(chan websocket.StatusCode, 2)
	for _, c := range []*websocket.Conn{ann, sei} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, _, err := c.Read(ctx)
			codes <- websocket.CloseStatus(err)
		}()
	}
	if err := s.shutdown(); err != nil {
		t.Fatalf("run = %v, want nil after a clean shutdown", err)
	}
	for range 2 {
		if code := <-codes; code != websocket.StatusGoingAway {
			t.Errorf("a client saw close status %d, want 1001", code)
		}
	}
}

// The server closes idle keep-alive connections after -idle-timeout, while
// members of both kinds of room outlive -read-timeout and -write-timeout:
// those bound ordinary requests, not WebSockets.
func TestTimeouts(t *testing.T) {
	limits := servetest.Short()
	s := start(t, servetest.Args(limits)...)
	joinedAt := time.Now()
	ann := s.join(t, "lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	tut := s.dial(t, "/chat?nickname=tut")

	t.Log(servetest.ExpectIdleClosed(t, s.addr, "/", 200, limits.IdleTimeout))

	servetest.ExpectOutlived(t, limits, joinedAt)
	send(t, ann, "still here")
	want(t, ann, message("ann", "still here"))
	send(t, tut, "me too")
	if got := string(readRaw(t, tut)); got != `{"nickname":"tut","message":"me too"}` {
		t.Errorf("/chat read %s", got)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-history", "-1"}, {"-history", "many"}, {"extra"}, {"-idle-timeout", "0s"}, {"-max-header-bytes", "-1"}} {
		if err := run(context.Background(), args, io.Discard, nil); err == nil {
			t.Errorf("run accepted %q", args)
		}
	}
}

func TestDisplayAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"[::]:8000", "localhost:8000"},
		{"0.0.0.0:8000", "localhost:8000"},
		{"127.0.0.1:8000", "127.0.0.1:8000"},
		{"nonsense", "nonsense"},
	} {
		if got := displayAddr(fakeAddr(tt.in)); got != tt.want {
			t.Errorf("displayAddr(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
