package chatroom

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// testEpoch is the fixed clock of tests that check envelope frames.
var testEpoch = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testEpoch }

// firstTestID is the first frame ID of an unnamed room on the fixed clock;
// testID(i) is its i-th (from 0).
var firstTestID = idBase(testEpoch, roomTag("")) + idStride

func testID(i int) uint64 { return firstTestID + uint64(i)*idStride }

// ignoreStamps compares frames without their ID and time.
var ignoreStamps = cmpopts.IgnoreFields(Message{}, "ID", "Time")

// readMsg reads the next frame and decodes it.
func (c *client) readMsg() Message {
	c.t.Helper()
	var m Message
	s := c.read()
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		c.t.Fatalf("frame %s: %v", s, err)
	}
	return m
}

// sendTo sends a direct message.
func (c *client) sendTo(to, text string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"message": text, "to": to})
	c.sendRaw(websocket.MessageText, string(b))
}

// withJoinedSeam calls fn on the member's goroutine once it is a member.
// sameOptions gives every room of a registry opts.
func sameOptions(opts ...Option) func(string) []Option {
	return func(string) []Option { return opts }
}

func withJoinedSeam(fn func(*Member)) Option {
	return func(c *config) { c.joined = fn }
}

func withFinishedSeam(fn func()) Option {
	return func(c *config) { c.finished = fn }
}

// hijackSpy tells whether the handler it was given to hijacked the
// connection.
type hijackSpy struct {
	http.ResponseWriter
	hijacked bool
}

func (h *hijackSpy) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

func (h *hijackSpy) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// roomEvent is a join or leave seen by a testRegistry.
type roomEvent struct {
	room, nickname string
	reason         error
}

// testRegistry is a Registry mounted at /rooms/{room}/chat of a ServeMux
// behind an httptest server. Joins and leaves arrive on channels, and done
// receives once per request the registry has finished with, room bookkeeping
// included: when the handler returns, or for an upgraded connection when its
// goroutine ends.
type testRegistry struct {
	t        *testing.T
	reg      *Registry
	srv      *httptest.Server
	joined   chan roomEvent
	left     chan roomEvent
	done     chan struct{}
	handlers sync.WaitGroup
}

func newTestRegistry(t *testing.T, opts ...RegistryOption) *testRegistry {
	t.Helper()
	tg := &testRegistry{t: t, joined: make(chan roomEvent, 1024), left: make(chan roomEvent, 1024), done: make(chan struct{}, 1024)}
	// The test's room options come after the seams, as a registry
	// option given last would win.
	var given registryConfig
	for _, opt := range opts {
		opt(&given)
	}
	seams := WithRoomOptions(func(name string) []Option {
		roomOpts := []Option{
			withJoinedSeam(func(m *Member) { tg.joined <- roomEvent{room: m.room.Name(), nickname: m.Nickname()} }),
			withFinishedSeam(func() { tg.done <- struct{}{} }),
			OnLeave(func(_ context.Context, m *Member, reason error) {
				tg.left <- roomEvent{room: m.room.Name(), nickname: m.Nickname(), reason: reason}
			}),
		}
		if given.roomOptions != nil {
			roomOpts = append(roomOpts, given.roomOptions(name)...)
		}
		return roomOpts
	})
	tg.reg = NewRegistry(append(opts, seams)...)
	mux := http.NewServeMux()
	mux.Handle("/rooms/{room}/chat", tg.reg)
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.handlers.Add(1)
		defer tg.handlers.Done()
		spy := &hijackSpy{ResponseWriter: w}
		mux.ServeHTTP(spy, r)
		if !spy.hijacked {
			tg.done <- struct{}{}
		}
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := tg.reg.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		tg.srv.Close()
		tg.handlers.Wait()
		checkNoGoroutinesLeft(t)
	})
	return tg
}

func (tg *testRegistry) url(room, query string) string {
	u := "ws" + strings.TrimPrefix(tg.srv.URL, "http") + "/rooms/" + room + "/chat"
	if query != "" {
		u += "?" + query
	}
	return u
}

// join connects nickname to room and waits until it is a member.
func (tg *testRegistry) join(room, nickname string) *client {
	tg.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, tg.url(room, "nickname="+nickname), nil)
	if err != nil {
		tg.t.Fatalf("dial %s as %s: %v", room, nickname, err)
	}
	tg.t.Cleanup(func() { _ = conn.CloseNow() })
	ev := tg.wait(tg.joined, "join")
	if ev.room != room || ev.nickname != nickname {
		tg.t.Fatalf("joined %+v, want %s in %s", ev, nickname, room)
	}
	return &client{t: tg.t, conn: conn}
}

func (tg *testRegistry) wait(ch chan roomEvent, what string) roomEvent {
	tg.t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(testTimeout):
		tg.t.Fatalf("timed out waiting for a %s", what)
		return roomEvent{}
	}
}

// waitDone waits until the registry has finished with a request.
func (tg *testRegistry) waitDone() {
	tg.t.Helper()
	select {
	case <-tg.done:
	case <-time.After(testTimeout):
		tg.t.Fatal("timed out waiting for a handler to return")
	}
}
