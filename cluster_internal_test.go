package chatroom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom/broker"
)

// flakyBroker wraps a broker.Memory and fails the publications whose text
// says so: "taken" ones after delivering them, with an open outcome (the
// broker took them, and its answer was lost), "lost" ones without, saying
// so (broker.ErrUnavailable). It is not a BatchBroker, so the room
// publishes one publication at a time.
type flakyBroker struct{ mb *broker.Memory }

var (
	errLost  = fmt.Errorf("no connection: %w", broker.ErrUnavailable)
	errTaken = errors.New("broker did not answer")
)

func (b flakyBroker) Publish(ctx context.Context, room string, p broker.Publication) error {
	switch {
	case bytes.Contains(p.Data, []byte(`"message":"taken`)):
		_ = b.mb.Publish(ctx, room, p)
		return errTaken
	case bytes.Contains(p.Data, []byte(`"message":"lost`)):
		return errLost
	}
	return b.mb.Publish(ctx, room, p)
}

func (b flakyBroker) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	return b.mb.Subscribe(ctx, room, deliver)
}

// Each member of the sender's node receives each publication once: one
// the broker took although Publish failed arrives from the broker and is
// not delivered again; one it did not take is delivered by the node.
func TestClusterFailedPublishDeliveredOnce(t *testing.T) {
	b := flakyBroker{broker.NewMemory(10)}
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"))
	ann := tr.join("ann")
	bob := tr.join("bob")
	texts := []string{"before", "taken 1", "lost 1", "between", "lost 2", "taken 2", "after"}
	for _, text := range texts {
		ann.send(text)
	}
	for _, c := range []*client{ann, bob} {
		for _, want := range texts {
			if got := c.read(); got != frame("ann", want) {
				t.Fatalf("%s: got %s, want %s", c.member.Nickname(), got, frame("ann", want))
			}
		}
	}
}

// The sender does not receive its own message with WithExcludeSender, on
// its own node, while the others do.
func TestClusterExcludeSender(t *testing.T) {
	b := broker.NewMemory(10)
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
	b := &countingBroker{Memory: broker.NewMemory(10)}
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"))
	subs := func() int { return int(b.subs.Load()) }
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
	b := broker.NewMemory(10)
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"), WithDirectMessages(), WithClock(fixedClock))
	ann := tr.join("ann")
	ann.sendTo("nobody", "hello?")
	if m := ann.readMsg(); m.Type != TypeError || m.Code != int(StatusNoSuchMember) {
		t.Errorf("got %+v, want a 4404 error frame", m)
	}
	if _, err := tr.room.SendTo(context.Background(), "nobody", Message{Text: "x"}); !errors.Is(err, ErrNoSuchMember) {
		t.Errorf("SendTo an absent nickname: %v, want ErrNoSuchMember", err)
	}
	if _, err := tr.room.SendTo(context.Background(), "ann", Message{Nickname: "server", Text: "psst"}); err != nil {
		t.Fatalf("SendTo ann: %v", err)
	}
	if m := ann.readMsg(); m.Type != TypeDirect || m.Text != "psst" || m.To != "ann" {
		t.Errorf("got %+v, want the direct message", m)
	}
}

// flakyBatchBroker is a BatchBroker over a broker.Memory that takes none of
// a batch with a "lost" publication and says so (broker.ErrUnavailable),
// and takes a whole batch with a "taken" one and fails all the same, with
// an open outcome. A batch
// with a publication saying "hold" sends its length to held, then waits in
// the broker until hold is closed.
type flakyBatchBroker struct {
	mb   *broker.Memory
	held chan int
	hold chan struct{}
}

func (b flakyBatchBroker) Publish(ctx context.Context, room string, p broker.Publication) error {
	return b.PublishBatch(ctx, room, []broker.Publication{p})
}

func (b flakyBatchBroker) PublishBatch(ctx context.Context, room string, ps []broker.Publication) error {
	taken := false
	for _, p := range ps {
		switch {
		case bytes.Contains(p.Data, []byte(`"message":"hold`)):
			b.held <- len(ps)
			<-b.hold
		case bytes.Contains(p.Data, []byte(`"message":"lost`)):
			return errLost
		case bytes.Contains(p.Data, []byte(`"message":"taken`)):
			taken = true
		}
	}
	if err := b.mb.PublishBatch(ctx, room, ps); err != nil {
		return err
	}
	if taken {
		return errTaken
	}
	return nil
}

func (b flakyBatchBroker) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	return b.mb.Subscribe(ctx, room, deliver)
}

// Publications queued while the broker is busy go to it as one batch; when
// the batch fails, each member of the sender's node still receives each of
// them once, in order: from the broker if it took them, from the node if it
// certainly did not.
func TestClusterFailedBatchDeliveredOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch []string
	}{
		{"lost", []string{"a", "b", "lost 1", "c", "d"}},
		{"all taken", []string{"a", "taken 1", "b", "c"}},
		{"none taken", []string{"lost 1", "a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := flakyBatchBroker{mb: broker.NewMemory(10), held: make(chan int, 1), hold: make(chan struct{})}
			tr := newTestRoom(t, WithBroker(b), WithName("lobby"))
			ann := tr.join("ann")
			bob := tr.join("bob")
			ann.send("hold")
			for _, text := range tc.batch {
				ann.send(text)
			}
			// Wait for the rest to queue up behind the batch with "hold".
			rest := len(tc.batch) - (<-b.held - 1)
			c := tr.room.link.(*cluster)
			for {
				c.out.mu.Lock()
				n := len(c.out.queue)
				c.out.mu.Unlock()
				if n >= rest {
					break
				}
				if t.Context().Err() != nil {
					t.Fatal("the batch did not queue up")
				}
				runtime.Gosched()
			}
			close(b.hold)
			want := append([]string{"hold"}, tc.batch...)
			for _, c := range []*client{ann, bob} {
				for _, text := range want {
					if got := c.read(); got != frame("ann", text) {
						t.Fatalf("%s: got %s, want %s", c.member.Nickname(), got, frame("ann", text))
					}
				}
			}
			ann.send("after")
			for _, c := range []*client{ann, bob} {
				if got := c.read(); got != frame("ann", "after") {
					t.Fatalf("%s: got %s, want the next message, after", c.member.Nickname(), got)
				}
			}
		})
	}
}

// countingBroker counts the subscriptions open on a broker.Memory.
type countingBroker struct {
	*broker.Memory
	subs atomic.Int64
}

func (b *countingBroker) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	sub, err := b.Memory.Subscribe(ctx, room, deliver)
	if err != nil {
		return nil, err
	}
	b.subs.Add(1)
	return &countedSub{Subscription: sub, b: b}, nil
}

type countedSub struct {
	broker.Subscription
	b    *countingBroker
	once sync.Once
}

func (s *countedSub) Unsubscribe() error {
	s.once.Do(func() { s.b.subs.Add(-1) })
	return s.Subscription.Unsubscribe()
}

// downBroker is a HistoryBroker that takes nothing: every publication is
// refused with broker.ErrUnavailable, as from a broker whose server is down.
type downBroker struct{ *broker.Memory }

func (downBroker) Publish(context.Context, string, broker.Publication) error {
	return fmt.Errorf("connection refused: %w", broker.ErrUnavailable)
}

func (downBroker) PublishBatch(context.Context, string, []broker.Publication) error {
	return fmt.Errorf("connection refused: %w", broker.ErrUnavailable)
}

func (downBroker) PublishOnce(context.Context, string, []broker.Publication) ([]broker.Duplicate, error) {
	return nil, fmt.Errorf("connection refused: %w", broker.ErrUnavailable)
}

// During an outage a node delivers its members' frames on its own, with IDs
// between the broker's that it never reuses, up to idStride-1 of them;
// after that it refuses messages with an error frame 1013 "broker
// unavailable" until the broker is back.
func TestOutageFramesThenRefusal(t *testing.T) {
	b := downBroker{broker.NewMemory(10)}
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"), WithErrorFrames(), WithPacing(Off, 0))
	ann := tr.join("ann")
	var last uint64
	for i := range idStride - 1 {
		if i == 0 {
			// A message with a ref is acknowledged with the ID the node
			// gave it alone.
			ann.sendRaw(websocket.MessageText, `{"message":"m0","ref":"r0"}`)
		} else {
			ann.send("m" + strconv.Itoa(i))
		}
		m := ann.readMsg()
		if m.Type != TypeMessage || m.Text != "m"+strconv.Itoa(i) || m.ID <= last || m.ID%idStride == 0 {
			t.Fatalf("frame %d on the node alone: %+v after ID %d", i, m, last)
		}
		last = m.ID
		if i == 0 {
			if ack := ann.readMsg(); ack.Type != TypeAck || ack.ID != m.ID || ack.Ref != "r0" {
				t.Fatalf("after %+v on the node alone: %+v, want its ack", m, ack)
			}
		}
	}
	ann.sendRaw(websocket.MessageText, `{"message":"one too many","ref":"r1"}`)
	m := ann.readMsg()
	if m.Type != TypeError || m.Code != int(websocket.StatusTryAgainLater) || m.Text != reasonBrokerUnavailable || m.ID != last || m.Ref != "r1" {
		t.Errorf("after %d frames on the node alone: got %+v, want error 1013 %q with ID %d and ref r1", idStride-1, m, reasonBrokerUnavailable, last)
	}
	// The refused ref is free: sent again, it is refused again, not left
	// waiting for an ack.
	ann.sendRaw(websocket.MessageText, `{"message":"one too many","ref":"r1"}`)
	if m := ann.readMsg(); m.Type != TypeError || m.Ref != "r1" {
		t.Errorf("the refused ref sent again: got %+v, want the same refusal", m)
	}
}

// stuckBroker is a broker.Memory whose frames (not its heartbeats) wait in
// the broker until release is closed, whatever their context says: a broker
// that hangs.
type stuckBroker struct {
	*broker.Memory
	release chan struct{}
}

func (b stuckBroker) Publish(ctx context.Context, room string, p broker.Publication) error {
	return b.PublishBatch(ctx, room, []broker.Publication{p})
}

func (b stuckBroker) PublishBatch(_ context.Context, room string, ps []broker.Publication) error {
	_, err := b.PublishOnce(context.Background(), room, ps)
	return err
}

func (b stuckBroker) PublishOnce(_ context.Context, room string, ps []broker.Publication) ([]broker.Duplicate, error) {
	if bytes.Contains(ps[0].Data, []byte(`"m":`)) {
		<-b.release
	}
	return b.Memory.PublishOnce(context.Background(), room, ps)
}

// Broadcast waits for the ID its message gets, and for room in the queue of
// publications for the broker, only within its ctx; a member's message
// waits for room only.
func TestBroadcastWaitsWithinItsContext(t *testing.T) {
	b := stuckBroker{Memory: broker.NewMemory(10), release: make(chan struct{})}
	defer close(b.release)
	tr := newTestRoom(t, WithBroker(b), WithName("lobby"))
	tr.join("ann") // the node subscribes
	ann := tr.room.Members()[0]
	c := tr.room.link.(*cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := tr.room.Broadcast(ctx, Message{Text: "waits"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Broadcast to a broker that hangs = %v, want context.DeadlineExceeded", err)
	}
	for i := range maxOutbox + maxPublishBatch + 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := c.out.push(ctx, post{msg: Message{Text: strconv.Itoa(i)}, sender: ann, from: ann.id})
		cancel()
		if err == nil {
			continue
		}
		c.out.mu.Lock()
		queued := len(c.out.queue)
		c.out.mu.Unlock()
		if !errors.Is(err, context.DeadlineExceeded) || queued != maxOutbox {
			t.Fatalf("message %d = %v with %d queued, want context.DeadlineExceeded with %d", i, err, queued, maxOutbox)
		}
		return
	}
	t.Fatalf("%d messages to a broker that hangs, and none waited", maxOutbox+maxPublishBatch+1)
}

// A node whose view of another has drifted (a notice was lost, as NATS
// core may lose one) learns from the other's heartbeat digests that they
// disagree, asks for its full list, and tells its members what they
// missed.
func TestClusterDigestHealsDriftedView(t *testing.T) {
	b := broker.NewMemory(10)
	opts := []Option{WithBroker(b), WithName("lobby"), WithPresence(), WithHeartbeat(20 * time.Millisecond)}
	a := newTestRoom(t, opts...)
	bn := newTestRoom(t, opts...)
	ann := a.join("ann")
	if got := ann.readMsg(); got.Type != TypeMembers {
		t.Fatalf("ann: got %+v, want the member list", got)
	}
	bob := bn.join("bob")
	seen := map[string]bool{}
	for !seen["ann"] {
		m := bob.readMsg()
		seen[m.Nickname] = true
		for _, n := range m.Members {
			seen[n] = true
		}
	}
	// bob's node forgets ann, as if her join notice had been lost.
	c := bn.room.link.(*cluster)
	bn.room.mu.Lock()
	c.peers.mu.Lock()
	for _, p := range c.peers.peers {
		c.peers.dropNickLocked(p, "ann")
	}
	delete(c.peers.told, "ann")
	c.peers.mu.Unlock()
	bn.room.mu.Unlock()
	for {
		if m := bob.readMsg(); m.Type == TypeJoin && m.Nickname == "ann" {
			break
		}
	}
	if diff := cmp.Diff([]string{"bob", "ann"}, bn.room.Nicknames()); diff != "" {
		t.Errorf("bob's node's nicknames (-want +got):\n%s", diff)
	}
}

// heldHistory is a broker.Memory whose History, once armed, holds its
// answer until released: the room's frames delivered meanwhile cross the
// node's bridge between a joiner's history and the live frames.
type heldHistory struct {
	*broker.Memory
	armed   atomic.Bool
	read    chan struct{} // an armed History has read
	release chan struct{} // lets it answer
}

func (b *heldHistory) History(ctx context.Context, room string, after uint64) ([]broker.Publication, bool, error) {
	pubs, complete, err := b.Memory.History(ctx, room, after)
	if b.armed.CompareAndSwap(true, false) {
		b.read <- struct{}{}
		<-b.release
	}
	return pubs, complete, err
}

// A node keeps History.Len frames to bridge a joiner's history, read from
// the broker, and the live frames, not a fixed count whatever the room's
// history (it cost about 160 KiB per room): when more arrive during the
// read, a plain joiner receives the last History.Len, as from one node,
// and a resuming client is told it missed some (a truncated notice), never
// a silent gap.
func TestClusterBridgeHoldsHistoryLen(t *testing.T) {
	b := &heldHistory{Memory: broker.NewMemory(100), read: make(chan struct{}), release: make(chan struct{})}
	tr := newTestRoom(t, WithBroker(b), WithEnvelope(), WithHistory(History{Len: 3}), WithName("lobby"))
	tr.join("ann") // subscribes the node
	ctx := context.Background()
	broadcast := func(text string) uint64 {
		t.Helper()
		id, err := tr.room.Broadcast(ctx, Message{Nickname: "host", Text: text})
		if err != nil {
			t.Fatalf("Broadcast: %v", err)
		}
		return id
	}
	// joinDuring joins with query while texts are broadcast between the
	// broker's answer and the join, and returns what the joiner receives.
	joinDuring := func(query string, texts []string, frames int) []string {
		t.Helper()
		b.armed.Store(true)
		dialed := make(chan *websocket.Conn, 1)
		go func() {
			conn, _, err := tr.dialRaw(query, nil)
			if err != nil {
				t.Errorf("dial %q: %v", query, err)
			}
			dialed <- conn
		}()
		<-b.read
		for _, text := range texts {
			broadcast(text)
		}
		b.release <- struct{}{}
		c := &client{t: t, conn: <-dialed, member: tr.waitJoin()}
		if c.conn == nil {
			t.FailNow()
		}
		t.Cleanup(func() { _ = c.conn.CloseNow() })
		var got []string
		for range frames {
			m := c.readMsg()
			got = append(got, string(m.Type)+" "+m.Text)
		}
		return got
	}
	since := broadcast("0")
	got := joinDuring("nickname=bob&since="+strconv.FormatUint(since, 10), []string{"1", "2", "3", "4", "5"}, 4)
	if diff := cmp.Diff([]string{"truncated ", "message 3", "message 4", "message 5"}, got); diff != "" {
		t.Errorf("resuming client (-want +got):\n%s", diff)
	}
	got = joinDuring("nickname=carol", []string{"6", "7", "8", "9"}, 3)
	if diff := cmp.Diff([]string{"message 7", "message 8", "message 9"}, got); diff != "" {
		t.Errorf("joiner (-want +got):\n%s", diff)
	}
}
