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

// errStopped is what a MemoryBackend's brokers return while it is stopped.
var errStopped = fmt.Errorf("brokertest: backend stopped: %w", broker.ErrUnavailable)

// MemoryBackend is a Backend on one broker.Memory, for the rooms'
// own tests: each node's broker can be closed on its own (a dead node), and
// Stop makes every Publish fail until Start, as a network broker that went
// away would.
func MemoryBackend(t *testing.T) Backend {
	mb := broker.NewMemory(1000)
	t.Cleanup(func() { _ = mb.Close() })
	var stopped atomic.Bool
	return Backend{
		Connect: func(t *testing.T) broker.Broker {
			return &memoryNode{mb: mb, stopped: &stopped, subs: map[*memoryNodeSub]bool{}}
		},
		Stop:  func(*testing.T) { stopped.Store(true) },
		Start: func(*testing.T) { stopped.Store(false) },
	}
}

// memoryNode is one node's connection to a MemoryBackend.
type memoryNode struct {
	mb      *broker.Memory
	stopped *atomic.Bool

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
	if err := n.check(); err != nil {
		return err
	}
	return n.mb.Publish(ctx, room, p)
}

func (n *memoryNode) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
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
	return n.mb.History(ctx, room, after)
}

func (n *memoryNode) SetPresence(ctx context.Context, room, node string, nicks []string, ttl time.Duration) error {
	if err := n.check(); err != nil {
		return err
	}
	return n.mb.SetPresence(ctx, room, node, nicks, ttl)
}

func (n *memoryNode) Presence(ctx context.Context, room string) (map[string][]string, error) {
	if err := n.check(); err != nil {
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

// Plain hides what b offers beyond broker.Broker (history, presence),
// keeping Close: rooms then number and keep history per node and learn the
// other nodes' members from heartbeats only.
func Plain(b broker.Broker) broker.Broker {
	if c, ok := b.(io.Closer); ok {
		return plainCloser{plain{b}, c}
	}
	return plain{b}
}

type plain struct{ b broker.Broker }

func (p plain) Publish(ctx context.Context, room string, pub broker.Publication) error {
	return p.b.Publish(ctx, room, pub)
}

func (p plain) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	return p.b.Subscribe(ctx, room, deliver)
}

type plainCloser struct {
	plain
	io.Closer
}
