package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
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
			status, body := get(t, "http://"+srv.Ready+tt.path, tt.key)
			if status != tt.status || tt.body != "" && body != tt.body {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, status, body, tt.status, tt.body)
			}
		})
	}
}

func TestRoomsBehindMiddleware(t *testing.T) {
	srv := start(t, "-api-key", key)
	lobby := chatroomtest.Path("/api/v1/rooms/lobby/ws")

	// The key in a header (non-browser clients) or in the query (browsers).
	sei := srv.chat.Connect("sei", lobby, chatroomtest.Header("X-Api-Key", key))
	sei.Send("hello")
	sei.Expect(msg("sei", "hello")) // sei has joined
	ann := srv.chat.Connect("ann", lobby, chatroomtest.Query("api_key", key))
	ann.Send("hi sei")
	ann.Expect(msg("ann", "hi sei"))
	sei.Expect(msg("ann", "hi sei"))
	kai := srv.chat.Connect("kai", chatroomtest.Path("/api/v1/rooms/support/ws"), chatroomtest.Query("api_key", key))
	kai.Send("anyone?")
	kai.Expect(msg("kai", "anyone?"))

	// Rooms share nothing: the lobby's next frame is its own.
	sei.Send("just us")
	for _, c := range []*chatroomtest.Client{sei, ann} {
		c.Expect(msg("sei", "just us"))
	}

	// Every member above has received its own echo, so it has joined.
	status, body := get(t, "http://"+srv.Ready+"/api/v1/rooms", key)
	var rooms []roomJSON
	if err := json.Unmarshal([]byte(body), &rooms); status != 200 || err != nil {
		t.Fatalf("GET /api/v1/rooms = %d %q (%v)", status, body, err)
	}
	want := []roomJSON{{Name: "lobby", Members: 2}, {Name: "support", Members: 1}}
	if diff := cmp.Diff(want, rooms); diff != "" {
		t.Errorf("rooms (-want +got):\n%s", diff)
	}

	// SIGINT's path: every member receives 1001 and run returns nil.
	if err := srv.Stop(); err != nil {
		t.Fatalf("run = %v, want nil", err)
	}
	for _, c := range []*chatroomtest.Client{sei, ann, kai} {
		c.ExpectCloseReason(websocket.StatusGoingAway, "room closed")
	}
}

// The logging middleware sees the upgrade's status, 101, and logs no key.
func TestLogsUpgrade(t *testing.T) {
	rooms := chatroom.NewRegistry()
	defer rooms.Close()
	var logs syncBuffer
	// The kit serves the application's handler and returns from Connect
	// once the handler has returned, and so the logging middleware has
	// logged.
	srv := chatroomtest.NewServer(t, newHandler(rooms, key, slog.New(slog.NewTextHandler(&logs, nil))))
	c := srv.Connect("sei", chatroomtest.Path("/api/v1/rooms/lobby/ws"), chatroomtest.Query("api_key", key))
	c.Send("hello")
	c.Expect(msg("sei", "hello"))
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
	lobby := chatroomtest.Path("/api/v1/rooms/lobby/ws")
	for _, opts := range [][]chatroomtest.Option{
		{lobby},
		{lobby, chatroomtest.Query("api_key", "wrong")},
		{lobby, chatroomtest.Header("X-API-Key", "wrong")},
	} {
		c, resp, err := srv.chat.Dial("sei", opts...)
		if c != nil {
			t.Fatalf("%v: upgraded without the key", err)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%v, want HTTP 401", err)
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
	srv := chatroomtest.NewServer(t, hide)
	c, resp, err := srv.Dial("sei", chatroomtest.Path("/rooms/lobby"))
	if c != nil {
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
	sei := srv.chat.Connect("sei", chatroomtest.Path("/api/v1/rooms/lobby/ws"), chatroomtest.Query("api_key", key))
	sei.Send("hello")
	sei.Expect(msg("sei", "hello"))

	t.Log(servetest.ExpectIdleClosed(t, srv.Ready, "/healthz", 200, limits.IdleTimeout))

	servetest.ExpectOutlived(t, limits, joinedAt)
	sei.Send("still here")
	sei.Expect(msg("sei", "still here"))
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-api-key", ""}, {"extra"}, {"-read-timeout", "0s"}} {
		if err := run(t.Context(), args, io.Discard, nil); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}

// msg is a frame of the default protocol, {"nickname","message"}.
func msg(nickname, text string) chatroom.Message {
	return chatroom.Message{Nickname: nickname, Text: text}
}

// example is one run of the example on a loopback port.
type example struct {
	*servetest.Server[string]
	chat *chatroomtest.Server // connects the kit's clients to it
}

// start runs the example with args on 127.0.0.1 and shuts it down when the
// test ends.
func start(t *testing.T, args ...string) *example {
	t.Helper()
	s := servetest.Start(t, run, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	return &example{Server: s, chat: chatroomtest.Remote(t, "ws://"+s.Ready)}
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
	resp, body := servetest.Do(t, req)
	return resp.StatusCode, string(body)
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
