package sqlitestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/sqlitestore"
)

func open(t *testing.T, path string, opts sqlitestore.Options) *sqlitestore.DB {
	t.Helper()
	db, err := sqlitestore.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func roomOn(t *testing.T, db *sqlitestore.DB, name string, keep sqlitestore.Retention, opts ...chatroom.Option) (*chatroom.Room, *chatroomtest.Server) {
	t.Helper()
	st, err := db.Room(context.Background(), name, keep)
	if err != nil {
		t.Fatal(err)
	}
	rm := chatroom.New(append([]chatroom.Option{chatroom.WithName(name), chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{Store: st})}, opts...)...)
	return rm, chatroomtest.NewServer(t, rm, chatroomtest.IgnoreIDAndTime())
}

func texts(msgs []chatroom.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

// history asks for the messages before id and decodes the answer.
func history(t *testing.T, c *chatroomtest.Client, before uint64, limit int) (msgs []chatroom.Message, more bool) {
	t.Helper()
	c.SendRaw(websocket.MessageText, fmt.Appendf(nil, `{"type":"history","before":%d,"limit":%d}`, before, limit))
	var h struct {
		Type     string             `json:"type"`
		Messages []chatroom.Message `json:"messages"`
		More     bool               `json:"more"`
	}
	if err := json.Unmarshal([]byte(c.NextRaw()), &h); err != nil || h.Type != "history" {
		t.Fatalf("history answer %+v, %v", h, err)
	}
	return h.Messages, h.More
}

// The room is closed and the database with it; opened again, a joiner gets
// the last messages, a client resuming from before the restart gets exactly
// what it missed, new IDs are greater, and scrollback reaches what the
// window no longer holds.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	opts := sqlitestore.Options{Window: 5}
	db := open(t, path, opts)
	rm, srv := roomOn(t, db, "lobby", sqlitestore.Retention{})
	ann := srv.Connect("ann")
	var ids []uint64
	for i := range 12 {
		ann.Send(fmt.Sprint("m", i))
		ids = append(ids, ann.Next().ID)
	}
	srv.Close()
	rm.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path, opts)
	_, srv = roomOn(t, db, "lobby", sqlitestore.Retention{})
	joiner := srv.Connect("bob")
	var got []string
	for range 5 {
		got = append(got, joiner.Next().Text)
	}
	if diff := cmp.Diff([]string{"m7", "m8", "m9", "m10", "m11"}, got); diff != "" {
		t.Errorf("joiner's history (-want +got):\n%s", diff)
	}
	resumed := srv.Connect("carl", chatroomtest.Query("since", fmt.Sprint(ids[8])))
	resumed.Expect(chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "m9"},
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "m10"},
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "m11"})
	resumed.Send("after")
	if m := resumed.Next(); m.ID <= ids[11] {
		t.Errorf("after the restart: ID %d, want above %d", m.ID, ids[11])
	}
	msgs, more := history(t, resumed, ids[9], 6)
	if diff := cmp.Diff([]string{"m3", "m4", "m5", "m6", "m7", "m8"}, texts(msgs)); diff != "" || !more {
		t.Errorf("scrollback before m9 (-want +got):\n%s more %v", diff, more)
	}
	msgs, more = history(t, resumed, msgs[0].ID, 50)
	if diff := cmp.Diff([]string{"m0", "m1", "m2"}, texts(msgs)); diff != "" || more {
		t.Errorf("scrollback before m3 (-want +got):\n%s more %v", diff, more)
	}
}

// A since older than the window gets what it missed from the database,
// read before the client joins, then the window: no gap, no duplicate.
// One older than what retention kept is told of the gap.
func TestResumeBeyondWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	db := open(t, path, sqlitestore.Options{Window: 2})
	_, srv := roomOn(t, db, "lobby", sqlitestore.Retention{Count: 5})
	ann := srv.Connect("ann")
	var ids []uint64
	for i := range 8 {
		ann.Send(fmt.Sprint("m", i))
		ids = append(ids, ann.Next().ID)
	}
	c := srv.Connect("bob", chatroomtest.Query("since", fmt.Sprint(ids[4])))
	c.Expect(chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "m5"},
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "m6"},
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "m7"})
	ann.Send("live")
	c.Expect(chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "live"})
}

// Retention by count keeps the newest messages in the database; a room
// opened again finds no more, and a since before them is incomplete.
func TestRetentionCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	db := open(t, path, sqlitestore.Options{Window: 100})
	st, err := db.Room(context.Background(), "lobby", sqlitestore.Retention{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	base := uint64(1) << 40
	for i := range 10 {
		st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: base + uint64(i), Time: time.Now(), Text: fmt.Sprint("m", i)})
	}
	if err := st.Flush(context.Background(), base+9); err != nil {
		t.Fatal(err)
	}
	again, err := db.Room(context.Background(), "lobby", sqlitestore.Retention{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	msgs, complete := again.Since(0)
	if diff := cmp.Diff([]string{"m7", "m8", "m9"}, texts(msgs)); diff != "" || complete {
		t.Errorf("kept (-want +got):\n%s complete %v", diff, complete)
	}
	if first, last := again.Span(); first != base || last != base+9 {
		t.Errorf("span %d, %d; want %d, %d", first, last, base, base+9)
	}
}

// Retention by age: frames older than Age are not in the window of a room
// opened again, nor in scrollback.
func TestRetentionAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	db := open(t, path, sqlitestore.Options{})
	keep := sqlitestore.Retention{Age: time.Hour}
	st, err := db.Room(context.Background(), "lobby", keep)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: 10, Time: old, Text: "old"})
	st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: 20, Time: time.Now(), Text: "new"})
	if err := st.Flush(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	again, err := db.Room(context.Background(), "lobby", keep)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, _ := again.Since(0); !cmp.Equal(texts(msgs), []string{"new"}) {
		t.Errorf("window %v, want [new]", texts(msgs))
	}
}

// A full queue does not block Append: the frame is not written, Flush says
// so, Stats counts it.
func TestQueueFull(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "chat.db"), sqlitestore.Options{QueueLen: 1})
	st, err := db.Room(context.Background(), "lobby", sqlitestore.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close() // closed: nothing is queued any more
	st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: 1, Time: time.Now(), Text: "lost"})
	if err := st.Flush(context.Background(), 1); !errors.Is(err, sqlitestore.ErrNotWritten) {
		t.Errorf("Flush: %v, want ErrNotWritten", err)
	}
	if s := db.Stats(); s.Dropped != 1 {
		t.Errorf("stats %+v, want 1 dropped", s)
	}
	if _, err := db.Room(context.Background(), "lobby", sqlitestore.Retention{}); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("Room after Close: %v, want ErrClosed", err)
	}
}

// With History.Durable, Broadcast returns once the frame is in the file: a
// second database opened on it sees it.
func TestDurableBroadcast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	db := open(t, path, sqlitestore.Options{})
	st, err := db.Room(context.Background(), "lobby", sqlitestore.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	rm := chatroom.New(chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{Store: st, Durable: true}))
	defer rm.Close()
	for i := range 20 {
		if _, err := rm.Broadcast(context.Background(), chatroom.Message{Text: fmt.Sprint("b", i)}); err != nil {
			t.Fatal(err)
		}
	}
	other := open(t, path, sqlitestore.Options{})
	seen, err := other.Room(context.Background(), "lobby", sqlitestore.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	if msgs, _ := seen.Since(0); len(msgs) != 20 {
		t.Errorf("a second reader sees %d frames, want 20", len(msgs))
	}
}
