package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom"
)

// How this file works.
//
// A Broker multiplexes every room it subscribes to on one go-redis PubSub,
// that is one connection, with a SUBSCRIBE per room (refcounted: one per
// channel however many subscriptions it has). One goroutine, the reader,
// receives from it and calls the subscriptions' deliver functions, so each
// is called from one goroutine at a time, in the order Redis sent.
//
// Subscribe returns once Redis has processed the room's SUBSCRIBE, so that
// every publication accepted afterwards reaches it. Redis confirms a
// SUBSCRIBE with a message of its own, but matching confirmations to calls
// breaks down when a room is subscribed, unsubscribed and subscribed again
// quickly, or when the connection is replaced, since go-redis then
// subscribes again to every channel. Instead, Subscribe sends a PING with a
// unique payload after the SUBSCRIBE (under opMu, so after the SUBSCRIBE of
// whichever call subscribed the channel) and waits for the reader to
// receive its reply: Redis answers in order, so the reply means that the
// connection it came on has the channel subscribed, either because the
// SUBSCRIBE was sent on it, or because go-redis opened it after the channel
// was added, and subscribed again to all of them before anything else.
//
// When the connection breaks, go-redis reconnects (and subscribes again)
// within the reader's Receive; PINGs sent on the old connection get no
// reply, so the reader sends the waiting PINGs again on the new one. When
// Redis cannot be reached, Subscribe returns without waiting: the channel is
// in go-redis's set, and will be subscribed when it reconnects.
//
// A connection can also die without being closed (a host that vanished, a
// partition): then nothing arrives, and no error either. The health checker
// sends a PING when nothing has arrived for an interval, and replaces the
// PubSub when nothing arrives for the next one.

// Delays between the reader's attempts after an error, so that it does not
// spin while Redis is unreachable; the longest is also how long a node may
// stay unsubscribed after Redis is back.
const (
	minRetryDelay = 50 * time.Millisecond
	maxRetryDelay = time.Second
)

// healthPayload is the payload of the health checker's PINGs; Subscribe's
// are "redisbroker:" and a number.
const healthPayload = "redisbroker:health"

// subscription is what Subscribe returns.
type subscription struct {
	b       *Broker
	channel string
	deliver func(chatroom.Publication)

	// mu is held while deliver runs: Unsubscribe sets closed under it, so
	// once it returns, deliver is neither running nor called again.
	mu     sync.Mutex
	closed bool
}

// Subscribe implements chatroom.Broker. It returns once Redis has confirmed
// the subscription, or at once without error if Redis cannot be reached:
// the broker then subscribes by itself when Redis is back, as it does after
// every reconnection. It waits for the confirmation at most the broker's
// timeout (see WithTimeout), then returns the subscription all the same.
// ctx ending while it waits makes it return ctx's error, unsubscribed.
//
// deliver is called on the broker's reader goroutine: it must not block,
// and must not call Unsubscribe or Close (which wait for deliver to return).
func (b *Broker) Subscribe(ctx context.Context, room string, deliver func(chatroom.Publication)) (chatroom.Subscription, error) {
	if deliver == nil {
		return nil, errors.New("redisbroker: subscribe: nil deliver function")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, err)
	}
	ch := keysFor(b.prefix, room).channel
	s := &subscription{b: b, channel: ch, deliver: deliver}

	b.opMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.opMu.Unlock()
		return nil, errClosed("subscribe")
	}
	if b.ps == nil {
		b.startLocked()
	}
	ps := b.ps
	list := b.subs[ch]
	b.subs[ch] = append(slices.Clip(list), s)
	b.tokens++
	token := "redisbroker:" + strconv.FormatUint(b.tokens, 10)
	confirmed := make(chan struct{})
	b.waiters[token] = confirmed
	b.mu.Unlock()
	// The shared connection's commands get the broker's context, not the
	// caller's: a caller giving up must not break the connection for all.
	opCtx, cancel := b.opContext(b.ctx)
	var err error
	if len(list) == 0 {
		err = subscribeChannels(opCtx, ps, ch)
	}
	if err == nil {
		err = ping(opCtx, ps, token)
	}
	cancel()
	b.opMu.Unlock()
	if err != nil {
		// Unreachable. The subscription stands: see above.
		b.dropWaiter(token)
		return s, nil
	}

	var timeout <-chan time.Time
	if b.cfg.timeout > 0 {
		t := time.NewTimer(b.cfg.timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-confirmed:
		// Closed by the reader on the PING's reply, by the reader or the
		// health checker when Redis became unreachable, or by Close.
		if b.isClosed() {
			return nil, errClosed("subscribe")
		}
		return s, nil
	case <-timeout:
		b.dropWaiter(token)
		return s, nil
	case <-ctx.Done():
		b.dropWaiter(token)
		_ = s.Unsubscribe()
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, ctx.Err())
	}
}

// subscribeChannels sends SUBSCRIBE on ps. go-redis adds the channels to the
// set it subscribes again on every new connection only after its attempt;
// so when the write fails and go-redis reconnects at once, the new
// connection lacks them. A second attempt subscribes them on it, or, if it
// fails too, leaves them to the next connection, which will have them.
func subscribeChannels(ctx context.Context, ps *redis.PubSub, channels ...string) error {
	err := ps.Subscribe(ctx, channels...)
	if err != nil {
		err = ps.Subscribe(ctx, channels...)
	}
	return err
}

// ping sends a PING with payload on ps. If the write fails, go-redis
// reconnects, subscribing again to every channel, and a second PING on the
// new connection confirms as well.
func ping(ctx context.Context, ps *redis.PubSub, payload string) error {
	err := ps.Ping(ctx, payload)
	if err != nil {
		err = ps.Ping(ctx, payload)
	}
	return err
}

// startLocked creates the PubSub and starts the reader and the health
// checker, which exit when Close closes done. b.mu must be held.
func (b *Broker) startLocked() {
	// No channels yet: go-redis connects on first use.
	b.ps = b.client.Subscribe(b.ctx)
	b.wg.Add(1)
	go b.read()
	if b.cfg.healthCheck > 0 {
		b.wg.Add(1)
		go b.checkHealth()
	}
}

// pubSub returns the current PubSub, or nil once the broker is closed.
func (b *Broker) pubSub() *redis.PubSub {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	return b.ps
}

func (b *Broker) dropWaiter(token string) {
	b.mu.Lock()
	delete(b.waiters, token)
	b.mu.Unlock()
}

// releaseWaiters lets every Subscribe waiting for a confirmation return.
func (b *Broker) releaseWaiters() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for token, w := range b.waiters {
		close(w)
		delete(b.waiters, token)
	}
}

// pingWaiters sends again, on ps, the PINGs that Subscribe calls wait for,
// after the connection they were sent on was replaced; or, if Redis cannot
// be reached, lets those calls return. b.opMu must be held.
func (b *Broker) pingWaiters(ctx context.Context, ps *redis.PubSub) {
	b.mu.Lock()
	if b.ps != ps {
		b.mu.Unlock()
		return
	}
	tokens := slices.Collect(maps.Keys(b.waiters))
	b.mu.Unlock()
	for _, token := range tokens {
		if err := ps.Ping(ctx, token); err != nil {
			b.releaseWaiters()
			return
		}
	}
}

// read is the reader goroutine: it receives everything that arrives on the
// pub/sub connection until Close.
func (b *Broker) read() {
	defer b.wg.Done()
	delay := minRetryDelay
	for {
		ps := b.pubSub()
		if ps == nil {
			return
		}
		msg, err := ps.Receive(b.ctx)
		if err != nil {
			if b.pubSub() != ps {
				continue // closed, or replaced by the health checker
			}
			b.broken.Add(1)
			// A broken connection has been replaced by now, or Redis is
			// unreachable. Either way, confirm the waiting subscriptions
			// on the new connection, or let them return.
			b.opMu.Lock()
			ctx, cancel := b.opContext(b.ctx)
			b.pingWaiters(ctx, ps)
			cancel()
			b.opMu.Unlock()
			t := time.NewTimer(delay)
			select {
			case <-b.done:
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(delay*2, maxRetryDelay)
			continue
		}
		delay = minRetryDelay
		b.active.Add(1)
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m)
		case *redis.Pong:
			b.mu.Lock()
			if w, ok := b.waiters[m.Payload]; ok {
				close(w)
				delete(b.waiters, m.Payload)
			}
			b.mu.Unlock()
		}
		// *redis.Subscription confirmations carry nothing the PINGs don't.
	}
}

// dispatch delivers a message to the subscriptions of its channel.
func (b *Broker) dispatch(m *redis.Message) {
	b.mu.Lock()
	list := b.subs[m.Channel] // never modified: Subscribe and remove copy
	b.mu.Unlock()
	if len(list) == 0 {
		return
	}
	p, ok := decodePayload(m.Payload)
	if !ok {
		return // not ours: another program on the channel, or a later format
	}
	for i, s := range list {
		if i > 0 {
			// Each its own copy, so that one that changes Data (which
			// nothing forbids) does not change it for the next.
			p.Data = []byte(m.Payload[headerLen:])
		}
		s.mu.Lock()
		if !s.closed {
			s.deliver(p)
		}
		s.mu.Unlock()
	}
}

// checkHealth is the health checker goroutine (see the top of this file).
func (b *Broker) checkHealth() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.healthCheck)
	defer t.Stop()
	var pinged bool
	var active, broken uint64
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
		}
		ps := b.pubSub()
		if ps == nil {
			return
		}
		a, e := b.active.Load(), b.broken.Load()
		if pinged && a == active && e == broken {
			// Not even the reply to the last PING arrived, and the reader
			// saw no error: the connection is dead without being closed.
			b.replace(ps)
			pinged = false
			continue
		}
		active, broken = a, e
		ctx, cancel := b.opContext(b.ctx)
		pinged = ps.Ping(ctx, healthPayload) == nil
		cancel()
	}
}

// replace closes old, which must be the current PubSub, and subscribes to
// every channel on a new one. Publications sent meanwhile are lost, as in
// any reconnection.
func (b *Broker) replace(old *redis.PubSub) {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.mu.Lock()
	if b.closed || b.ps != old {
		b.mu.Unlock()
		return
	}
	channels := slices.Collect(maps.Keys(b.subs))
	ps := b.client.Subscribe(b.ctx)
	b.ps = ps
	b.mu.Unlock()
	// The reader, in Receive on old, gets an error and goes on with ps.
	_ = old.Close()
	ctx, cancel := b.opContext(b.ctx)
	defer cancel()
	if len(channels) > 0 {
		if err := subscribeChannels(ctx, ps, channels...); err != nil {
			b.releaseWaiters()
			return
		}
	}
	b.pingWaiters(ctx, ps)
}

// Unsubscribe implements chatroom.Subscription. It waits for a call of
// deliver in progress to return, so it must not be called from deliver.
func (s *subscription) Unsubscribe() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.b.remove(s)
	return nil
}

// remove takes s out of its channel's subscriptions, and unsubscribes from
// the channel when it was the last.
func (b *Broker) remove(s *subscription) {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.mu.Lock()
	list := b.subs[s.channel]
	i := slices.Index(list, s)
	if i < 0 {
		b.mu.Unlock()
		return // Close came first
	}
	if len(list) > 1 {
		b.subs[s.channel] = slices.Delete(slices.Clone(list), i, i+1)
		b.mu.Unlock()
		return
	}
	delete(b.subs, s.channel)
	ps := b.ps
	b.mu.Unlock()
	ctx, cancel := b.opContext(b.ctx)
	defer cancel()
	// go-redis drops the channel from its set before writing, so even if
	// this fails the next connection will not subscribe to it; until then
	// the reader drops what arrives for it.
	_ = ps.Unsubscribe(ctx, s.channel)
}
