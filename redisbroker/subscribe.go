package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom/broker"
)

// How this file works.
//
// A Broker multiplexes every room it subscribes to on one go-redis PubSub,
// that is one connection, with one SUBSCRIBE per room however many
// subscriptions the room has (a channelState exists while it has any).
// Three goroutines serve it, from the first Subscribe until Close:
//
//   - The reader receives from the connection and calls the subscriptions'
//     deliver functions, so that each is called from one goroutine at a
//     time, in the order Redis sent.
//   - The writer sends SUBSCRIBE, UNSUBSCRIBE and PING in the order
//     Subscribe and Unsubscribe queued them (b.ops). They run on a
//     goroutine of their own because go-redis holds the PubSub's lock
//     while it connects, which takes up to the client's dial and read
//     timeouts when Redis does not answer: Subscribe and Unsubscribe must
//     not wait for that.
//   - The health checker (below).
//
// Confirmation. Subscribe returns once Redis has processed the room's
// SUBSCRIBE, so that every publication accepted afterwards reaches it.
// Redis confirms a SUBSCRIBE with a message of its own, but matching
// confirmations to calls breaks down when a room is subscribed,
// unsubscribed and subscribed again quickly, or when go-redis reconnects
// and subscribes again to every channel. Instead, the broker sends a PING
// with a unique payload after the SUBSCRIBE, and the reader waits for its
// reply: Redis answers in order, so the reply means that the connection it
// came on has the channel subscribed, either because the SUBSCRIBE was sent
// on it before the PING, or because go-redis opened it after the channel
// was added to its set, and subscribed again to the whole set before
// anything else. The reply marks the channel ready.
//
// Reconnection. When the connection breaks, go-redis reconnects (and
// subscribes again) within the reader's Receive, which returns the error.
// Every channel is then no longer ready, and the reader sends a PING of its
// own, a barrier, before receiving again: its reply makes ready every
// channel whose SUBSCRIBE was sent before it (channelState.sent). While
// Redis cannot be reached, the barrier fails, and the reader tries again
// after a delay. Publish fails (ErrNotSubscribed) for a room whose channel
// is not ready: this node would not receive the publication.
//
// Dead connections. A connection can also die without being closed (a
// host that vanished, a partition): then nothing arrives, and no error
// either. The health checker sends a PING when nothing has arrived for an
// interval, and has the writer replace the PubSub when nothing arrives for
// the next one; the reader, finding its PubSub closed, sends a barrier on
// the new one.

// Delays between the reader's attempts after an error, so that it does not
// spin while Redis is unreachable; the longest is also about how long a
// node may stay unsubscribed after Redis is back.
const (
	minRetryDelay = 50 * time.Millisecond
	maxRetryDelay = time.Second
)

// healthPayload is the payload of the health checker's PINGs; the others'
// are "redisbroker:" and a number.
const healthPayload = "redisbroker:health"

// channelState is a channel that the broker subscribes to.
type channelState struct {
	name  string
	subs  []*subscription // never modified: Subscribe and Unsubscribe copy
	sent  bool            // SUBSCRIBE sent on the current PubSub (by the writer)
	ready bool            // confirmed on the current connection (by the reader)
}

// pending is a PING sent, or about to be, whose reply has not arrived.
type pending struct {
	chans []*channelState // made ready by the reply
	done  chan struct{}   // closed on the reply, or when none is to be expected; nil once closed, or if nobody waits
}

func (p *pending) release() {
	if p.done != nil {
		close(p.done)
		p.done = nil
	}
}

// An op is a command for the writer.
type op struct {
	kind  opKind
	cs    *channelState // opSubscribe
	name  string        // opUnsubscribe
	token string        // opPing
	ps    *redis.PubSub // opReplace: the PubSub to replace
}

type opKind int

const (
	opSubscribe   opKind = iota // SUBSCRIBE a channel
	opUnsubscribe               // UNSUBSCRIBE a channel
	opPing                      // PING for a Subscribe waiting
	opReplace                   // replace a PubSub that seems dead
)

// subscription is what Subscribe returns.
type subscription struct {
	b       *Broker
	channel string
	deliver func(broker.Publication)

	// mu is held while deliver runs: Unsubscribe sets closed under it, so
	// once it returns, deliver is neither running nor called again.
	mu     sync.Mutex
	closed bool
}

// Subscribe implements broker.Broker. It returns once Redis has confirmed
// the subscription, or without error as soon as it finds Redis
// unreachable: the broker then subscribes by itself when Redis is back, as
// it does after every reconnection. It waits for the confirmation at most
// the broker's timeout (see WithTimeout), then returns the subscription all
// the same. ctx ending while it waits makes it return ctx's error,
// unsubscribed.
//
// deliver is called on the broker's reader goroutine: it must not block,
// and must not call Unsubscribe or Close (which wait for deliver to return).
func (b *Broker) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	if deliver == nil {
		return nil, errors.New("redisbroker: subscribe: nil deliver function")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, err)
	}
	name := keysFor(b.prefix, room).channel
	s := &subscription{b: b, channel: name, deliver: deliver}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errClosed("subscribe")
	}
	if b.ps == nil {
		b.startLocked()
	}
	cs := b.chans[name]
	if cs == nil {
		cs = &channelState{name: name}
		b.chans[name] = cs
		b.queueLocked(op{kind: opSubscribe, cs: cs})
	}
	cs.subs = append(slices.Clip(cs.subs), s)
	if cs.ready {
		// Confirmed on this connection already, and s is in the list the
		// reader delivers to.
		b.mu.Unlock()
		return s, nil
	}
	token := b.tokenLocked()
	done := make(chan struct{})
	b.pings[token] = &pending{chans: []*channelState{cs}, done: done}
	b.queueLocked(op{kind: opPing, token: token})
	b.mu.Unlock()

	var timeout <-chan time.Time
	if b.cfg.timeout > 0 {
		t := time.NewTimer(b.cfg.timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-done:
		// The reply came, Redis is unreachable, or the broker closed.
		if b.isClosed() {
			return nil, errClosed("subscribe")
		}
		return s, nil
	case <-timeout:
		// The PING stays pending: its reply still makes the channel ready.
		return s, nil
	case <-ctx.Done():
		_ = s.Unsubscribe()
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, ctx.Err())
	}
}

// Unsubscribe implements broker.Subscription. It waits for a call of
// deliver in progress to return, so it must not be called from deliver. It
// does not wait for Redis.
func (s *subscription) Unsubscribe() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	cs := b.chans[s.channel]
	if cs == nil {
		return nil // Close came first
	}
	i := slices.Index(cs.subs, s)
	if i < 0 {
		return nil
	}
	if len(cs.subs) > 1 {
		cs.subs = slices.Delete(slices.Clone(cs.subs), i, i+1)
		return nil
	}
	delete(b.chans, s.channel)
	b.queueLocked(op{kind: opUnsubscribe, name: s.channel})
	return nil
}

// startLocked creates the PubSub and starts the goroutines, which exit when
// Close closes done. b.mu must be held.
func (b *Broker) startLocked() {
	// No channels yet: go-redis connects on first use.
	b.ps = b.client.Subscribe(b.ctx)
	b.wg.Add(2)
	go b.read()
	go b.write()
	if b.cfg.healthCheck > 0 {
		b.wg.Add(1)
		go b.checkHealth()
	}
}

// tokenLocked returns a new PING payload. b.mu must be held.
func (b *Broker) tokenLocked() string {
	b.tokens++
	return "redisbroker:" + strconv.FormatUint(b.tokens, 10)
}

// queueLocked queues o for the writer. b.mu must be held.
func (b *Broker) queueLocked(o op) {
	b.ops = append(b.ops, o)
	select {
	case b.wake <- struct{}{}:
	default: // already woken
	}
}

func (b *Broker) queue(o op) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.queueLocked(o)
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

// current reports whether cs is still the state of its channel. b.mu must
// be held.
func (b *Broker) currentLocked(cs *channelState) bool { return b.chans[cs.name] == cs }

// pong handles the reply to the PING with payload token.
func (b *Broker) pong(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pings[token]
	if !ok {
		return
	}
	delete(b.pings, token)
	for _, cs := range p.chans {
		if b.currentLocked(cs) {
			cs.ready = true
		}
	}
	p.release()
	// PINGs whose channels are all ready now need no reply: this settles
	// those lost with a connection, once a barrier has covered them.
	for t, q := range b.pings {
		if !slices.ContainsFunc(q.chans, func(cs *channelState) bool { return b.currentLocked(cs) && !cs.ready }) {
			q.release()
			delete(b.pings, t)
		}
	}
}

// unconfirm marks every channel not ready, the connection having broken.
func (b *Broker) unconfirm() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, cs := range b.chans {
		cs.ready = false
	}
}

// unreachable lets every Subscribe waiting return: Redis cannot be reached.
// Their PINGs stay pending, settled once a barrier gets through.
func (b *Broker) unreachable() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.pings {
		p.release()
	}
}

// barrier sends a PING on ps whose reply makes ready every channel whose
// SUBSCRIBE was sent before it.
func (b *Broker) barrier(ps *redis.PubSub) error {
	b.mu.Lock()
	var chans []*channelState
	for _, cs := range b.chans {
		if cs.sent {
			chans = append(chans, cs)
		}
	}
	token := b.tokenLocked()
	b.pings[token] = &pending{chans: chans}
	b.mu.Unlock()
	ctx, cancel := b.opContext(b.ctx)
	defer cancel()
	err := ping(ctx, ps, token)
	if err != nil {
		b.mu.Lock()
		delete(b.pings, token)
		b.mu.Unlock()
	}
	return err
}

// write is the writer goroutine: it runs the queued ops until Close.
func (b *Broker) write() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case <-b.wake:
		}
		for {
			b.mu.Lock()
			if b.closed || len(b.ops) == 0 {
				b.ops = nil // lets the array go
				b.mu.Unlock()
				break
			}
			o := b.ops[0]
			b.ops[0] = op{}
			b.ops = b.ops[1:]
			ps := b.ps
			b.mu.Unlock()
			ctx, cancel := b.opContext(b.ctx)
			b.do(ctx, ps, o)
			cancel()
		}
	}
}

// do runs o on ps.
func (b *Broker) do(ctx context.Context, ps *redis.PubSub, o op) {
	switch o.kind {
	case opSubscribe:
		cs := o.cs
		b.mu.Lock()
		current := b.currentLocked(cs)
		b.mu.Unlock()
		if !current {
			return // unsubscribed meanwhile
		}
		// An error means Redis is unreachable: the channel is in
		// go-redis's set all the same (see subscribeOn).
		_ = subscribeOn(ctx, ps, cs.name)
		b.mu.Lock()
		cs.sent = true
		b.mu.Unlock()
	case opUnsubscribe:
		b.mu.Lock()
		again := b.chans[o.name] != nil
		b.mu.Unlock()
		if again {
			return // subscribed again meanwhile: its SUBSCRIBE is queued
		}
		// go-redis drops the channel from its set before writing, so even
		// if this fails the next connection will not subscribe to it;
		// until then the reader drops what arrives for it.
		_ = ps.Unsubscribe(ctx, o.name)
	case opPing:
		b.mu.Lock()
		p := b.pings[o.token]
		b.mu.Unlock()
		if p != nil && ping(ctx, ps, o.token) != nil {
			// Unreachable: no use waiting. The reader's barrier will
			// settle it once Redis is back.
			b.mu.Lock()
			p.release()
			b.mu.Unlock()
		}
	case opReplace:
		b.replace(ctx, o.ps)
	}
}

// subscribeOn sends SUBSCRIBE on ps. go-redis adds the channels to the set
// it subscribes again on every new connection only after its attempt; so
// when the write fails and go-redis reconnects at once, the new connection
// lacks them. A second attempt subscribes them on it, or, if it fails too,
// leaves them to the next connection, which will have them.
func subscribeOn(ctx context.Context, ps *redis.PubSub, channels ...string) error {
	err := ps.Subscribe(ctx, channels...)
	if err != nil {
		err = ps.Subscribe(ctx, channels...)
	}
	return err
}

// ping sends a PING with payload on ps. If the write fails, go-redis
// reconnects, subscribing again to every channel, and a second PING on the
// new connection serves as well.
func ping(ctx context.Context, ps *redis.PubSub, payload string) error {
	err := ps.Ping(ctx, payload)
	if err != nil {
		err = ps.Ping(ctx, payload)
	}
	return err
}

// replace replaces old, if it is still the current PubSub, by a new one
// subscribed to every channel. Publications sent meanwhile are lost, as in
// any reconnection.
func (b *Broker) replace(ctx context.Context, old *redis.PubSub) {
	b.mu.Lock()
	if b.closed || b.ps != old {
		b.mu.Unlock()
		return
	}
	chans := make([]*channelState, 0, len(b.chans))
	names := make([]string, 0, len(b.chans))
	for name, cs := range b.chans {
		chans = append(chans, cs)
		names = append(names, name)
	}
	b.mu.Unlock()
	// Subscribed before it becomes current, so that the reader's barrier
	// on it comes after these SUBSCRIBEs. Ops queued meanwhile run on it.
	ps := b.client.Subscribe(b.ctx)
	if len(names) > 0 {
		_ = subscribeOn(ctx, ps, names...)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = ps.Close()
		return
	}
	b.ps = ps
	for _, cs := range chans {
		cs.sent = true
	}
	b.mu.Unlock()
	// The reader, in Receive on old, gets an error and goes on with ps.
	_ = old.Close()
}

// read is the reader goroutine: it receives everything that arrives on the
// pub/sub connection until Close.
func (b *Broker) read() {
	defer b.wg.Done()
	delay := minRetryDelay
	// sleep waits before another attempt; false means Close came.
	sleep := func() bool {
		t := time.NewTimer(delay)
		defer t.Stop()
		delay = min(delay*2, maxRetryDelay)
		select {
		case <-b.done:
			return false
		case <-t.C:
			return true
		}
	}
	needBarrier := false
	for {
		ps := b.pubSub()
		if ps == nil {
			return
		}
		if needBarrier {
			if err := b.barrier(ps); err != nil {
				if b.pubSub() != ps {
					continue // closed, or replaced
				}
				b.unreachable()
				if !sleep() {
					return
				}
				continue
			}
			needBarrier = false
		}
		msg, err := ps.Receive(b.ctx)
		if err != nil {
			b.unconfirm()
			needBarrier = true
			if b.pubSub() != ps {
				continue // closed, or replaced
			}
			b.broken.Add(1)
			if !sleep() {
				return
			}
			continue
		}
		delay = minRetryDelay
		b.active.Add(1)
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m)
		case *redis.Pong:
			b.pong(m.Payload)
		}
		// *redis.Subscription confirmations carry nothing the PINGs don't.
	}
}

// dispatch delivers a message to the subscriptions of its channel.
func (b *Broker) dispatch(m *redis.Message) {
	b.mu.Lock()
	var list []*subscription
	if cs := b.chans[m.Channel]; cs != nil {
		list = cs.subs
	}
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
			b.queue(op{kind: opReplace, ps: ps})
			pinged = false
			continue
		}
		active, broken = a, e
		ctx, cancel := b.opContext(b.ctx)
		pinged = ps.Ping(ctx, healthPayload) == nil
		cancel()
	}
}
