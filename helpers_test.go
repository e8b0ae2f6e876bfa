package chatroom

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testTimeout bounds every wait in the tests; nothing waits for it to pass.
const testTimeout = 20 * time.Second

// leaveEvent is what the leave hook of a testRoom reports.
type leaveEvent struct {
	nickname string
	reason   error
}

// testRoom is a Room behind an httptest server, with its join and leave
// events on channels so tests synchronise on them instead of sleeping.
type testRoom struct {
	t        *testing.T
	room     *Room
	srv      *httptest.Server
	joined   chan *Member
	left     chan leaveEvent
	handlers sync.WaitGroup
}

// newTestRoom starts a room; opts come after the test's own leave hook, so a
// test that sets OnLeave replaces it (and then gets no events on left).
func newTestRoom(t *testing.T, opts ...Option) *testRoom {
	t.Helper()
	return newTestRoomServer(t, nil, opts...)
}

// newTestRoomServer is newTestRoom with a chance to configure the HTTP server
// (its handler included) before it starts.
func newTestRoomServer(t *testing.T, configure func(*http.Server), opts ...Option) *testRoom {
	t.Helper()
	tr := &testRoom{t: t, joined: make(chan *Member, 1024), left: make(chan leaveEvent, 1024)}
	opts = append([]Option{OnLeave(func(_ context.Context, m *Member, reason error) {
		tr.left <- leaveEvent{m.Nickname(), reason}
	})}, opts...)
	tr.room = New(opts...)
	tr.room.cfg.joined = func(m *Member) { tr.joined <- m }
	tr.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.handlers.Add(1)
		defer tr.handlers.Done()
		tr.room.ServeHTTP(w, r)
	}))
	if configure != nil {
		configure(tr.srv.Config)
	}
	tr.srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := tr.room.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		tr.srv.Close()
		tr.handlers.Wait()
		checkNoGoroutinesLeft(t)
	})
	return tr
}

// url returns the WebSocket URL of the room with the given raw query.
func (tr *testRoom) url(query string) string {
	u := "ws" + strings.TrimPrefix(tr.srv.URL, "http")
	if query != "" {
		u += "?" + query
	}
	return u
}

// dialRaw connects without waiting for the member to join.
func (tr *testRoom) dialRaw(query string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return websocket.Dial(ctx, tr.url(query), opts)
}

// join connects a client named nickname and waits until it is a member.
func (tr *testRoom) join(nickname string) *client {
	tr.t.Helper()
	return tr.joinWith("nickname="+nickname, nil)
}

func (tr *testRoom) joinWith(query string, opts *websocket.DialOptions) *client {
	tr.t.Helper()
	conn, _, err := tr.dialRaw(query, opts)
	if err != nil {
		tr.t.Fatalf("dial %q: %v", query, err)
	}
	tr.t.Cleanup(func() { _ = conn.CloseNow() })
	m := tr.waitJoin()
	return &client{t: tr.t, conn: conn, member: m}
}

func (tr *testRoom) waitJoin() *Member {
	tr.t.Helper()
	select {
	case m := <-tr.joined:
		return m
	case <-time.After(testTimeout):
		tr.t.Fatal("timed out waiting for a member to join")
		return nil
	}
}

// waitLeave returns the next leave event.
func (tr *testRoom) waitLeave() leaveEvent {
	tr.t.Helper()
	select {
	case ev := <-tr.left:
		return ev
	case <-time.After(testTimeout):
		tr.t.Fatal("timed out waiting for a member to leave")
		return leaveEvent{}
	}
}

// expectLeave waits for the next leave and checks its nickname and reason.
func (tr *testRoom) expectLeave(nickname string, want error) leaveEvent {
	tr.t.Helper()
	ev := tr.waitLeave()
	if ev.nickname != nickname || !errors.Is(ev.reason, want) {
		tr.t.Fatalf("leave = (%q, %v), want (%q, %v)", ev.nickname, ev.reason, nickname, want)
	}
	return ev
}

// client is a test WebSocket client.
type client struct {
	t      *testing.T
	conn   *websocket.Conn
	member *Member
}

func (c *client) sendRaw(typ websocket.MessageType, data string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, typ, []byte(data)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends {"message": text}.
func (c *client) send(text string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"message": text})
	c.sendRaw(websocket.MessageText, string(b))
}

// readRaw returns the next frame as a string; it fails on a binary frame.
func (c *client) readRaw() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		return "", err
	}
	if typ != websocket.MessageText {
		return "", errors.New("received a binary frame")
	}
	return string(b), nil
}

func (c *client) read() string {
	c.t.Helper()
	s, err := c.readRaw()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return s
}

// expectClose reads until the connection closes and checks the status and
// reason the server sent.
func (c *client) expectClose(code websocket.StatusCode, reason string) {
	c.t.Helper()
	for {
		_, err := c.readRaw()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close status %d %q", err, code, reason)
		}
		if ce.Code != code || (reason != "" && ce.Reason != reason) {
			c.t.Fatalf("close = %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
		}
		return
	}
}

// frame returns the exact wire form of a message.
func frame(nickname, text string) string {
	return Message{Nickname: nickname, Text: text}.wire()
}

func (m Message) wire() string { return string(m.appendJSON(nil)) }

// checkNoGoroutinesLeft fails if any goroutine is still running code of this
// package's Room or Member. Call it only after the room has shut down and the
// server's handlers have returned. A goroutine may have signalled that it is
// done (wg.Done) and still be on its way out; exit has no event to wait on, so
// the check yields the processor, without sleeping, until they are gone or a
// bound passes.
func checkNoGoroutinesLeft(t *testing.T) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
		if left = ourGoroutines(); len(left) == 0 {
			return
		}
	}
	for _, g := range left {
		t.Errorf("goroutine left behind:\n%s", g)
	}
}

func ourGoroutines() []string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "chatroom.(*Member)") || strings.Contains(g, "chatroom.(*Room)") || strings.Contains(g, "chatroom.(*cluster)") {
			ours = append(ours, g)
		}
	}
	return ours
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
