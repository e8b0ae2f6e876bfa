package brokertest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// errStopped is what a MemoryBackend's brokers return while it is stopped:
// nothing was taken, as from a network broker that refuses connections.
var errStopped = fmt.Errorf("brokertest: backend stopped: %w", broker.ErrUnavailable)

// MemoryBackend is a Backend on one broker.Memory, for the rooms'
// own tests: each node's broker can be closed on its own (a dead node), and
// Stop makes every call fail at once with an error wrapping
// broker.ErrUnavailable until Start, as a network broker that went away
// would. Pause makes it hang as a stopped server does: every call waits
// until Resume or its context's end, and the publications and presence
// records handed to it meanwhile are applied at Resume, in the order they
// came, even those whose caller gave up, as a server that resumes runs the
// commands it had read. It keeps the last 2000 publications of each room.
func MemoryBackend(t *testing.T) Backend {
	mb := broker.NewMemory(ChaosClients * ChaosMessages) // RunChaos's messages, every one
	t.Cleanup(func() { _ = mb.Close() })
	var stopped atomic.Bool
	h := &hang{}
	return Backend{
		Connect: func(t *testing.T) broker.Broker {
			return &memoryNode{mb: mb, stopped: &stopped, hang: h, subs: map[*memoryNodeSub]bool{}}
		},
		Stop:   func(*testing.T) { stopped.Store(true) },
		Start:  func(*testing.T) { stopped.Store(false) },
		Pause:  func(*testing.T) { h.pause() },
		Resume: func(*testing.T) { h.resume() },
	}
}

// hang holds a MemoryBackend's calls while it is paused.
type hang struct {
	mu      sync.Mutex
	paused  bool
	resumed chan struct{} // closed by resume
	held    []func()      // the writes to apply at resume, in order
}

func (h *hang) pause() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.paused {
		h.paused, h.resumed = true, make(chan struct{})
	}
}

// resume applies the held writes, then lets calls through. The writes are
// applied with h.mu held, so that no call that comes later overtakes them.
func (h *hang) resume() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.paused {
		return
	}
	for _, f := range h.held {
		f()
	}
	h.held = nil
	h.paused = false
	close(h.resumed)
}

// write runs f now, or, while paused, at resume: it returns f's error if f
// ran before ctx ended, and ctx's error otherwise, f then still to run.
func (h *hang) write(ctx context.Context, f func() error) error {
	h.mu.Lock()
	if !h.paused {
		h.mu.Unlock()
		return f()
	}
	done := make(chan error, 1)
	h.held = append(h.held, func() { done <- f() })
	h.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait returns once the backend is not paused, or with ctx's error.
func (h *hang) wait(ctx context.Context) error {
	h.mu.Lock()
	paused, resumed := h.paused, h.resumed
	h.mu.Unlock()
	if !paused {
		return nil
	}
	select {
	case <-resumed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// memoryNode is one node's connection to a MemoryBackend.
type memoryNode struct {
	mb      *broker.Memory
	stopped *atomic.Bool
	hang    *hang

	mu     sync.Mutex
	closed bool
	subs   map[*memoryNodeSub]bool
}

type memoryNodeSub struct {
	n   *memoryNode
	sub broker.Subscription
}

func (n *memoryNode) check() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return broker.ErrClosed
	case n.stopped.Load():
		return errStopped
	}
	return nil
}

func (n *memoryNode) Publish(ctx context.Context, room string, p broker.Publication) error {
	return n.PublishBatch(ctx, room, []broker.Publication{p})
}

// PublishBatch implements broker.BatchBroker, as the network adapters do.
func (n *memoryNode) PublishBatch(ctx context.Context, room string, ps []broker.Publication) error {
	_, err := n.PublishOnce(ctx, room, ps)
	return err
}

// PublishOnce implements broker.DedupBroker, as the Redis adapter does.
func (n *memoryNode) PublishOnce(ctx context.Context, room string, ps []broker.Publication) ([]broker.Duplicate, error) {
	if err := n.check(); err != nil {
		return nil, err
	}
	// A hung server runs the command later, whoever waited for it.
	var dups []broker.Duplicate
	err := n.hang.write(ctx, func() error {
		var err error
		dups, err = n.mb.PublishOnce(context.Background(), room, ps)
		return err
	})
	if err != nil {
		return nil, err // dups is not to be read: a held write may set it later
	}
	return dups, nil
}

func (n *memoryNode) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	if err := n.hang.wait(ctx); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, broker.ErrClosed
	}
	sub, err := n.mb.Subscribe(ctx, room, deliver)
	if err != nil {
		return nil, err
	}
	s := &memoryNodeSub{n: n, sub: sub}
	n.subs[s] = true
	return s, nil
}

func (s *memoryNodeSub) Unsubscribe() error {
	s.n.mu.Lock()
	delete(s.n.subs, s)
	s.n.mu.Unlock()
	return s.sub.Unsubscribe()
}

func (n *memoryNode) History(ctx context.Context, room string, after uint64) ([]broker.Publication, bool, error) {
	if err := n.check(); err != nil {
		return nil, false, err
	}
	if err := n.hang.wait(ctx); err != nil {
		return nil, false, err
	}
	return n.mb.History(ctx, room, after)
}

func (n *memoryNode) SetPresence(ctx context.Context, room, node string, nicks []string, ttl time.Duration) error {
	if err := n.check(); err != nil {
		return err
	}
	return n.hang.write(ctx, func() error {
		return n.mb.SetPresence(context.Background(), room, node, nicks, ttl)
	})
}

func (n *memoryNode) Presence(ctx context.Context, room string) (map[string][]string, error) {
	if err := n.check(); err != nil {
		return nil, err
	}
	if err := n.hang.wait(ctx); err != nil {
		return nil, err
	}
	return n.mb.Presence(ctx, room)
}

// Close cuts the node off, as if its process died: its subscriptions end
// and it can publish no more.
func (n *memoryNode) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for s := range n.subs {
		_ = s.sub.Unsubscribe()
	}
	clear(n.subs)
	return nil
}

// Plain hides what b offers beyond broker.Broker (history, presence,
// batches), keeping Close, and the IDs b gives, which a plain Broker does
// not: rooms then number and keep history per node and learn the other
// nodes' members from heartbeats only.
func Plain(b broker.Broker) broker.Broker {
	if c, ok := b.(io.Closer); ok {
		return plainCloser{plain{b}, c}
	}
	return plain{b}
}

type plain struct{ b broker.Broker }

func (p plain) Publish(ctx context.Context, room string, pub broker.Publication) error {
	pub.Key = "" // a plain broker knows no keys
	return p.b.Publish(ctx, room, pub)
}

func (p plain) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	return p.b.Subscribe(ctx, room, func(pub broker.Publication) {
		pub.ID = 0
		deliver(pub)
	})
}

type plainCloser struct {
	plain
	io.Closer
}
