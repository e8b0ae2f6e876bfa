package chatroom

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// historyFrame is a history frame as a client decodes it.
type historyFrame struct {
	Type     MessageType `json:"type"`
	ID       uint64      `json:"id"`
	Before   uint64      `json:"before"`
	Messages []Message   `json:"messages"`
	More     bool        `json:"more"`
}

func (c *client) readHistory() historyFrame {
	c.t.Helper()
	var h historyFrame
	if err := jsonUnmarshal(c.read(), &h); err != nil {
		c.t.Fatal(err)
	}
	if h.Type != TypeHistory {
		c.t.Fatalf("frame of type %q, want history", h.Type)
	}
	return h
}

func texts(msgs []Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

// A client pages back through what the room's memory keeps, 3 messages at a
// time, without the notices, down to the oldest kept.
func TestScrollbackMemory(t *testing.T) {
	tr := newTestRoom(t, WithHistory(History{Len: 8}), WithEnvelope(), WithNotices())
	ann := tr.join("ann")
	ann.readMsg() // her join notice
	for i := range 10 {
		ann.send(fmt.Sprint("m", i))
		ann.readMsg()
	}
	var got [][]string
	before := uint64(0)
	for {
		ann.sendRaw(websocket.MessageText, fmt.Sprintf(`{"type":"history","before":%d,"limit":3}`, before))
		h := ann.readHistory()
		if h.Before != before {
			t.Errorf("before %d, want %d", h.Before, before)
		}
		got = append(got, texts(h.Messages))
		if !h.More {
			break
		}
		before = h.Messages[0].ID
	}
	want := [][]string{{"m7", "m8", "m9"}, {"m4", "m5", "m6"}, {"m2", "m3"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

// A limit above MaxScrollback receives MaxScrollback messages; bad requests
// get an error frame (WithErrorFrames) naming the expected form.
func TestScrollbackLimits(t *testing.T) {
	tr := newTestRoom(t, WithHistory(History{Len: MaxScrollback + 10}), WithErrorFrames())
	ann := tr.join("ann")
	for i := range MaxScrollback + 5 {
		ann.send(fmt.Sprint(i))
		ann.readMsg()
	}
	ann.sendRaw(websocket.MessageText, `{"type":"history","limit":1000}`)
	if h := ann.readHistory(); len(h.Messages) != MaxScrollback || !h.More {
		t.Errorf("limit 1000: %d messages, more %v; want %d, true", len(h.Messages), h.More, MaxScrollback)
	}
	for _, bad := range []string{`{"type":"history","limit":0}`, `{"type":"history","limit":"5"}`, `{"type":"history","before":-1}`, `{"type":"history","before":9007199254740992}`} {
		ann.sendRaw(websocket.MessageText, bad)
		got := ann.readMsg()
		if got.Type != TypeError || got.Text != reasonBadHistory || got.Code != int(websocket.StatusInvalidFramePayloadData) {
			t.Errorf("%s: %+v, want an error frame %q", bad, got, reasonBadHistory)
		}
	}
}

// Without the envelope the room has no IDs to scroll by: a history frame is
// an ordinary frame without a message, refused as before.
func TestScrollbackNeedsEnvelope(t *testing.T) {
	tr := newTestRoom(t, WithHistory(History{}))
	ann := tr.join("ann")
	ann.sendRaw(websocket.MessageText, `{"type":"history","before":0}`)
	ann.expectClose(websocket.StatusInvalidFramePayloadData, reasonNoMessage)
}

// failingStore fails to read and write.
type failingStore struct{ *MemoryStore }

var errDisk = errors.New("disk on fire")

func (failingStore) Before(context.Context, uint64, int) ([]Message, bool, error) {
	return nil, false, errDisk
}
func (failingStore) Flush(context.Context, uint64) error { return errDisk }

// A store that cannot read answers a scrollback request with an error frame
// 1011; one that cannot write, with History.Durable, makes Broadcast fail
// with ErrNotStored though the members received the frame.
func TestStoreFailures(t *testing.T) {
	st := failingStore{NewMemoryStore(0, 0)}
	tr := newTestRoom(t, WithHistory(History{Store: st, Durable: true}), WithEnvelope())
	ann := tr.join("ann")
	ann.sendRaw(websocket.MessageText, `{"type":"history"}`)
	if got := ann.readMsg(); got.Type != TypeError || got.Code != int(websocket.StatusInternalError) || got.Text != reasonHistoryUnavailable {
		t.Errorf("scrollback from a failing store: %+v", got)
	}
	_, err := tr.room.Broadcast(context.Background(), Message{Text: "hi"})
	if !errors.Is(err, ErrNotStored) || !errors.Is(err, errDisk) {
		t.Errorf("Broadcast: %v, want ErrNotStored wrapping %v", err, errDisk)
	}
	if got := ann.readMsg(); got.Text != "hi" {
		t.Errorf("delivered %+v, want hi", got)
	}
	ann.send("mine") // not stored either: ann stays
	if got := ann.readMsg(); got.Text != "mine" {
		t.Errorf("delivered %+v, want mine", got)
	}
}

// A room created on a Store that kept frames before (a durable store, after
// a restart) numbers above them, and takes a since among them for one of
// its own: the client gets exactly what it missed, with no truncated notice.
func TestStoreAcrossRestart(t *testing.T) {
	st := NewMemoryStore(0, 0)
	tr := newTestRoom(t, WithHistory(History{Store: st}), WithEnvelope())
	ann := tr.join("ann")
	var ids []uint64
	for i := range 3 {
		ann.send(fmt.Sprint("m", i))
		ids = append(ids, ann.readMsg().ID)
	}
	ann.conn.CloseNow()
	tr.room.Close()

	again := newTestRoom(t, WithHistory(History{Store: st}), WithEnvelope(), WithClock(fixedClock)) // a clock behind the old IDs
	bob := again.joinWith(fmt.Sprintf("nickname=bob&since=%d", ids[0]), nil)
	for _, want := range []string{"m1", "m2"} {
		if got := bob.readMsg(); got.Text != want {
			t.Fatalf("resumed %+v, want %s", got, want)
		}
	}
	bob.send("new")
	if got := bob.readMsg(); got.Text != "new" || got.ID <= ids[2] {
		t.Errorf("after the restart %+v: want an ID above %d", got, ids[2])
	}
}
