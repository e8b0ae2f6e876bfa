package chatroom

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/seed014c2c51/chatroom/broker"
)

// pipeBroker is a broker.PipelineBroker over a broker.Memory: SendBatch
// delivers the batch at once, and the answer for a batch with a "hold"
// publication waits until hold is closed. A batch with a "lost" one is
// refused (broker.ErrUnavailable) by SendBatch. It counts the batches
// whose answer is awaited, and the most at once.
type pipeBroker struct {
	mb       *broker.Memory
	hold     chan struct{}
	inFlight atomic.Int64
	most     atomic.Int64
}

func (b *pipeBroker) Publish(ctx context.Context, room string, p broker.Publication) error {
	return b.PublishBatch(ctx, room, []broker.Publication{p})
}

func (b *pipeBroker) PublishBatch(ctx context.Context, room string, ps []broker.Publication) error {
	wait, err := b.SendBatch(ctx, room, ps)
	if err != nil {
		return err
	}
	return wait()
}

func (b *pipeBroker) SendBatch(ctx context.Context, room string, ps []broker.Publication) (func() error, error) {
	held := false
	for _, p := range ps {
		if bytes.Contains(p.Data, []byte(`"message":"lost`)) {
			return nil, errLost
		}
		held = held || bytes.Contains(p.Data, []byte(`"message":"hold`))
	}
	if err := b.mb.PublishBatch(ctx, room, ps); err != nil {
		return nil, err
	}
	n := b.inFlight.Add(1)
	for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
	}
	return func() error {
		defer b.inFlight.Add(-1)
		if held {
			<-b.hold
		}
		return nil
	}, nil
}

func (b *pipeBroker) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	return b.mb.Subscribe(ctx, room, deliver)
}

// A room hands a PipelineBroker its next batches while the broker has not
// answered for the one before, up to maxInFlight of them, and the members
// receive them in order.
func TestClusterPipelinedBatchesInFlight(t *testing.T) {
	b := &pipeBroker{mb: broker.NewMemory(10), hold: make(chan struct{})}
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"))
	ann := tr.join("ann")
	bob := tr.join("bob")
	var texts []string
	for i := range 3 * maxInFlight {
		texts = append(texts, "hold "+string(rune('a'+i)))
	}
	// Each is delivered while the answers for those before are awaited,
	// up to maxInFlight of them; the rest wait for a slot.
	for _, text := range texts[:maxInFlight] {
		ann.send(text)
		if got := bob.read(); got != frame("ann", text) {
			t.Fatalf("got %s, want %s while the broker's answers are awaited", got, frame("ann", text))
		}
	}
	for _, text := range texts[maxInFlight:] {
		ann.send(text)
	}
	close(b.hold)
	for _, c := range []*client{ann, bob} {
		for i, text := range texts {
			if c == bob && i < maxInFlight {
				continue
			}
			if got := c.read(); got != frame("ann", text) {
				t.Fatalf("%s: got %s, want %s", c.member.Nickname(), got, frame("ann", text))
			}
		}
	}
	tr.room.link.(*cluster).drain()
	if most := b.most.Load(); most != maxInFlight {
		t.Errorf("at most %d batches in flight, want %d", most, maxInFlight)
	}
	if n := b.inFlight.Load(); n != 0 {
		t.Errorf("%d batches in flight after drain", n)
	}
}

// A batch that the broker refuses while the answer for an earlier one is
// awaited is delivered by the node after that one, and before the next.
func TestClusterPipelinedRefusalKeepsOrder(t *testing.T) {
	b := &pipeBroker{mb: broker.NewMemory(10), hold: make(chan struct{})}
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"))
	ann := tr.join("ann")
	bob := tr.join("bob")
	ann.send("hold")
	if got := bob.read(); got != frame("ann", "hold") {
		t.Fatalf("got %s, want the held message", got)
	}
	ann.send("lost 1")
	ann.send("after")
	close(b.hold)
	for _, c := range []*client{ann, bob} {
		want := []string{"hold", "lost 1", "after"}
		if c == bob {
			want = want[1:]
		}
		for _, text := range want {
			if got := c.read(); got != frame("ann", text) {
				t.Fatalf("%s: got %s, want %s", c.member.Nickname(), got, frame("ann", text))
			}
		}
	}
}
