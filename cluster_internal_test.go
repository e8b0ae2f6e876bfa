package chatroom

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// flakyBroker wraps a MemoryBroker and fails the publications fail says
// to fail, after delivering them if deliver says so (an answer lost on its
// way back from a broker that did take the publication).
type flakyBroker struct {
	*MemoryBroker
	mu      sync.Mutex
	fail    bool
	deliver bool
}

var errFlaky = errors.New("broker unreachable")

func (b *flakyBroker) Publish(ctx context.Context, room string, p Publication) error {
	b.mu.Lock()
	fail, deliver := b.fail, b.deliver
	b.mu.Unlock()
	if !fail {
		return b.MemoryBroker.Publish(ctx, room, p)
	}
	if deliver {
		_ = b.MemoryBroker.Publish(ctx, room, p)
	}
	return errFlaky
}

func (b *flakyBroker) set(fail, deliver bool) {
	b.mu.Lock()
	b.fail, b.deliver = fail, deliver
	b.mu.Unlock()
}

// A publication the broker took although Publish failed reaches the
// sender's node once: the node delivered it itself and drops the copy.
func TestClusterFailedPublishDeliveredOnce(t *testing.T) {
	b := &flakyBroker{MemoryBroker: NewMemoryBroker(10)}
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"))
	ann := tr.join("ann")
	bob := tr.join("bob")

	b.set(true, true) // taken, but reported as failed
	ann.send("once")
	b.set(true, false) // not taken: delivered on this node only
	ann.send("local")
	b.set(false, false)
	ann.send("after")
	for _, c := range []*client{ann, bob} {
		for _, want := range []string{"once", "local", "after"} {
			if got := c.read(); got != frame("ann", want) {
				t.Fatalf("%s: got %s, want %s", c.member.Nickname(), got, frame("ann", want))
			}
		}
	}
}

// The sender does not receive its own message with WithExcludeSender, on
// its own node, while the others do.
func TestClusterExcludeSender(t *testing.T) {
	b := NewMemoryBroker(10)
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"), WithExcludeSender())
	ann := tr.join("ann")
	bob := tr.join("bob")
	ann.send("hi")
	bob.send("yo")
	if got, want := bob.read(), frame("ann", "hi"); got != want {
		t.Errorf("bob: got %s, want %s", got, want)
	}
	if got, want := ann.read(), frame("bob", "yo"); got != want {
		t.Errorf("ann: got %s, want %s (and not her own message first)", got, want)
	}
}

// A node subscribes while it has members and not otherwise; its heartbeat
// goroutine ends with the subscription (the test room's cleanup checks that
// no goroutine is left).
func TestClusterSubscribesOnlyWithMembers(t *testing.T) {
	b := NewMemoryBroker(10)
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"))
	subs := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		if r := b.rooms["lobby"]; r != nil {
			return len(r.subs)
		}
		return 0
	}
	if n := subs(); n != 0 {
		t.Fatalf("%d subscriptions before anyone joined, want 0", n)
	}
	ann := tr.join("ann")
	if n := subs(); n != 1 {
		t.Fatalf("%d subscriptions with one member, want 1", n)
	}
	bob := tr.join("bob")
	_ = ann.conn.CloseNow()
	tr.waitLeave()
	if n := subs(); n != 1 {
		t.Fatalf("%d subscriptions with one member left, want 1", n)
	}
	_ = bob.conn.CloseNow()
	tr.waitLeave()
	// The leave hook runs after the member has left the cluster.
	if n := subs(); n != 0 {
		t.Fatalf("%d subscriptions after the last member left, want 0", n)
	}
}

// A direct message to a nickname no node has is answered with an error
// frame, and SendTo reports ErrNoSuchMember.
func TestClusterDirectToAbsent(t *testing.T) {
	b := NewMemoryBroker(10)
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"), WithDirectMessages(), WithClock(fixedClock))
	ann := tr.join("ann")
	ann.sendTo("nobody", "hello?")
	if m := ann.readMsg(); m.Type != TypeError || m.Code != int(StatusNoSuchMember) {
		t.Errorf("got %+v, want a 4404 error frame", m)
	}
	if err := tr.room.SendTo(context.Background(), "nobody", Message{Text: "x"}); !errors.Is(err, ErrNoSuchMember) {
		t.Errorf("SendTo an absent nickname: %v, want ErrNoSuchMember", err)
	}
	if err := tr.room.SendTo(context.Background(), "ann", Message{Nickname: "server", Text: "psst"}); err != nil {
		t.Fatalf("SendTo ann: %v", err)
	}
	if m := ann.readMsg(); m.Type != TypeDirect || m.Text != "psst" || m.To != "ann" {
		t.Errorf("got %+v, want the direct message", m)
	}
}
