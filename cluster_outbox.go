package chatroom

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom/broker"
)

// maxOutbox is how many publications may wait for the broker before
// senders wait too; maxPublishBatch is how many go to a BatchBroker at once:
// enough that a round trip to the broker is shared by many, few enough that
// a broker keeping a bounded number per room (JetStream) is not handed more
// than a subscriber may have to catch up with.
const (
	maxOutbox       = 4096
	maxPublishBatch = 64
)

// reasonBrokerUnavailable is the reason of the error frame, code 1013, that
// refuses a message on a node that can deliver no more on its own.
const reasonBrokerUnavailable = "broker unavailable"

// outbox hands the room's posts to the broker, in order, from one goroutine
// at a time that runs while it has some.
type outbox struct {
	c   *cluster
	seq atomic.Uint64 // the last wire.Seq given

	mu      sync.Mutex // guards the fields below
	queue   []outgoing
	sending bool          // a sender goroutine is running
	changed chan struct{} // closed, and replaced, when queue shrinks or sending stops
	// fellBack holds the publications the node delivered itself because the
	// broker refused them, by wire.Seq, in case it hands one back anyway.
	fellBack map[uint64]struct{}
	// waiting holds, by wire.Seq, the hosts' posts whose ID their
	// Broadcast or SendTo waits for.
	waiting map[uint64]chan<- outcome
}

// outgoing is a publication waiting for the broker, with what the node
// needs to deliver it itself if the broker refuses it.
type outgoing struct {
	w      wire
	p      broker.Publication
	sender *Member
	wait   bool // a host waits for its ID
}

// outcome is what became of a host's post: the ID it got on this node, or
// why none.
type outcome struct {
	id  uint64
	err error
}

func (o *outbox) init(c *cluster) {
	o.c = c
	o.changed = make(chan struct{})
	o.fellBack = make(map[uint64]struct{})
	o.waiting = make(map[uint64]chan<- outcome)
}

// push queues p for the broker: a member's reader goes on reading while the
// broker answers, and what queues meanwhile goes to the broker together. It
// waits, within ctx, while maxOutbox publications are queued, and for a
// host's post (one without a sender) until the post has its ID on this
// node, which it returns.
func (o *outbox) push(ctx context.Context, p post) (uint64, error) {
	w := wire{Node: o.c.node, Seq: o.seq.Add(1), From: p.from, Msg: &p.msg, To: p.to, Ref: p.ref, Key: p.key}
	out := outgoing{w: w, p: broker.Publication{Keep: p.to == "" && kept(p.msg.Type), Key: p.key, Data: w.encode()}, sender: p.sender}
	var done chan outcome
	if p.sender == nil && !isNotice(p.msg.Type) {
		done = make(chan outcome, 1)
		out.wait = true
	}
	o.mu.Lock()
	for len(o.queue) >= maxOutbox {
		changed := o.changed
		o.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		o.mu.Lock()
	}
	o.queue = append(o.queue, out)
	if done != nil {
		o.waiting[w.Seq] = done
	}
	if !o.sending {
		o.sending = true
		go o.run()
	}
	o.mu.Unlock()
	if done == nil {
		return 0, nil
	}
	select {
	case r := <-done:
		return r.id, r.err
	case <-ctx.Done():
		o.settle(w.Seq, outcome{})
		return 0, ctx.Err()
	}
}

// settle tells the host that waits for the post seq, if one does, what
// became of it.
func (o *outbox) settle(seq uint64, r outcome) {
	o.mu.Lock()
	done := o.waiting[seq]
	delete(o.waiting, seq)
	o.mu.Unlock()
	if done != nil {
		done <- r
	}
}

// signalLocked wakes whoever waits on the outbox. o.mu is held.
func (o *outbox) signalLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// run hands the queue to the broker, in order, until it is empty. push
// starts it; drain waits for it.
func (o *outbox) run() {
	for {
		o.mu.Lock()
		batch := o.queue
		if len(batch) == 0 {
			o.queue = nil
			o.sending = false
			o.signalLocked()
			o.mu.Unlock()
			return
		}
		if len(batch) > maxPublishBatch {
			batch = batch[:maxPublishBatch]
		}
		o.queue = o.queue[len(batch):]
		o.signalLocked()
		o.mu.Unlock()
		o.publish(batch)
	}
}

// drain waits until the queue is empty and no sender runs.
func (o *outbox) drain() {
	o.mu.Lock()
	for o.sending {
		changed := o.changed
		o.mu.Unlock()
		<-changed
		o.mu.Lock()
	}
	o.mu.Unlock()
}

// publish hands batch to the broker. What the broker certainly refused, the
// node delivers to its own members; what it may still take, it leaves to
// the broker. Messages with a ref go to a DedupBroker's PublishOnce, which
// says which it had taken already.
func (o *outbox) publish(batch []outgoing) {
	c := o.c
	room := c.rm.cfg.name
	if db, ok := c.b.(broker.DedupBroker); ok && slices.ContainsFunc(batch, func(out outgoing) bool { return out.p.Key != "" }) {
		ps := make([]broker.Publication, len(batch))
		for i, out := range batch {
			ps[i] = out.p
		}
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		dups, err := db.PublishOnce(ctx, room, ps)
		cancel()
		o.published(batch, err)
		o.duplicates(batch, dups)
		return
	}
	if bb, ok := c.b.(broker.BatchBroker); ok && len(batch) > 1 {
		ps := make([]broker.Publication, len(batch))
		for i, out := range batch {
			ps[i] = out.p
		}
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		err := bb.PublishBatch(ctx, room, ps)
		cancel()
		o.published(batch, err)
		return
	}
	for i := range batch {
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		err := c.b.Publish(ctx, room, batch[i].p)
		cancel()
		o.published(batch[i:i+1], err)
	}
}

// settleAll tells every host that waits that its post has no ID here.
func (o *outbox) settleAll() {
	o.mu.Lock()
	waiting := o.waiting
	o.waiting = make(map[uint64]chan<- outcome)
	o.mu.Unlock()
	for _, done := range waiting {
		done <- outcome{}
	}
}

// published handles what the broker said of batch. A host waiting for a
// post that this node will not receive, as it is not subscribed, learns
// that it has no ID here.
func (o *outbox) published(batch []outgoing, err error) {
	if err != nil {
		o.failed(batch, err)
		return
	}
	if o.c.subscribed.Load() {
		return // the post's delivery settles it
	}
	for _, out := range batch {
		if out.wait {
			o.settle(out.w.Seq, outcome{})
		}
	}
}

// refused reports whether err says the broker certainly did not take the
// publications.
func refused(err error) bool {
	return errors.Is(err, broker.ErrUnavailable) // broker.ErrClosed wraps it
}

// duplicates acknowledges the messages of batch that a DedupBroker had
// taken already, through another node or before a reconnect, with the ID
// the first got.
func (o *outbox) duplicates(batch []outgoing, dups []broker.Duplicate) {
	if len(dups) == 0 {
		return
	}
	rm := o.c.rm
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for _, d := range dups {
		if d.Index < 0 || d.Index >= len(batch) {
			continue
		}
		out := batch[d.Index]
		p := out.w.post(true)
		p.sender = out.sender
		id := d.ID * idStride
		if d.ID == 0 || !kept(p.msg.Type) || p.to != "" {
			id = rm.ids.last // a direct message's ID is its node's position
		}
		rm.cfg.log.Debug("chatroom: resent message acknowledged", "member", out.sender, "ref", p.ref, "id", id)
		rm.ackLocked(&p, id)
	}
}

// failed handles publications the broker did not accept.
func (o *outbox) failed(batch []outgoing, err error) {
	rm := o.c.rm
	if !refused(err) {
		rm.cfg.log.Warn("chatroom: broker did not answer; it may still deliver the publications",
			"room", rm.cfg.name, "publications", len(batch), "err", err)
		for _, out := range batch {
			if out.wait {
				o.settle(out.w.Seq, outcome{err: fmt.Errorf("chatroom: the broker did not confirm the message: %w", err)})
			}
		}
		return
	}
	rm.cfg.log.Warn("chatroom: broker publish failed; delivering on this node only",
		"room", rm.cfg.name, "publications", len(batch), "err", err)
	o.mu.Lock()
	if len(o.fellBack) > maxOutbox {
		clear(o.fellBack) // the broker hands none of them back: forget them
	}
	for _, out := range batch {
		o.fellBack[out.w.Seq] = struct{}{}
	}
	o.mu.Unlock()
	outcomes := make([]outcome, len(batch))
	rm.mu.Lock()
	for i, out := range batch {
		p := out.w.post(true)
		p.sender = out.sender
		id, ok := rm.deliverLocked(&p, 0)
		outcomes[i].id = id
		if ok {
			continue
		}
		outcomes[i].err = fmt.Errorf("chatroom: %s: %w", reasonBrokerUnavailable, err)
		if out.sender != nil && rm.cfg.envelope {
			answer := errorFrame(websocket.StatusTryAgainLater, reasonBrokerUnavailable)
			answer.Ref = p.ref
			rm.sendLocked(answer, out.sender)
		}
	}
	rm.mu.Unlock()
	for i, out := range batch {
		if out.wait {
			o.settle(out.w.Seq, outcomes[i])
		}
	}
}

// delivered reports whether the node delivered the publication seq itself,
// and forgets it.
func (o *outbox) delivered(seq uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.fellBack[seq]; ok {
		delete(o.fellBack, seq)
		return true
	}
	return false
}
