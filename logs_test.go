package chatroom

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom/broker"
)

// logLine is a log record as an operator's alert sees it: the level, the
// message and the attributes, as text.
type logLine struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// recordingHandler is a slog.Handler that keeps every record, for a test to
// wait for and inspect; no global logger is involved.
type recordingHandler struct {
	mu      sync.Mutex
	lines   []logLine
	changed chan struct{} // closed, and replaced, when a line is added
}

func newRecordingHandler() *recordingHandler {
	return &recordingHandler{changed: make(chan struct{})}
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	l := logLine{Level: r.Level, Msg: r.Message, Attrs: make(map[string]string)}
	r.Attrs(func(a slog.Attr) bool {
		l.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, l)
	close(h.changed)
	h.changed = make(chan struct{})
	return nil
}

// find returns the lines with message msg.
func (h *recordingHandler) find(msg string) []logLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logLine
	for _, l := range h.lines {
		if l.Msg == msg {
			out = append(out, l)
		}
	}
	return out
}

// pick returns what f keeps of each line with one of the messages msgs,
// message by message.
func pick[T any](h *recordingHandler, f func(logLine) T, msgs ...string) []T {
	var out []T
	for _, msg := range msgs {
		for _, l := range h.find(msg) {
			out = append(out, f(l))
		}
	}
	return out
}

// waitFor waits until a line with message msg has attribute key equal to
// value, and returns it.
func (h *recordingHandler) waitFor(t *testing.T, msg, key, value string) logLine {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		for _, l := range h.find(msg) {
			if l.Attrs[key] == value {
				return l
			}
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no log line %q with %s=%s", msg, key, value)
		}
	}
}

// leaveLine is what an operator filters a leave's line on.
type leaveLine struct {
	Level                slog.Level
	Room, Member, Reason string
}

func asLeave(l logLine) leaveLine {
	return leaveLine{l.Level, l.Attrs["room"], l.Attrs["member"], l.Attrs["reason"]}
}

// Leaves and refusals are logged with room, member and reason, at the
// level the reason calls for: a slow member at Warn, a bad frame and a
// refusal at Info, a normal close at Debug.
func TestLogLeaves(t *testing.T) {
	h := newRecordingHandler()
	tr := newTestRoom(t, WithName("lobby"), WithLogger(slog.New(h)), WithUniqueNicknames(),
		WithSendQueue(64, 4<<20), WithKeepalive(Off, 0))

	ann := tr.join("ann")
	ann.sendRaw(websocket.MessageText, "not json")
	ann.expectClose(websocket.StatusInvalidFramePayloadData, "")
	tr.expectLeave("ann", ErrInvalidMessage)

	tr.join("slow") // never reads
	fast := tr.join("fast")
	_, ev, _, _ := flood(t, tr, fast, 4000, 8)
	if ev.nickname != "slow" || !errors.Is(ev.reason, ErrSlowConsumer) {
		t.Fatalf("leave = %+v, want slow, too slow", ev)
	}

	conn, _, err := tr.dialRaw("nickname=fast", nil)
	if err != nil {
		t.Fatal(err)
	}
	(&client{t: t, conn: conn}).expectClose(StatusNicknameTaken, "")
	refused := h.waitFor(t, "chatroom: join refused", "member", "fast#4")

	fast.conn.Close(websocket.StatusNormalClosure, "bye")
	tr.expectLeave("fast", ErrClientClosed)

	got := pick(h, asLeave, "chatroom: member left")
	want := []leaveLine{
		{slog.LevelInfo, "lobby", "ann#1", ReasonInvalid},
		{slog.LevelWarn, "lobby", "slow#2", ReasonSlow},
		{slog.LevelDebug, "lobby", "fast#3", ReasonNormal},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("leave lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(leaveLine{slog.LevelInfo, "lobby", "fast#4", ReasonRefused}, asLeave(refused)); diff != "" {
		t.Errorf("refusal line (-want +got):\n%s", diff)
	}
}

// A broker outage is logged once as it begins (Warn) and once as it ends
// (Info), however many messages fail meanwhile; each of those is at Debug.
func TestLogBrokerOutageOnce(t *testing.T) {
	h := newRecordingHandler()
	// No heartbeat during the test: its publication would end the outage.
	tr := newTestRoom(t, WithBroker(flakyBroker{broker.NewMemory(10)}), WithName("lobby"),
		WithLogger(slog.New(h)), WithHeartbeat(time.Hour))
	ann := tr.join("ann")
	texts := []string{"before", "lost 1", "lost 2", "lost 3", "after"}
	for _, text := range texts {
		ann.send(text)
	}
	for _, text := range texts {
		if got := ann.read(); got != frame("ann", text) {
			t.Fatalf("got %s, want %s", got, frame("ann", text))
		}
	}
	recovered := h.waitFor(t, "chatroom: broker recovered", "room", "lobby")

	type line struct {
		Level          slog.Level
		Room, Op, Fail string
	}
	got := pick(h, func(l logLine) line { return line{l.Level, l.Attrs["room"], l.Attrs["op"], l.Attrs["effect"]} },
		"chatroom: broker unavailable", "chatroom: broker call failed")
	const local = "delivered on this node only"
	want := []line{
		{slog.LevelWarn, "lobby", "publish", local},
		{slog.LevelDebug, "lobby", "publish", local},
		{slog.LevelDebug, "lobby", "publish", local},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outage lines (-want +got):\n%s", diff)
	}
	if recovered.Level != slog.LevelInfo || recovered.Attrs["failed_calls"] != "3" {
		t.Errorf("recovery line = %+v, want Info with failed_calls=3", recovered)
	}
	if n := len(h.find("chatroom: broker recovered")); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
}
