package chatroom

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// maxInFlight is how many batches may wait for a broker.PipelineBroker's
// answer at once: under a paced load a publication then goes out at once
// rather than after the round trip of the one ahead of it.
const (
	maxOutbox       = 4096
	maxPublishBatch = 64
	maxInFlight     = 8
)

// reasonBrokerUnavailable is the reason of the error frame, code 1013, that
// refuses a message on a node that can deliver no more on its own.
const reasonBrokerUnavailable = "broker unavailable"

// outbox hands the room's posts to the broker, in order, from one goroutine
// at a time that runs while it has some. To a broker.PipelineBroker it
// hands the next batch while the broker answers for those before, up to
// maxInFlight of them, and a second goroutine takes the answers in order
// (pipeline).
type outbox struct {
	c     *cluster
	seq   atomic.Uint64 // the last wire.Seq given
	wake  chan struct{} // a post was queued while the sender runs
	slots chan struct{} // one per batch in flight to a PipelineBroker

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
	o.wake = make(chan struct{}, 1)
	o.slots = make(chan struct{}, maxInFlight)
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
	} else {
		select {
		case o.wake <- struct{}{}:
		default: // the sender has been woken already
		}
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

// run hands the queue to the broker, in order, until it is empty and the
// broker has answered for all of it. push starts it; drain waits for it.
func (o *outbox) run() {
	var pl *pipeline // the last batches handed to a PipelineBroker
	for {
		o.mu.Lock()
		batch := o.queue
		if len(batch) == 0 && (pl == nil || pl.finished()) {
			o.queue = nil
			o.sending = false
			o.signalLocked()
			o.mu.Unlock()
			return
		}
		if len(batch) == 0 {
			o.mu.Unlock()
			pl.close()
			select {
			case <-o.wake: // a new post goes out while the broker answers
			case <-pl.done:
			}
			continue
		}
		if len(batch) > maxPublishBatch {
			batch = batch[:maxPublishBatch]
		}
		o.queue = o.queue[len(batch):]
		o.signalLocked()
		o.mu.Unlock()
		pb, ok := o.c.b.(broker.PipelineBroker)
		if ok && !o.dedup(batch) {
			if pl == nil || pl.closed {
				pl = o.newPipeline(pl)
			}
			pl.send(pb, batch)
			continue
		}
		if pl != nil {
			pl.wait() // answers in order
		}
		o.publish(batch)
	}
}

// pipeline takes the broker's answers for the batches handed to a
// broker.PipelineBroker, in the order they were sent, on a goroutine of
// its own that ends once it is closed and has taken them all. The outbox's
// sender owns it.
type pipeline struct {
	o      *outbox
	sent   chan sentBatch
	done   chan struct{} // closed when the goroutine has ended
	closed bool
}

// sentBatch is a batch in flight: wait gives the broker's answer.
type sentBatch struct {
	batch  []outgoing
	start  time.Time
	wait   func() error
	cancel context.CancelFunc
}

// newPipeline starts a pipeline whose answers come after prev's, if any.
func (o *outbox) newPipeline(prev *pipeline) *pipeline {
	pl := &pipeline{o: o, sent: make(chan sentBatch, maxInFlight), done: make(chan struct{})}
	var after <-chan struct{}
	if prev != nil {
		after = prev.done
	}
	go pl.answers(after)
	return pl
}

// answers handles each batch's answer in turn, after those of the
// pipeline that after belongs to.
func (pl *pipeline) answers(after <-chan struct{}) {
	defer close(pl.done)
	if after != nil {
		<-after
	}
	for s := range pl.sent {
		err := s.wait()
		s.cancel()
		pl.o.published(s.batch, s.start, err)
		<-pl.o.slots
	}
}

// send hands batch to pb, waiting while maxInFlight batches are in flight.
// If sending fails, it closes the pipeline and handles the failure after
// the answers for the batches before: their order is the room's.
func (pl *pipeline) send(pb broker.PipelineBroker, batch []outgoing) {
	o := pl.o
	o.slots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	start := time.Now()
	wait, err := pb.SendBatch(ctx, o.c.rm.cfg.name, publications(batch))
	if err != nil {
		cancel()
		<-o.slots
		pl.wait()
		o.published(batch, start, err)
		return
	}
	pl.sent <- sentBatch{batch: batch, start: start, wait: wait, cancel: cancel}
}

// close tells the pipeline that no more batches come.
func (pl *pipeline) close() {
	if !pl.closed {
		pl.closed = true
		close(pl.sent)
	}
}

// wait closes the pipeline and waits until it has taken every answer.
func (pl *pipeline) wait() {
	pl.close()
	<-pl.done
}

// finished reports whether the pipeline has taken every answer.
func (pl *pipeline) finished() bool {
	select {
	case <-pl.done:
		return true
	default:
		return false
	}
}

// dedup reports whether batch goes to a DedupBroker's PublishOnce.
func (o *outbox) dedup(batch []outgoing) bool {
	_, ok := o.c.b.(broker.DedupBroker)
	return ok && slices.ContainsFunc(batch, func(out outgoing) bool { return out.p.Key != "" })
}

// publications returns the broker's publications of batch.
func publications(batch []outgoing) []broker.Publication {
	ps := make([]broker.Publication, len(batch))
	for i, out := range batch {
		ps[i] = out.p
	}
	return ps
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
	if o.dedup(batch) {
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		start := time.Now()
		dups, err := c.b.(broker.DedupBroker).PublishOnce(ctx, room, publications(batch))
		cancel()
		o.published(batch, start, err)
		o.duplicates(batch, dups)
		return
	}
	if bb, ok := c.b.(broker.BatchBroker); ok && len(batch) > 1 {
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		start := time.Now()
		err := bb.PublishBatch(ctx, room, publications(batch))
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

// published reports a call to the broker that began at start and handed
// it batch, and handles its failure. A host waiting for a post that this
// node will not receive, as it is not subscribed, learns that it has no ID
// here.
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
	if c.subscribed.Load() {
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
		if out.sender != nil {
			rm.cfg.log.Debug("chatroom: resent message acknowledged", "room", rm.cfg.name, "member", out.sender.String(), "ref", p.ref, "id", id)
		}
		rm.ackLocked(&p, id)
	}
}

// failed handles publications the broker did not accept.
func (o *outbox) failed(batch []outgoing, err error) {
	rm := o.c.rm
	if !refused(err) {
		o.c.health.failed(BrokerPublish, err, "publications", len(batch),
			"effect", "the broker may still deliver them")
		rm.mu.Lock()
		for _, out := range batch {
			if e := rm.refs.byKey[out.w.Key]; out.w.Key != "" && e != nil && e.id == 0 {
				// Not known to be taken: a resend may try again, and the
				// broker's record tells if it was. If the broker hands it
				// back, its sender is acknowledged then.
				rm.refs.releaseLocked(e)
			}
		}
		rm.mu.Unlock()
		for _, out := range batch {
			if out.wait {
				o.settle(out.w.Seq, outcome{err: fmt.Errorf("chatroom: the broker did not confirm the message: %w", err)})
			}
		}
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
			rm.refuseLocked(out.sender, rm.refs.byKey[p.key], p.ref, &answer)
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
