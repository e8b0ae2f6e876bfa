package pgstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/pgstore"
)

// The room is closed and the database with it; opened again, a joiner gets
// the last messages, a client resuming from before the restart gets exactly
// what it missed, even beyond the window, new IDs are greater, and
// scrollback reaches what the window no longer holds.
func TestRestart(t *testing.T) {
	url := newDatabase(t)
	opts := pgstore.Options{Window: 5}
	db := open(t, url, opts)
	rm, srv := roomOn(t, db, "lobby", pgstore.Retention{})
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

	db = open(t, url, opts)
	_, srv = roomOn(t, db, "lobby", pgstore.Retention{})
	joiner := srv.Connect("bob")
	var got []string
	for range 5 {
		got = append(got, joiner.Next().Text)
	}
	if diff := cmp.Diff([]string{"m7", "m8", "m9", "m10", "m11"}, got); diff != "" {
		t.Errorf("joiner's history (-want +got):\n%s", diff)
	}
	// From before the window: from the database, then the window.
	resumed := srv.Connect("carl", chatroomtest.Query("since", fmt.Sprint(ids[3])))
	var want []chatroom.Message
	for i := 4; i < 12; i++ {
		want = append(want, chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: fmt.Sprint("m", i)})
	}
	resumed.Expect(want...)
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

// Retention by count keeps the newest messages; a since before them gets
// a truncated notice, then what is kept.
func TestRetentionCount(t *testing.T) {
	url := newDatabase(t)
	db := open(t, url, pgstore.Options{Window: 2})
	_, srv := roomOn(t, db, "lobby", pgstore.Retention{Count: 4})
	ann := srv.Connect("ann")
	var ids []uint64
	for i := range 10 {
		ann.Send(fmt.Sprint("m", i))
		ids = append(ids, ann.Next().ID)
	}
	st, err := db.Room(context.Background(), "lobby", pgstore.Retention{Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	msgs, complete, err := st.After(context.Background(), ids[0], 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"m6", "m7", "m8", "m9"}, texts(msgs)); diff != "" || complete {
		t.Errorf("kept after m0 (-want +got):\n%s complete %v", diff, complete)
	}
}

// With History.Durable, Broadcast returns once the frame is committed: a
// second DB opened on the database sees it.
func TestDurableBroadcast(t *testing.T) {
	url := newDatabase(t)
	db := open(t, url, pgstore.Options{})
	st, err := db.Room(context.Background(), "lobby", pgstore.Retention{})
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
	if got := rows(t, url, "lobby"); len(got) != 20 {
		t.Errorf("the database holds %d frames, want 20", len(got))
	}
}

// A room without a broker, restarted on the database, acknowledges the
// resend of a message it stored with the message's first ID, and stores
// nothing twice.
func TestRestartRecognisesResends(t *testing.T) {
	url := newDatabase(t)
	db := open(t, url, pgstore.Options{})
	rm, srv := roomOn(t, db, "lobby", pgstore.Retention{})
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

	db = open(t, url, pgstore.Options{})
	_, srv = roomOn(t, db, "lobby", pgstore.Retention{})
	ann = srv.Connect("ann", chatroomtest.Query("since", fmt.Sprint(ack.ID)))
	ann.SendRef("once", "k1")
	if got := ann.Next(); got.Type != chatroom.TypeAck || got.ID != ack.ID || got.Ref != "k1" {
		t.Errorf("resend after the restart: %+v, want the ack of ID %d", got, ack.ID)
	}
	if got := rows(t, url, "lobby"); len(got) != 1 {
		t.Errorf("stored %+v, want one frame", got)
	}
}
