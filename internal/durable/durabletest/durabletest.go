// Package durabletest is the conformance suite of this repository's
// chatroom.DatabaseStore implementations (sqlitestore, pgstore), which
// share internal/durable: each module's tests run it on a real database
// of its own kind. It tests a store from outside, as a host uses it:
// through a Room and WebSocket clients, and through the Store's methods.
package durabletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/internal/durable"
)

// Options are the store options the suite sets; zero means the store's
// default.
type Options struct {
	Window   int // Options.Window
	QueueLen int // Options.QueueLen
}

// DB is what the suite needs of a store's DB (*sqlitestore.DB, *pgstore.DB).
type DB interface {
	Room(ctx context.Context, name string, keep durable.Retention) (chatroom.DatabaseStore, error)
	Stats() durable.Stats
	Close() error
}

// Store opens the store under test.
type Store struct {
	// Place returns a new, empty database for the test (a file's path, a
	// database's URL), removed when the test ends.
	Place func(t *testing.T) string
	// Open opens a DB on place with opts. The suite closes it, and closes
	// it again, harmlessly, when the test ends.
	Open func(t *testing.T, place string, opts Options) DB
}

// Run runs the suite, one subtest a property.
func Run(t *testing.T, s Store) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Store)
	}{
		{"Restart", testRestart},
		{"RestartRecognisesResends", testRestartRecognisesResends},
		{"ResumeBeyondWindow", testResumeBeyondWindow},
		{"RetentionCount", testRetentionCount},
		{"RetentionAge", testRetentionAge},
		{"Closed", testClosed},
		{"DurableBroadcast", testDurableBroadcast},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, s) })
	}
}

func (s Store) open(t *testing.T, place string, opts Options) DB {
	t.Helper()
	db := s.Open(t, place, opts)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func room(t *testing.T, db DB, keep durable.Retention) chatroom.DatabaseStore {
	t.Helper()
	st, err := db.Room(context.Background(), "lobby", keep)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// serve returns a room with the envelope keeping its history in st, and a
// test server for it.
func serve(t *testing.T, st chatroom.Store) (*chatroom.Room, *chatroomtest.Server) {
	t.Helper()
	rm := chatroom.New(chatroom.WithName("lobby"), chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{Store: st}))
	return rm, chatroomtest.NewServer(t, rm, chatroomtest.IgnoreIDAndTime())
}

// Texts returns the texts of msgs, in order.
func Texts(msgs []chatroom.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

// History asks for the messages before id on c and decodes the answer.
func History(t *testing.T, c *chatroomtest.Client, before uint64, limit int) (msgs []chatroom.Message, more bool) {
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

// sendAll sends texts m0…m<n-1> as ann and returns their IDs.
func sendAll(ann *chatroomtest.Client, n int) []uint64 {
	var ids []uint64
	for i := range n {
		ann.Send(fmt.Sprint("m", i))
		ids = append(ids, ann.Next().ID)
	}
	return ids
}

func fromAnn(texts ...string) []chatroom.Message {
	var msgs []chatroom.Message
	for _, s := range texts {
		msgs = append(msgs, chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: s})
	}
	return msgs
}

// The room is closed and the database with it; opened again, a joiner gets
// the last messages, a client resuming from before the restart gets exactly
// what it missed, even beyond the window, new IDs are greater, and
// scrollback reaches what the window no longer holds.
func testRestart(t *testing.T, s Store) {
	place := s.Place(t)
	opts := Options{Window: 5}
	db := s.open(t, place, opts)
	rm, srv := serve(t, room(t, db, durable.Retention{}))
	ids := sendAll(srv.Connect("ann"), 12)
	srv.Close()
	rm.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = s.open(t, place, opts)
	_, srv = serve(t, room(t, db, durable.Retention{}))
	joiner := srv.Connect("bob")
	var got []string
	for range 5 {
		got = append(got, joiner.Next().Text)
	}
	if diff := cmp.Diff([]string{"m7", "m8", "m9", "m10", "m11"}, got); diff != "" {
		t.Errorf("joiner's history (-want +got):\n%s", diff)
	}
	// Within the window, loaded when the DB opened.
	srv.Connect("dan", chatroomtest.Query("since", fmt.Sprint(ids[8]))).Expect(fromAnn("m9", "m10", "m11")...)
	// From before the window: from the database, then the window.
	resumed := srv.Connect("carl", chatroomtest.Query("since", fmt.Sprint(ids[3])))
	resumed.Expect(fromAnn("m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11")...)
	resumed.Send("after")
	if m := resumed.Next(); m.ID <= ids[11] {
		t.Errorf("after the restart: ID %d, want above %d", m.ID, ids[11])
	}
	msgs, more := History(t, resumed, ids[9], 6)
	if diff := cmp.Diff([]string{"m3", "m4", "m5", "m6", "m7", "m8"}, Texts(msgs)); diff != "" || !more {
		t.Errorf("scrollback before m9 (-want +got):\n%s more %v", diff, more)
	}
	msgs, more = History(t, resumed, msgs[0].ID, 50)
	if diff := cmp.Diff([]string{"m0", "m1", "m2"}, Texts(msgs)); diff != "" || more {
		t.Errorf("scrollback before m3 (-want +got):\n%s more %v", diff, more)
	}
}

// A since older than the window gets what it missed from the database,
// read before the client joins, then the window, then live frames: no gap,
// no duplicate.
func testResumeBeyondWindow(t *testing.T, s Store) {
	db := s.open(t, s.Place(t), Options{Window: 2})
	_, srv := serve(t, room(t, db, durable.Retention{Count: 5}))
	ann := srv.Connect("ann")
	ids := sendAll(ann, 8)
	c := srv.Connect("bob", chatroomtest.Query("since", fmt.Sprint(ids[4])))
	c.Expect(fromAnn("m5", "m6", "m7")...)
	ann.Send("live")
	c.Expect(fromAnn("live")...)
}

// Retention by count keeps the newest messages in the database: After
// from before them is incomplete, a room opened again finds no more, and
// its Span still begins at the first frame ever kept.
func testRetentionCount(t *testing.T, s Store) {
	db := s.open(t, s.Place(t), Options{Window: 100})
	keep := durable.Retention{Count: 3}
	st := room(t, db, keep)
	base := uint64(1) << 40
	for i := range 10 {
		st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: base + uint64(i), Time: time.Now(), Text: fmt.Sprint("m", i)})
	}
	if err := st.Flush(context.Background(), base+9); err != nil {
		t.Fatal(err)
	}
	again := room(t, db, keep)
	msgs, complete := again.Since(0)
	if diff := cmp.Diff([]string{"m7", "m8", "m9"}, Texts(msgs)); diff != "" || complete {
		t.Errorf("kept (-want +got):\n%s complete %v", diff, complete)
	}
	msgs, complete, err := again.After(context.Background(), base, 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"m7", "m8", "m9"}, Texts(msgs)); diff != "" || complete {
		t.Errorf("After m0 (-want +got):\n%s complete %v", diff, complete)
	}
	if first, last := again.Span(); first != base || last != base+9 {
		t.Errorf("span %d, %d; want %d, %d", first, last, base, base+9)
	}
}

// Retention by age: frames older than Age are not in the window of a room
// opened again.
func testRetentionAge(t *testing.T, s Store) {
	db := s.open(t, s.Place(t), Options{})
	keep := durable.Retention{Age: time.Hour}
	st := room(t, db, keep)
	st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: 10, Time: time.Now().Add(-2 * time.Hour), Text: "old"})
	st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: 20, Time: time.Now(), Text: "new"})
	if err := st.Flush(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := room(t, db, keep).Since(0); !cmp.Equal(Texts(msgs), []string{"new"}) {
		t.Errorf("window %v, want [new]", Texts(msgs))
	}
}

// Once the DB is closed, Append does not block: the frame is not written,
// Flush says so, Stats counts it, and Room refuses.
func testClosed(t *testing.T, s Store) {
	db := s.open(t, s.Place(t), Options{QueueLen: 1})
	st := room(t, db, durable.Retention{})
	_ = db.Close()
	st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: 1, Time: time.Now(), Text: "lost"})
	if err := st.Flush(context.Background(), 1); !errors.Is(err, durable.ErrNotWritten) {
		t.Errorf("Flush: %v, want ErrNotWritten", err)
	}
	if st := db.Stats(); st.Dropped != 1 {
		t.Errorf("stats %+v, want 1 dropped", st)
	}
	if _, err := db.Room(context.Background(), "lobby", durable.Retention{}); !errors.Is(err, durable.ErrClosed) {
		t.Errorf("Room after Close: %v, want ErrClosed", err)
	}
}

// With History.Durable, Broadcast returns once the frame is written: a
// second DB opened on the database sees it.
func testDurableBroadcast(t *testing.T, s Store) {
	place := s.Place(t)
	db := s.open(t, place, Options{})
	rm := chatroom.New(chatroom.WithName("lobby"), chatroom.WithEnvelope(),
		chatroom.WithHistory(chatroom.History{Store: room(t, db, durable.Retention{}), Durable: true}))
	defer rm.Close()
	for i := range 20 {
		if _, err := rm.Broadcast(context.Background(), chatroom.Message{Text: fmt.Sprint("b", i)}); err != nil {
			t.Fatal(err)
		}
	}
	seen := room(t, s.open(t, place, Options{}), durable.Retention{})
	if msgs, _ := seen.Since(0); len(msgs) != 20 {
		t.Errorf("a second DB sees %d frames, want 20", len(msgs))
	}
}

// A room without a broker, restarted on the database, acknowledges the
// resend of a message it stored with the message's first ID, and stores
// nothing twice: the stored frame keeps its sender's ref (Message.RefKey).
func testRestartRecognisesResends(t *testing.T, s Store) {
	place := s.Place(t)
	db := s.open(t, place, Options{})
	rm, srv := serve(t, room(t, db, durable.Retention{}))
	ann := srv.Connect("ann")
	ann.SendRef("once", "k1")
	ann.Next()
	ack := ann.Next()
	if ack.Type != chatroom.TypeAck {
		t.Fatalf("want the ack, got %+v", ack)
	}
	srv.Close()
	rm.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = s.open(t, place, Options{})
	st := room(t, db, durable.Retention{})
	_, srv = serve(t, st)
	ann = srv.Connect("ann", chatroomtest.Query("since", fmt.Sprint(ack.ID)))
	ann.SendRef("once", "k1")
	if got := ann.Next(); got.Type != chatroom.TypeAck || got.ID != ack.ID || got.Ref != "k1" {
		t.Errorf("resend after the restart: %+v, want the ack of ID %d", got, ack.ID)
	}
	ann.SendRef("new", "k2")
	ann.Expect(fromAnn("new")...)
	msgs, _, err := st.After(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"once", "new"}, Texts(msgs)); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}
