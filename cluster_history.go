package chatroom

import (
	"context"
	"math"
	"slices"
	"sync"

	"github.com/seed014c2c51/chatroom/broker"
)

// recentFrames is what a node on a HistoryBroker keeps to replay a joiner's
// history: the latest room frames it delivered, and the history read for
// each member about to join.
type recentFrames struct {
	mu sync.Mutex
	// keep is how many frames it remembers: the room's History.Len (0
	// without history, whose joiners are replayed nothing). They bridge a
	// joiner's history, read from the broker, and the live frames, and
	// need only span the broker's answer; a joiner is owed no more than
	// the last History.Len, and a resuming client that missed more than
	// the bridge holds is told so (replayLocked). Not a fixed count: 256
	// frames held about 160 KiB per room on every node, whatever the
	// room's history.
	keep    int
	frames  keptFrames         // the latest room frames, oldest first
	joiners map[*Member]replay // history read for members about to join
}

// replay is the history a joiner receives, read from a HistoryBroker.
type replay struct {
	msgs      []Message
	truncated bool // the joiner resumes and the broker does not have all it missed
}

func (r *recentFrames) init(keep int) {
	r.keep = keep
	r.joiners = make(map[*Member]replay)
	r.frames = keptFrames{maxCount: keep, maxBytes: math.MaxInt}
}

func (r *recentFrames) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = keptFrames{maxCount: r.keep, maxBytes: math.MaxInt}
}

// deliveredLocked implements link for the cluster: it remembers the room
// frames the broker numbered. rm.mu is held.
func (c *cluster) deliveredLocked(msg Message) {
	r := &c.recent
	if !c.numbered() || msg.ID%idStride != 0 || r.keep == 0 {
		return // not numbered by the broker (not in its history either), or no history
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames.push(msg)
}

// readHistory implements link for the cluster: it reads from a
// HistoryBroker, before m is added, the history m will receive. It does
// nothing unless the room keeps history.
func (c *cluster) readHistory(m *Member) {
	rm := c.rm
	if !c.numbered() || rm.cfg.historyLen == 0 {
		return
	}
	var after uint64
	var local bool
	if m.resume {
		after, local = brokerSince(m.since)
	}
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	pubs, complete, err := c.history.History(ctx, rm.cfg.name, after)
	if err != nil {
		c.health.failed(BrokerHistory, err, "member", m.String())
		complete = false
	}
	r := replay{truncated: m.resume && (!complete || local)}
	if r.truncated && !local {
		if missed, ok := c.readStored(ctx, m); ok {
			r = missed
			pubs = nil
		}
	}
	r.msgs = append(r.msgs, brokerFrames(pubs)...)
	if !m.resume {
		r.msgs = newest(r.msgs, rm.cfg.historyLen, rm.cfg.historyBytes)
	}
	c.recent.mu.Lock()
	c.recent.joiners[m] = r
	c.recent.mu.Unlock()
}

// readStored reads what m, resuming from further back than the broker's
// history, missed from the room's Store, if it is a DatabaseStore that
// holds m's since, and the rest from the broker: it reports false unless
// the two meet.
func (c *cluster) readStored(ctx context.Context, m *Member) (replay, bool) {
	rm := c.rm
	st, ok := rm.store.(DatabaseStore)
	if !ok {
		return replay{}, false
	}
	if first, last := st.Span(); m.since < first || m.since > last {
		return replay{}, false
	}
	missed, complete, err := rm.readStored(m, st, m.since)
	if err != nil || len(missed) == 0 {
		return replay{}, false
	}
	after := missed[len(missed)-1].ID / idStride
	pubs, met, err := c.history.History(ctx, rm.cfg.name, after)
	if err != nil || !met {
		return replay{}, false
	}
	return replay{msgs: append(missed, brokerFrames(pubs)...), truncated: !complete}, true
}

// fillStore writes to the room's Store, if it is a DatabaseStore, the
// broker's history, of which the database keeps what it lacks: frames that
// the nodes subscribed when they were sent died before writing, or sent
// while no node was subscribed (also during a broker's restart). Called
// once the node has subscribed, without the room's lock.
func (c *cluster) fillStore(ctx context.Context) {
	rm := c.rm
	st, ok := rm.store.(DatabaseStore)
	if !ok || !c.numbered() {
		return
	}
	pubs, _, err := c.history.History(ctx, rm.cfg.name, 0)
	if err == nil {
		err = st.Fill(ctx, brokerFrames(pubs))
	}
	if err != nil {
		rm.cfg.log.Warn("chatroom: filling the store from the broker's history failed", "room", rm.cfg.name, "err", err)
	}
}

// brokerFrames decodes the room frames of a HistoryBroker's publications,
// with their IDs.
func brokerFrames(pubs []broker.Publication) []Message {
	var msgs []Message
	for _, p := range pubs {
		w, err := decodeWire(p.Data)
		if err != nil || w.Msg == nil {
			continue
		}
		msg := *w.Msg
		msg.ID = min(p.ID, maxBrokerID) * idStride
		msgs = append(msgs, msg)
	}
	return msgs
}

// newest returns the last of msgs, at most n and within maxBytes (see
// storedSize), but always the last one: what a store of those bounds would
// keep of them.
func newest(msgs []Message, n, maxBytes int) []Message {
	q := keptFrames{maxCount: n, maxBytes: maxBytes}
	for _, msg := range msgs {
		q.push(msg)
	}
	return q.since(0)
}

// forget implements link for the cluster: it drops the history read for a
// member that did not join.
func (c *cluster) forget(m *Member) {
	c.recent.mu.Lock()
	delete(c.recent.joiners, m)
	c.recent.mu.Unlock()
}

// replayLocked implements link for the cluster: it queues for m the history
// read for it, then the room frames this node delivered since that read;
// without a HistoryBroker, the node's own history. rm.mu is held.
func (c *cluster) replayLocked(m *Member) {
	if !c.numbered() {
		c.rm.replayStoreLocked(m)
		return
	}
	r := &c.recent
	r.mu.Lock()
	rp, ok := r.joiners[m]
	delete(r.joiners, m)
	var msgs []Message
	if ok {
		var last uint64
		if m.resume {
			last = m.since
		}
		if len(rp.msgs) > 0 {
			last = rp.msgs[len(rp.msgs)-1].ID
		}
		// The bridge let go of frames after what the broker answered:
		// more arrived meanwhile than it holds.
		rp.truncated = rp.truncated || (m.resume && r.frames.dropped > last)
		// Clipped, so that the recent frames are copied, not shared with
		// a queue that goes on changing.
		msgs = append(slices.Clip(rp.msgs), r.frames.since(last)...)
	}
	r.mu.Unlock()
	if !ok {
		return
	}
	if m.resume {
		c.rm.resumedLocked(m, rp.truncated)
	} else {
		// The last History.Len, as a node without a broker replays:
		// neither the bridge's on top of the broker's, nor a gap between.
		msgs = newest(msgs, c.rm.cfg.historyLen, c.rm.cfg.historyBytes)
	}
	if len(msgs) > 0 {
		m.replayed = msgs[len(msgs)-1].ID
	}
	m.replayLocked(msgs)
}
