package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

const key = "test-key"

func TestRoutes(t *testing.T) {
	srv := start(t, "-api-key", key)
	for _, tt := range []struct {
		name, path, key string
		status          int
		body            string // "": not checked
	}{
		{"health needs no key", "/healthz", "", 200, "ok\n"},
		{"rooms without key", "/api/v1/rooms", "", 401, "missing or invalid API key\n"},
		{"rooms with a wrong key", "/api/v1/rooms", "nope", 401, "missing or invalid API key\n"},
		{"no rooms yet", "/api/v1/rooms", key, 200, "[]\n"},
		{"unknown route", "/api/v1/nope", key, 404, "404 page not found\n"},
		{"not a WebSocket", "/api/v1/rooms/lobby/ws", key, 426, ""}, // body: coder/websocket's
		{"invalid room name", "/api/v1/rooms/a%20b/ws", key, 400, "chatroom: invalid room name: ' ' not allowed\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, "http://"+srv.addr+tt.path, tt.key)
			if status != tt.status || tt.body != "" && body != tt.body {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, status, body, tt.status, tt.body)
			}
		})
	}
}

func TestRoomsBehindMiddleware(t *testing.T) {
	srv := start(t, "-api-key", key)
	base := "ws://" + srv.addr + "/api/v1/rooms/"

	// The key in a header (non-browser clients) or in the query (browsers).
	sei := dial(t, base+"lobby/ws?nickname=sei", http.Header{"X-Api-Key": {key}})
	say(t, sei, "hello")
	expect(t, sei, `{"nickname":"sei","message":"hello"}`) // sei has joined
	ann := dial(t, base+"lobby/ws?nickname=ann&api_key="+key, nil)
	say(t, ann, "hi sei")
	expect(t, ann, `{"nickname":"ann","message":"hi sei"}`)
	expect(t, sei, `{"nickname":"ann","message":"hi sei"}`)
	kai := dial(t, base+"support/ws?nickname=kai&api_key="+key, nil)
	say(t, kai, "anyone?")
	expect(t, kai, `{"nickname":"kai","message":"anyone?"}`)

	// Rooms share nothing: the lobby's next frame is its own.
	say(t, sei, "just us")
	for _, c := range []*websocket.Conn{sei, ann} {
		expect(t, c, `{"nickname":"sei","message":"just us"}`)
	}

	// Every member above has received its own echo, so it has joined.
	status, body := get(t, "http://"+srv.addr+"/api/v1/rooms", key)
	var rooms []roomJSON
	if err := json.Unmarshal([]byte(body), &rooms); status != 200 || err != nil {
		t.Fatalf("GET /api/v1/rooms = %d %q (%v)", status, body, err)
	}
	want := []roomJSON{{Name: "lobby", Members: 2}, {Name: "support", Members: 1}}
	if diff := cmp.Diff(want, rooms); diff != "" {
		t.Errorf("rooms (-want +got):\n%s", diff)
	}

	// SIGINT's path: every member receives 1001 and run returns nil.
	srv.stop()
	for _, c := range []*websocket.Conn{sei, ann, kai} {
		expectClose(t, c, websocket.StatusGoingAway, "room closed")
	}
	if err := srv.wait(); err != nil {
		t.Fatalf("run = %v, want nil", err)
	}
}

// The logging middleware sees the upgrade's status, 101, and logs no key.
func TestLogsUpgrade(t *testing.T) {
	rooms := chatroom.NewRegistry()
	defer rooms.Close()
	var logs syncBuffer
	h := newHandler(rooms, key, slog.New(slog.NewTextHandler(&logs, nil)))
	served := make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		served <- struct{}{} // the middleware has logged
	}))
	defer ts.Close()

	c := dial(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/api/v1/rooms/lobby/ws?nickname=sei&api_key="+key, nil)
	say(t, c, "hello")
	expect(t, c, `{"nickname":"sei","message":"hello"}`)
	c.Close(websocket.StatusNormalClosure, "")
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler chain did not return")
	}
	out := logs.String()
	if !strings.Contains(out, "method=GET path=/api/v1/rooms/lobby/ws status=101") {
		t.Errorf("the logging middleware did not see the upgrade:\n%s", out)
	}
	if strings.Contains(out, key) {
		t.Errorf("the API key is in the logs:\n%s", out)
	}
}

func TestUpgradeRefusedWithoutKey(t *testing.T) {
	srv := start(t, "-api-key", key)
	for _, url := range []string{
		"ws://" + srv.addr + "/api/v1/rooms/lobby/ws?nickname=sei",
		"ws://" + srv.addr + "/api/v1/rooms/lobby/ws?nickname=sei&api_key=wrong",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, resp, err := websocket.Dial(ctx, url, nil)
		cancel()
		if err == nil {
			c.CloseNow()
			t.Fatalf("%s: upgraded without the key", url)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %v, want HTTP 401", url, err)
		}
	}
}

// The comment on statusWriter.Unwrap says what happens to a wrapper that
// hides http.Hijacker. So it is.
func TestWrapperWithoutUnwrap(t *testing.T) {
	rooms := chatroom.NewRegistry()
	defer rooms.Close()
	mux := http.NewServeMux()
	mux.Handle("/rooms/{room}", rooms)
	hide := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(struct{ http.ResponseWriter }{w}, r)
	})
	ts := httptest.NewServer(hide)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/rooms/lobby", nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("upgraded through a wrapper that hides http.Hijacker")
	}
	if resp == nil || resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("%v, want HTTP 501", err)
	}
}

// The server closes idle keep-alive connections after -idle-timeout, while
// a member outlives -read-timeout and -write-timeout: those bound ordinary
// requests, not WebSockets, even through the middleware.
func TestTimeouts(t *testing.T) {
	limits := servetest.Short()
	srv := start(t, append([]string{"-api-key", key}, servetest.Args(limits)...)...)
	joinedAt := time.Now()
	sei := dial(t, "ws://"+srv.addr+"/api/v1/rooms/lobby/ws?nickname=sei&api_key="+key, nil)
	say(t, sei, "hello")
	expect(t, sei, `{"nickname":"sei","message":"hello"}`)

	t.Log(servetest.ExpectIdleClosed(t, srv.addr, "/healthz", 200, limits.IdleTimeout))

	servetest.ExpectOutlived(t, limits, joinedAt)
	say(t, sei, "still here")
	expect(t, sei, `{"nickname":"sei","message":"still here"}`)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-api-key", ""}, {"extra"}, {"-read-timeout", "0s"}} {
		if err := run(t.Context(), args, io.Discard, nil); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}

// server is the example running on a loopback port.
type server struct {
	addr string
	stop context.CancelFunc // SIGINT
	done chan error
	once sync.Once
	err  error
}

// start runs the example with args on 127.0.0.1 and shuts it down when the
// test ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	s := &server{stop: stop, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { s.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard, ready) }()
	select {
	case s.addr = <-ready:
	case err := <-s.done:
		stop()
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		if err := s.wait(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

// wait stops the server and returns what run returned.
func (s *server) wait() error {
	s.once.Do(func() {
		s.stop()
		s.err = <-s.done
	})
	return s.err
}

// get fetches url with the API key, if any, and returns the status and body.
func get(t *testing.T, url, apiKey string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if apiKey != "" {
		req.Header.Set("X-API-Key", apiKey)
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
	return resp.StatusCode, string(body)
}

func dial(t *testing.T, url string, header http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func say(t *testing.T, c *websocket.Conn, text string) {
	t.Helper()
	frame, err := json.Marshal(map[string]string{"message": text})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// expect reads the next frame and compares it with want, byte for byte.
func expect(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("frame (-want +got):\n%s", diff)
	}
}

func expectClose(t *testing.T, c *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, frame, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("read = %q, %v; want close %d %q", frame, err, code, reason)
	}
	want := websocket.CloseError{Code: code, Reason: reason}
	if diff := cmp.Diff(want, ce); diff != "" {
		t.Errorf("close (-want +got):\n%s", diff)
	}
}

// syncBuffer collects the server's logs, which several goroutines write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
