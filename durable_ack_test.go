package chatroom_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// gatedStore is a Store whose first Flush waits until the test opens the
// gate, as a database's write of that frame would; later ones return at
// once, or fail with fail.
type gatedStore struct {
	*chatroom.MemoryStore
	once    sync.Once
	flushed chan struct{} // closed when the first Flush begins
	gate    chan struct{} // closed by the test: the first Flush returns
	fail    error
}

func newGatedStore(fail error) *gatedStore {
	return &gatedStore{MemoryStore: chatroom.NewMemoryStore(0, 0), flushed: make(chan struct{}), gate: make(chan struct{}), fail: fail}
}

func (s *gatedStore) Flush(ctx context.Context, id uint64) error {
	first := false
	s.once.Do(func() { first = true })
	if !first {
		return nil
	}
	close(s.flushed)
	select {
	case <-s.gate:
		return s.fail
	case <-ctx.Done():
		return ctx.Err()
	}
}

// With History.Durable the ack means the store has the message: it comes
// only once the store's write returned, after frames that reached the
// sender meanwhile, though the members had the message at once.
func TestDurableAckWaitsForTheWrite(t *testing.T) {
	st := newGatedStore(nil)
	room := chatroom.New(chatroom.WithHistory(chatroom.History{Store: st, Durable: true}), chatroom.WithErrorFrames())
	srv := chatroomtest.NewServer(t, room, chatroomtest.IgnoreIDAndTime())
	ann := srv.Connect("ann")
	bob := srv.Connect("bob")

	ann.SendRef("kept", "k1")
	bob.Expect(chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "kept"})
	<-st.flushed
	bob.Send("meanwhile")
	bob.Expect(chatroom.Message{Type: chatroom.TypeMessage, Nickname: "bob", Text: "meanwhile"})
	close(st.gate)
	ann.Expect(
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "kept"},
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "bob", Text: "meanwhile"},
		chatroom.Message{Type: chatroom.TypeAck, Ref: "k1"},
	)
}

// A message whose write failed is answered with an error frame carrying
// its ref, not an ack, and its ref is free again.
func TestDurableNotStoredAnswer(t *testing.T) {
	st := newGatedStore(errors.New("disk full"))
	close(st.gate)
	room := chatroom.New(chatroom.WithHistory(chatroom.History{Store: st, Durable: true}), chatroom.WithErrorFrames())
	srv := chatroomtest.NewServer(t, room, chatroomtest.IgnoreIDAndTime())
	ann := srv.Connect("ann")
	ann.SendRef("lost", "k1")
	ann.Expect(
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "lost"},
		chatroom.Message{Type: chatroom.TypeError, Code: 1011, Text: "message not stored", Ref: "k1"},
	)
	ann.SendRef("lost", "k1") // a new attempt: this write succeeds
	ann.Expect(
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "lost"},
		chatroom.Message{Type: chatroom.TypeAck, Ref: "k1"},
	)
}

// A room created again on the Store of one that is gone, as after a
// restart, acknowledges the resend of a message the Store holds with the
// message's ID, and delivers nothing again; a new ref, and the same ref
// from another sender, are new messages.
func TestRestartedRoomRecognisesResends(t *testing.T) {
	st := chatroom.NewMemoryStore(0, 0)
	first := chatroom.New(chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{Store: st, Durable: true}))
	srv := chatroomtest.NewServer(t, first)
	ann := srv.Connect("ann")
	ann.SendRef("before", "k1")
	sent := ann.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeMessage })
	ack := ann.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeAck })
	if ack.ID != sent.ID || ack.Ref != "k1" {
		t.Fatalf("ack %+v for message %d", ack, sent.ID)
	}
	ann.Close()
	srv.Close()

	again := chatroom.New(chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{Store: st, Durable: true}))
	srv = chatroomtest.NewServer(t, again, chatroomtest.IgnoreIDAndTime(), chatroomtest.Query("since", strconv.FormatUint(ack.ID, 10)))
	ann = srv.Connect("ann")
	bob := srv.Connect("bob")
	ann.SendRef("before", "k1")
	if got := ann.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeAck }); got.ID != ack.ID || got.Ref != "k1" {
		t.Errorf("resend after the restart: ack %+v, want ID %d", got, ack.ID)
	}
	bob.SendRef("before", "k1") // bob's k1 is not ann's
	bob.Expect(
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "bob", Text: "before"},
		chatroom.Message{Type: chatroom.TypeAck, Ref: "k1"},
	)
	ann.SendRef("after", "k2")
	bob.Expect(chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "after"})
	if msgs, _ := st.Since(0); len(msgs) != 3 {
		t.Errorf("the store holds %d frames, want 3: %+v", len(msgs), msgs)
	}
}
