package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// link follows the connection's state for a JetStreamBroker. nats.go
// leaves a request in flight waiting across a disconnection until its
// context ends (a room's call would then take its whole 2 seconds to fail);
// calls tie their context to the link's, which is cancelled as soon as the
// connection reports a disconnection, so that they fail at once.
//
// The link's context belongs to one connection: a reconnection (counted by
// nats.Statistics.Reconnects) makes a new one. Status events arrive late, on
// the link's goroutine: one about an older connection must not cancel the
// context of the current one, and a call must not get the cancelled context
// of an older one while the connection is up again.
type link struct {
	nc     *nats.Conn
	events chan nats.Status
	stop   chan struct{} // closed by close
	done   chan struct{} // closed when watch has returned
	once   sync.Once

	mu     sync.Mutex
	ctx    context.Context // cancelled when its connection drops
	cancel context.CancelFunc
	gen    uint64 // the connection's Reconnects when ctx was made
}

// newLink starts following nc; close stops it.
func newLink(nc *nats.Conn) *link {
	l := &link{
		nc: nc,
		// Listen before reading the state, so that no change is missed.
		events: nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.gen = nc.Stats().Reconnects
	if !nc.IsConnected() {
		l.cancel()
	}
	go l.watch()
	return l
}

// watch is the link's goroutine, until close.
func (l *link) watch() {
	defer close(l.done)
	for {
		select {
		case <-l.stop:
			return
		case st, ok := <-l.events:
			if !ok {
				return
			}
			if st != nats.CONNECTED {
				l.dropped()
			}
		}
	}
}

// dropped cancels the context, unless it belongs to a connection that is
// up: the event was about an older one.
func (l *link) dropped() {
	up, gen := l.nc.IsConnected(), l.nc.Stats().Reconnects
	l.mu.Lock()
	defer l.mu.Unlock()
	if !up || gen != l.gen {
		l.cancel()
	}
}

// current returns the context of the current connection, making it first
// if the connection was re-established since the last one was made.
func (l *link) current() context.Context {
	up, gen := l.nc.IsConnected(), l.nc.Stats().Reconnects
	l.mu.Lock()
	defer l.mu.Unlock()
	if up && (gen != l.gen || l.ctx.Err() != nil) {
		l.cancel() // calls on the older connection were lost with it
		l.ctx, l.cancel = context.WithCancel(context.Background())
		l.gen = gen
	}
	return l.ctx
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.nc.RemoveStatusListener(l.events)
		l.mu.Lock()
		l.cancel()
		l.mu.Unlock()
	})
}

// bind returns ctx, bounded by defaultTimeout if it has no deadline, and
// ended with cause ErrNotConnected as soon as the connection drops.
func (l *link) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	up := l.current()
	ctx, cancelTimeout := withTimeout(ctx)
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(up, func() { cancel(ErrNotConnected) })
	return ctx, func() {
		stop()
		cancel(nil)
		cancelTimeout()
	}
}

// explain makes err, which a call with a context from bind returned, say
// that the connection dropped, if that is why it failed.
func explain(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), ErrNotConnected) && !errors.Is(err, ErrNotConnected) {
		return fmt.Errorf("%w (%w)", ErrNotConnected, err)
	}
	return err
}
