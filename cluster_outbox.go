package chatroom

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

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
}

// outgoing is a publication waiting for the broker, with what the node
// needs to deliver it itself if the broker refuses it.
type outgoing struct {
	w      wire
	p      broker.Publication
	sender *Member
}

func (o *outbox) init(c *cluster) {
	o.c = c
	o.changed = make(chan struct{})
	o.fellBack = make(map[uint64]struct{})
}

// push queues p for the broker and returns: a member's reader goes on
// reading while the broker answers, and what queues meanwhile goes to the
// broker together. It waits, within ctx, only while maxOutbox publications
// are queued.
func (o *outbox) push(ctx context.Context, p post) error {
	w := wire{Node: o.c.node, Seq: o.seq.Add(1), From: p.from, Msg: &p.msg, To: p.to}
	out := outgoing{w: w, p: broker.Publication{Keep: p.to == "" && kept(p.msg.Type), Data: w.encode()}, sender: p.sender}
	o.mu.Lock()
	for len(o.queue) >= maxOutbox {
		changed := o.changed
		o.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
		o.mu.Lock()
	}
	defer o.mu.Unlock()
	o.queue = append(o.queue, out)
	if !o.sending {
		o.sending = true
		go o.run()
	}
	return nil
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
// the broker.
func (o *outbox) publish(batch []outgoing) {
	c := o.c
	room := c.rm.cfg.name
	if bb, ok := c.b.(broker.BatchBroker); ok && len(batch) > 1 {
		ps := make([]broker.Publication, len(batch))
		for i, out := range batch {
			ps[i] = out.p
		}
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		start := time.Now()
		err := bb.PublishBatch(ctx, room, ps)
		cancel()
		o.published(batch, start, err)
		return
	}
	for i := range batch {
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		start := time.Now()
		err := c.b.Publish(ctx, room, batch[i].p)
		cancel()
		o.published(batch[i:i+1], start, err)
	}
}

// published reports a call to the broker that began at start and handed
// it batch, and handles its failure.
func (o *outbox) published(batch []outgoing, start time.Time, err error) {
	c := o.c
	if c.rm.metrics != nil {
		c.rm.metrics.BrokerPublished(len(batch), time.Since(start))
	}
	if err != nil {
		o.failed(batch, err)
		return
	}
	c.health.ok()
}

// refused reports whether err says the broker certainly did not take the
// publications.
func refused(err error) bool {
	return errors.Is(err, broker.ErrUnavailable) // broker.ErrClosed wraps it
}

// failed handles publications the broker did not accept.
func (o *outbox) failed(batch []outgoing, err error) {
	rm := o.c.rm
	if !refused(err) {
		o.c.health.failed(BrokerPublish, err, "publications", len(batch),
			"effect", "the broker may still deliver them")
		return
	}
	o.c.health.failed(BrokerPublish, err, "publications", len(batch),
		"effect", "delivered on this node only")
	o.mu.Lock()
	if len(o.fellBack) > maxOutbox {
		clear(o.fellBack) // the broker hands none of them back: forget them
	}
	for _, out := range batch {
		o.fellBack[out.w.Seq] = struct{}{}
	}
	o.mu.Unlock()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for _, out := range batch {
		p := &post{msg: *out.w.Msg, to: out.w.To, from: out.w.From, mine: true, sender: out.sender, origin: out.w.Node}
		if !rm.deliverLocked(p, 0) && out.sender != nil && rm.cfg.envelope {
			rm.sendLocked(errorFrame(websocket.StatusTryAgainLater, reasonBrokerUnavailable), out.sender)
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
