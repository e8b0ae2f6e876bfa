package chatroom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"github.com/seed014c2c51/chatroom/broker"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHeartbeat is how often a node tells the others which members it
// has in a room (WithHeartbeat).
const DefaultHeartbeat = 5 * time.Second

// brokerTimeout bounds every call the room makes to its broker, so that a
// broker that hangs delays a sender by at most this much.
const brokerTimeout = 2 * time.Second

// recentKept is how many of the latest kept frames a node remembers, to
// bridge a joiner's history, read from the broker, and the live frames.
const recentKept = 256

// maxOutbox is how many publications may wait for the broker before
// senders wait too; maxPublishBatch is how many go to a BatchBroker at once:
// enough that a round trip to the broker is shared by many, few enough that
// a broker keeping a bounded number per room (JetStream) is not handed more
// than a subscriber may have to catch up with.
const (
	maxOutbox       = 4096
	maxPublishBatch = 64
)

// WithBroker joins this room to the rooms of the same name (WithName, or
// the Registry's name) on other nodes through b, so that they act as one
// room: a member's message, a Broadcast, a join or leave notice, a direct
// message reaches the members on every node exactly once, and each
// sender's frames keep their order everywhere. Without it a room is its
// own broker and nothing leaves the process.
//
// A node subscribes to a room only while it has members there. Every frame
// for the whole room goes through the broker, and reaches this node's
// members too when the broker delivers it back: what a member sends costs
// one publication, encoded once, and each node encodes each frame once for
// all of its members. The hooks run on the node where the member is
// connected: OnMessage before the message is published.
//
// Two goroutines of the room's run while it is subscribed, and end with the
// subscription, or by the time Close or Shutdown return: one sends the
// heartbeats, and one hands the publications to the broker in order. A
// member's reader only queues its publication and goes on reading; what
// queues while the broker answers goes out together, in one call to a
// BatchBroker. A sender waits only while 4096 publications are queued.
//
// What holds cluster-wide depends on the broker (see the table in the
// README):
//
//   - A HistoryBroker numbers the room's frames, so IDs, WithHistory and
//     resuming with ?since= hold across nodes: a client that reconnects to
//     another node receives what it missed. Its history replaces the
//     room's Store; WithHistory's n is how many frames a joiner receives.
//     Frames for one member (the member list, error and truncated frames)
//     carry the ID of the room frame before them. With a plain Broker,
//     each node numbers what it delivers and keeps its own history, which
//     begins again whenever the node subscribes afresh.
//   - Presence (Room.Nicknames, WithPresence, WithNotices,
//     WithUniqueNicknames) is kept by every node from the others'
//     heartbeats (WithHeartbeat) and notices; a PresenceBroker also seeds
//     it when a node subscribes. A node that stops sending heartbeats, for
//     instance because it crashed, leaves the presence of the others within
//     four heartbeats (of a node that subscribed after it died, within
//     three heartbeats of subscribing), each node then announcing its
//     members' leave to its own members. Two clients that race for one nickname on two nodes may
//     both get it under WithUniqueNicknames.
//
// When the broker cannot take a publication (it is down, or does not
// answer within 2 seconds), the room logs it at Warn and delivers the frame
// to its own members only: during an outage each node goes on as a room of
// its own, and what is sent then never reaches the other nodes nor the
// broker's history. Adapters reconnect and subscribe again by themselves;
// what the broker accepted but had not delivered when it failed may be
// lost, as the adapter documents.
func WithBroker(b broker.Broker) Option {
	return func(c *config) { c.broker = b }
}

// WithHeartbeat sets how often a node of a cluster (WithBroker) sends the
// others the nicknames it has in a room; DefaultHeartbeat by default. A
// node that has not been heard of for three heartbeats is taken to have
// left, so a crashed node's members leave the presence of the others within
// four heartbeats.
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.heartbeat = d
		}
	}
}

// wire is a publication's Data: what one node tells the others about a
// room. It is JSON so that it stays readable in a broker's tools.
type wire struct {
	Node string `json:"n"`
	// Seq numbers the node's publications, so that one it has already
	// delivered itself, because Publish failed, is not delivered twice.
	Seq  uint64 `json:"s,omitempty"`
	From uint64 `json:"f,omitempty"` // the sending member's ID on Node
	// Msg is a frame for the whole room, or, if To is set, for the
	// connections of nickname To (and the sending member's own).
	Msg *Message `json:"m,omitempty"`
	To  string   `json:"t,omitempty"`
	// Snapshot says this is the node's presence: the nicknames it has, in
	// join order. Query asks every other node for its presence now.
	Snapshot bool     `json:"p,omitempty"`
	Nicks    []string `json:"k,omitempty"`
	Query    bool     `json:"q,omitempty"`
}

// cluster is a room's link to its broker.
type cluster struct {
	rm        *Room
	b         broker.Broker
	history   broker.HistoryBroker  // b, if it keeps history
	presence  broker.PresenceBroker // b, if it stores presence
	node      string                // this room's name among the nodes
	heartbeat time.Duration
	seq       atomic.Uint64 // the last wire.Seq given

	subMu sync.Mutex // serialises subscribing and unsubscribing; guards the fields below
	users int        // members joined or joining
	sub   broker.Subscription
	stop  chan struct{} // closed to stop the heartbeat loop
	done  chan struct{} // closed when it has stopped
	nudge chan struct{} // asks the heartbeat loop to announce now

	outMu   sync.Mutex // guards the fields below
	outbox  []outgoing // publications for the broker, in order
	sending bool       // a sender goroutine is running
	outCond *sync.Cond // signalled when the outbox shrinks or sending stops

	// Guarded by rm.mu.
	peers   map[string]*peer    // other nodes' members
	told    map[string]bool     // nicknames this node's members know are present
	recent  []Message           // the latest kept frames, oldest first (broker.HistoryBroker)
	own     map[uint64]ownState // own publications on their way, by wire.Seq
	joiners map[*Member]replay  // history read for members about to join
}

// outgoing is a publication waiting for the broker, with what the node
// needs to deliver it itself if the broker cannot take it.
type outgoing struct {
	w wire
	p broker.Publication
}

// ownState tracks one of the node's own publications, so that each of its
// members receives it once, whether the broker hands it back, the node
// delivers it itself because Publish failed, or both.
type ownState uint8

const (
	ownPending  ownState = iota + 1 // handed to the broker
	ownEchoed                       // the broker handed it back: delivered
	ownFellBack                     // Publish failed: delivered by the node
)

// peer is what a node knows of another node's members.
type peer struct {
	nicks   []string
	expires time.Time
}

// replay is the history a joiner receives, read from a HistoryBroker.
type replay struct {
	msgs     []Message
	complete bool
}

func newCluster(rm *Room) *cluster {
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails
	c := &cluster{
		rm:        rm,
		b:         rm.cfg.broker,
		node:      hex.EncodeToString(id[:]),
		heartbeat: rm.cfg.heartbeat,
		nudge:     make(chan struct{}, 1),
		peers:     make(map[string]*peer),
		told:      make(map[string]bool),
		own:       make(map[uint64]ownState),
		joiners:   make(map[*Member]replay),
	}
	c.outCond = sync.NewCond(&c.outMu)
	c.history, _ = c.b.(broker.HistoryBroker)
	c.presence, _ = c.b.(broker.PresenceBroker)
	return c
}

// numbered reports whether the broker numbers the room's frames.
func (c *cluster) numbered() bool { return c.history != nil }

// enter counts a joining member in, subscribing the node to the room for
// the first. A broker that refuses the subscription (it is closed) leaves
// the room working on its own; the error is logged.
func (c *cluster) enter() {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.users++
	if c.users > 1 {
		return
	}
	rm := c.rm
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	sub, err := c.b.Subscribe(ctx, rm.cfg.name, c.deliver)
	if err != nil {
		rm.cfg.log.Error("chatroom: broker subscribe failed", "room", rm.cfg.name, "err", err)
		return
	}
	c.sub = sub
	var seeded map[string][]string
	if c.presence != nil {
		seeded, err = c.presence.Presence(ctx, rm.cfg.name)
		if err != nil {
			rm.cfg.log.Warn("chatroom: broker presence failed", "room", rm.cfg.name, "err", err)
		}
	}
	rm.mu.Lock()
	if !c.numbered() {
		// This node's history has a gap from here on: IDs from before it
		// are treated as foreign, so resuming clients learn of it.
		rm.startNumberingLocked()
	}
	// A seeded node that is alive answers the query announce sends below
	// at once; one that died recently is forgotten sooner than its record
	// would be.
	expires := time.Now().Add(2 * c.heartbeat)
	for node, nicks := range seeded {
		if node != c.node && len(nicks) > 0 {
			c.peers[node] = &peer{nicks: nicks, expires: expires}
		}
	}
	c.reconcileLocked()
	rm.mu.Unlock()

	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.loop(c.stop, c.done)
	c.announce(true)
}

// exit counts a member out, unsubscribing the node after the last: it
// tells the others it has no members left, so they need not wait for its
// heartbeats to stop.
func (c *cluster) exit() {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.users--
	if c.users > 0 || c.sub == nil {
		return
	}
	close(c.stop)
	<-c.done
	c.drain() // the last leave notice goes out before the subscription ends
	c.announce(false)
	if err := c.sub.Unsubscribe(); err != nil {
		c.rm.cfg.log.Warn("chatroom: broker unsubscribe failed", "room", c.rm.cfg.name, "err", err)
	}
	c.sub = nil
	c.rm.mu.Lock()
	clear(c.peers)
	clear(c.told)
	c.recent = c.recent[:0]
	c.rm.mu.Unlock()
}

// loop sends the node's heartbeat and forgets nodes not heard of, until
// stop is closed. exit owns it.
func (c *cluster) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c.expire(time.Now())
			c.announce(false)
		case <-c.nudge:
			c.announce(false)
		}
	}
}

// announce publishes the node's presence in the room, and stores it in a
// PresenceBroker; query asks the other nodes for theirs.
func (c *cluster) announce(query bool) {
	rm := c.rm
	rm.mu.Lock()
	nicks := rm.localNicknamesLocked()
	rm.mu.Unlock()
	data, _ := json.Marshal(wire{Node: c.node, Snapshot: true, Nicks: nicks, Query: query}) // cannot fail
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	if err := c.b.Publish(ctx, rm.cfg.name, broker.Publication{Data: data}); err != nil {
		rm.cfg.log.Debug("chatroom: broker heartbeat failed", "room", rm.cfg.name, "err", err)
	}
	if c.presence != nil {
		if err := c.presence.SetPresence(ctx, rm.cfg.name, c.node, nicks, 3*c.heartbeat); err != nil {
			rm.cfg.log.Debug("chatroom: broker presence failed", "room", rm.cfg.name, "err", err)
		}
	}
}

// expire forgets the nodes not heard of for three heartbeats.
func (c *cluster) expire(now time.Time) {
	c.rm.mu.Lock()
	defer c.rm.mu.Unlock()
	for node, p := range c.peers {
		if now.After(p.expires) {
			delete(c.peers, node)
		}
	}
	c.reconcileLocked()
}

// publish sends msg to the whole cluster, or only to the connections of
// nickname to; from is the member that sent it, or nil. It queues the
// publication for the room's sender goroutine and returns: a member's
// reader goes on reading while the broker answers, and publications that
// queue meanwhile go to the broker together. It waits only while
// maxOutbox publications are queued.
func (c *cluster) publish(from *Member, to string, msg Message) {
	rm := c.rm
	msg.Type = msg.Type.orDefault()
	msg.ID = 0
	msg.Time = time.Time{}
	if rm.cfg.stamps() {
		msg.Time = rm.cfg.now()
	}
	w := wire{Node: c.node, Seq: c.seq.Add(1), Msg: &msg, To: to}
	if from != nil {
		w.From = from.id
	}
	data, _ := json.Marshal(w) // cannot fail: a Message always encodes
	o := outgoing{w: w, p: broker.Publication{Keep: to == "" && kept(msg.Type), Data: data}}

	c.outMu.Lock()
	defer c.outMu.Unlock()
	for len(c.outbox) >= maxOutbox {
		c.outCond.Wait()
	}
	c.outbox = append(c.outbox, o)
	if !c.sending {
		c.sending = true
		go c.send()
	}
}

// send hands the outbox to the broker, in order, until it is empty. One
// runs per room at a time; publish starts it, and drain waits for it.
func (c *cluster) send() {
	for {
		c.outMu.Lock()
		batch := c.outbox
		if len(batch) == 0 {
			c.outbox = nil
			c.sending = false
			c.outCond.Broadcast()
			c.outMu.Unlock()
			return
		}
		if len(batch) > maxPublishBatch {
			batch = batch[:maxPublishBatch]
		}
		c.outbox = c.outbox[len(batch):]
		c.outCond.Broadcast()
		c.outMu.Unlock()
		c.sendBatch(batch)
	}
}

// drain waits until the outbox is empty and no sender runs.
func (c *cluster) drain() {
	c.outMu.Lock()
	for c.sending {
		c.outCond.Wait()
	}
	c.outMu.Unlock()
}

// sendBatch publishes batch, and delivers to the node's own members what
// the broker may not have taken.
func (c *cluster) sendBatch(batch []outgoing) {
	rm := c.rm
	rm.mu.Lock()
	for _, o := range batch {
		c.own[o.w.Seq] = ownPending
	}
	rm.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	accepted := 0 // batch[:accepted] the broker took for sure
	var err error
	if bb, ok := c.b.(broker.BatchBroker); ok && len(batch) > 1 {
		ps := make([]broker.Publication, len(batch))
		for i, o := range batch {
			ps[i] = o.p
		}
		if err = bb.PublishBatch(ctx, rm.cfg.name, ps); err == nil {
			accepted = len(batch)
		}
	} else {
		for _, o := range batch {
			if err = c.b.Publish(ctx, rm.cfg.name, o.p); err != nil {
				break
			}
			accepted++
		}
	}
	if err != nil {
		rm.cfg.log.Warn("chatroom: broker publish failed; delivering on this node only",
			"room", rm.cfg.name, "publications", len(batch)-accepted, "err", err)
	}

	rm.mu.Lock()
	defer rm.mu.Unlock()
	for i, o := range batch {
		if i < accepted || c.own[o.w.Seq] == ownEchoed {
			delete(c.own, o.w.Seq)
			continue
		}
		c.own[o.w.Seq] = ownFellBack
		c.deliverLocked(&o.w, broker.Publication{})
	}
	if len(c.own) > maxOutbox {
		// Only fallen-back publications the broker never handed back are
		// left here, and no other batch is on its way: forget them.
		clear(c.own)
	}
}

// deliver is the subscription's callback: one publication from any node,
// this one included.
func (c *cluster) deliver(p broker.Publication) {
	var w wire
	if err := json.Unmarshal(p.Data, &w); err != nil || w.Node == "" {
		c.rm.cfg.log.Warn("chatroom: undecodable publication from broker", "room", c.rm.cfg.name, "err", err)
		return
	}
	rm := c.rm
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if w.Snapshot {
		if w.Node == c.node {
			return
		}
		if len(w.Nicks) == 0 {
			delete(c.peers, w.Node)
		} else {
			c.peers[w.Node] = &peer{nicks: w.Nicks, expires: time.Now().Add(3 * c.heartbeat)}
		}
		c.reconcileLocked()
		if w.Query {
			select {
			case c.nudge <- struct{}{}:
			default:
			}
		}
		return
	}
	if w.Msg == nil {
		return
	}
	if w.Node == c.node {
		switch c.own[w.Seq] {
		case ownPending:
			c.own[w.Seq] = ownEchoed
		case ownFellBack:
			delete(c.own, w.Seq) // this node delivered it already
			return
		}
	}
	c.deliverLocked(&w, p)
}

// deliverLocked hands a frame to this node's members. p.ID is the broker's
// number for it, or 0. rm.mu is held.
func (c *cluster) deliverLocked(w *wire, p broker.Publication) {
	rm := c.rm
	msg := *w.Msg
	switch {
	case p.ID != 0:
		msg.ID = p.ID
		rm.seq = max(rm.seq, p.ID)
	case !c.numbered() && rm.cfg.stamps():
		msg.ID = rm.nextIDLocked()
	default:
		msg.ID = rm.seq
	}
	if w.Node != c.node && (msg.Type == TypeJoin || msg.Type == TypeLeave) {
		c.notedLocked(w.Node, msg)
	}
	if p.ID != 0 {
		if len(c.recent) == recentKept {
			c.recent = slices.Delete(c.recent, 0, 1)
		}
		c.recent = append(c.recent, msg)
	} else if w.To == "" && kept(msg.Type) && !c.numbered() && rm.cfg.store != nil {
		rm.cfg.store.Append(msg)
	}
	if w.To != "" {
		to := rm.byNick[w.To]
		if w.Node == c.node && w.From != 0 {
			if i := slices.IndexFunc(rm.members, func(m *Member) bool { return m.id == w.From }); i >= 0 && !slices.Contains(to, rm.members[i]) {
				to = append(slices.Clip(to), rm.members[i])
			}
		}
		if len(to) > 0 {
			frame := rm.encode(msg)
			for _, m := range to {
				m.enqueue(frame)
			}
		}
		return
	}
	switch msg.Type {
	case TypeJoin:
		if !rm.cfg.notices || c.told[msg.Nickname] {
			return
		}
		c.told[msg.Nickname] = true
	case TypeLeave:
		if !rm.cfg.notices || !c.told[msg.Nickname] || c.presentLocked(msg.Nickname) {
			return
		}
		delete(c.told, msg.Nickname)
	}
	frame := rm.encode(msg)
	for _, m := range rm.members {
		if rm.cfg.excludeSender && w.Node == c.node && w.From != 0 && m.id == w.From {
			continue
		}
		m.enqueue(frame)
	}
}

// notedLocked updates what the node knows of node's members from a join or
// leave notice it published. rm.mu is held.
func (c *cluster) notedLocked(node string, msg Message) {
	p := c.peers[node]
	if p == nil {
		p = &peer{}
		c.peers[node] = p
	}
	p.expires = time.Now().Add(3 * c.heartbeat)
	p.nicks = slices.DeleteFunc(slices.Clone(p.nicks), func(n string) bool { return n == msg.Nickname })
	if msg.Type == TypeJoin {
		p.nicks = append(p.nicks, msg.Nickname)
	}
}

// presentLocked reports whether nickname is present on any node. rm.mu is
// held.
func (c *cluster) presentLocked(nickname string) bool {
	if len(c.rm.byNick[nickname]) > 0 {
		return true
	}
	for _, p := range c.peers {
		if slices.Contains(p.nicks, nickname) {
			return true
		}
	}
	return false
}

// reconcileLocked brings what the node's members were told in line with
// the presence it knows, after a heartbeat or an expiry changed it: the
// notices that no node published, because a node crashed or this one just
// learnt of the others, are sent to this node's members alone. rm.mu is
// held.
func (c *cluster) reconcileLocked() {
	rm := c.rm
	if !rm.cfg.notices {
		return
	}
	present := rm.nicknamesLocked()
	var gone []string
	for n := range c.told {
		if !slices.Contains(present, n) {
			gone = append(gone, n)
		}
	}
	sort.Strings(gone)
	for _, n := range gone {
		delete(c.told, n)
		rm.sendLocked(Message{Type: TypeLeave, Nickname: n}, rm.members...)
	}
	for _, n := range present {
		if !c.told[n] {
			c.told[n] = true
			rm.sendLocked(Message{Type: TypeJoin, Nickname: n}, rm.members...)
		}
	}
}

// clusterNicknamesLocked lists the nicknames present on every node: this
// node's in join order, then the others'. rm.mu is held.
func (c *cluster) clusterNicknamesLocked(local []string) []string {
	names := local
	nodes := make([]string, 0, len(c.peers))
	for node := range c.peers {
		nodes = append(nodes, node)
	}
	sort.Strings(nodes)
	for _, node := range nodes {
		for _, n := range c.peers[node].nicks {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// readHistory reads from a HistoryBroker, before m is added, the history m
// will receive. It does nothing unless the room replays history.
func (c *cluster) readHistory(m *Member) {
	rm := c.rm
	if !c.numbered() || rm.cfg.historyLen == 0 {
		return
	}
	var after uint64
	if m.resume {
		after = m.since
	}
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	pubs, complete, err := c.history.History(ctx, rm.cfg.name, after)
	if err != nil {
		rm.cfg.log.Warn("chatroom: broker history failed", "room", rm.cfg.name, "err", err)
		complete = false
	}
	r := replay{complete: complete}
	if !m.resume && len(pubs) > rm.cfg.historyLen {
		pubs = pubs[len(pubs)-rm.cfg.historyLen:]
	}
	for _, p := range pubs {
		var w wire
		if json.Unmarshal(p.Data, &w) != nil || w.Msg == nil {
			continue
		}
		msg := *w.Msg
		msg.ID = p.ID
		r.msgs = append(r.msgs, msg)
	}
	rm.mu.Lock()
	c.joiners[m] = r
	rm.mu.Unlock()
}

// replayLocked queues for m the history read for it, then the kept frames
// this node delivered since that read. rm.mu is held.
func (c *cluster) replayLocked(m *Member) {
	rm := c.rm
	r, ok := c.joiners[m]
	if !ok {
		return
	}
	delete(c.joiners, m)
	if m.resume && !r.complete && rm.cfg.envelope {
		rm.sendLocked(Message{Type: TypeTruncated}, m)
	}
	var last uint64
	if m.resume {
		last = m.since
	}
	if len(r.msgs) > 0 {
		last = r.msgs[len(r.msgs)-1].ID
		rm.seq = max(rm.seq, last)
	}
	msgs := r.msgs
	for _, msg := range c.recent {
		if msg.ID > last {
			msgs = append(msgs, msg)
		}
	}
	m.replayLocked(msgs)
}

// forget drops the history read for a member that did not join.
func (c *cluster) forget(m *Member) {
	c.rm.mu.Lock()
	delete(c.joiners, m)
	c.rm.mu.Unlock()
}
