package chatroom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// DefaultHeartbeat is how often a node tells the others which members it
// has in a room (WithHeartbeat).
const DefaultHeartbeat = 5 * time.Second

// brokerTimeout bounds every call the room makes to its broker, so that a
// broker that hangs delays a sender by at most this much.
const brokerTimeout = 2 * time.Second

// WithBroker joins this room to the rooms of the same name (WithName, or
// the Registry's name) on other nodes through b, so that they act as one
// room: a member's message, a Broadcast, a join or leave notice, a direct
// message reaches the members on every node exactly once, in one order
// that every node shares. Without it a room is its own broker and nothing
// leaves the process. Adapters for NATS and Redis live in nested modules of
// this repository (natsbroker, redisbroker); broker.Memory joins rooms
// within one process.
//
// Every frame for the whole room goes through the broker, and reaches this
// node's members too when the broker hands it back: what a member sends
// costs one publication, encoded once, and each node encodes each frame
// once for all of its members. A node subscribes to a room only while it
// has members there. The hooks run on the node where the member is
// connected: OnMessage before the message is published.
//
// Two goroutines of the room's run while it is subscribed, and end with the
// subscription, or by the time Close or Shutdown return: one sends the
// heartbeats, and one hands the publications to the broker in order (with
// a broker.PipelineBroker, a third takes the broker's answers, in order,
// while up to 8 batches are in flight). A member's reader only queues its
// publication and goes on reading; what queues while the broker answers
// goes out together, in one call to a broker.BatchBroker. A sender waits
// only while 4096 publications are queued (Broadcast within its ctx).
//
// What holds cluster-wide depends on the broker (docs/cluster.md):
//
//   - A broker.HistoryBroker numbers the room's frames, so IDs, WithHistory
//     and resuming with ?since= hold across nodes: a client that reconnects
//     to another node receives exactly what it missed. WithHistory's Len
//     and Bytes bound what a joiner receives from the broker's history;
//     WithHistory's Store keeps the frames the broker numbered, on every
//     node, for scrollback and for resumes from further back than the
//     broker's history (pgstore keeps them once for all nodes). With a plain Broker,
//     each node numbers what it delivers and keeps its own history, which
//     begins again whenever the node subscribes afresh.
//   - Presence (Room.Nicknames, WithPresence, WithNotices,
//     WithUniqueNicknames) is kept by every node from the others'
//     heartbeats (WithHeartbeat) and notices; a broker.PresenceBroker also
//     seeds it when a node subscribes. A node that stops sending
//     heartbeats, for instance because it crashed, leaves the presence of
//     the others within four heartbeats (of a node that subscribed after it
//     died, within three heartbeats of subscribing), each node then
//     announcing its members' leave to its own members. Two clients that
//     race for one nickname on two nodes may both get it under
//     WithUniqueNicknames.
//
// When the broker certainly did not take a publication (its error wraps
// broker.ErrUnavailable, as broker.ErrClosed does: it is down), the room logs it
// at Warn and delivers the frame to its own members only: during an outage
// each node goes on as a room of its own, and what is sent then never
// reaches the other nodes nor the broker's history. On a HistoryBroker
// such frames take IDs between the broker's (see PROTOCOL.md), up to 1023
// of them between two of the broker's frames; after that the node refuses
// its members' messages, with an error frame 1013 "broker unavailable"
// under the envelope, until the broker is back. When the outcome is open
// (the broker did not answer within 2 seconds: it may take the publication
// later), the room delivers nothing itself: if the broker hands the
// publication back, however late, every node delivers it then, in the
// broker's order; if it never does, nobody receives it. Adapters reconnect
// and subscribe again by themselves; what the broker accepted but had not
// delivered when it failed may be lost, as the adapter documents.
func WithBroker(b broker.Broker) Option {
	return func(c *config) { c.broker = b }
}

// WithHeartbeat sets how often a node of a cluster (WithBroker) sends the
// others the nicknames it has in a room; 0 means DefaultHeartbeat, and New
// panics if d is negative. A node that has not been heard of for three
// heartbeats is taken to have left, so a crashed node's members leave the
// presence of the others within four heartbeats. It has no effect without
// WithBroker.
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) { c.heartbeat = d }
}

// cluster is the link of a room with a broker (WithBroker): it publishes
// the room's posts, delivers what the broker hands back, and keeps what the
// node knows of the others. Its parts, each in a file of its own: the wire
// format (cluster_wire.go), the publications' queue (cluster_outbox.go),
// heartbeats and presence (cluster_presence.go), and the history a joiner
// reads from the broker (cluster_history.go).
//
// Lock order: rm.mu, then the presence's and the history's locks, then the
// outbox's; the cluster's subMu before all of them; the health's lock, a
// leaf, under none of them.
type cluster struct {
	rm        *Room
	b         broker.Broker
	history   broker.HistoryBroker  // b, if it keeps history
	presence  broker.PresenceBroker // b, if it stores presence
	node      string                // this room's name among the nodes
	heartbeat time.Duration

	// subscribed says the node holds a subscription to the room, for the
	// outbox, which cannot take subMu.
	subscribed atomic.Bool

	subMu sync.Mutex // serialises subscribing and unsubscribing; guards the fields below
	users int        // members joined or joining
	sub   broker.Subscription
	stop  chan struct{} // closed to stop the heartbeat loop
	done  chan struct{} // closed when it has stopped

	out    outbox
	peers  peerView
	recent recentFrames
	health brokerHealth
}

func newCluster(rm *Room) *cluster {
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails
	c := &cluster{
		rm:        rm,
		b:         rm.cfg.broker,
		node:      hex.EncodeToString(id[:]),
		heartbeat: rm.cfg.heartbeat,
	}
	c.history, _ = c.b.(broker.HistoryBroker)
	c.presence, _ = c.b.(broker.PresenceBroker)
	c.out.init(c)
	c.peers.init(c)
	c.recent.init(rm.cfg.historyLen)
	c.health.c = c
	return c
}

// numbered reports whether the broker numbers the room's frames.
func (c *cluster) numbered() bool { return c.history != nil }

// attach counts a joining member in, subscribing the node to the room for
// the first. A broker that refuses the subscription (it is closed) leaves
// the room working on its own; the error is logged.
func (c *cluster) attach() {
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
		c.health.failed(BrokerSubscribe, err, "effect", "this node's members see only one another")
		return
	}
	c.health.ok()
	c.sub = sub
	c.subscribed.Store(true)
	c.fillStore(ctx)
	seeded := c.seedPresence(ctx)
	rm.mu.Lock()
	if !c.numbered() && rm.cfg.stamps() {
		// This node's history has a gap from here on: IDs from before it
		// are treated as foreign, so resuming clients learn of it.
		rm.ids.restart(rm.cfg.now(), rm.cfg.name)
	}
	c.peers.seedLocked(seeded)
	rm.mu.Unlock()

	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.heartbeats(c.stop, c.done)
	c.announce(true)
}

// detach counts a member out, unsubscribing the node after the last: it
// tells the others it has no members left, so they need not wait for its
// heartbeats to stop.
func (c *cluster) detach() {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.users--
	if c.users > 0 || c.sub == nil {
		return
	}
	close(c.stop)
	<-c.done
	c.out.drain() // the last leave notice goes out before the subscription ends
	c.announce(false)
	if err := c.sub.Unsubscribe(); err != nil {
		c.health.failed(BrokerUnsubscribe, err)
	}
	c.sub = nil
	c.subscribed.Store(false)
	c.out.settleAll() // what the broker hands back no longer reaches this node
	c.rm.mu.Lock()
	c.peers.resetLocked()
	c.recent.reset()
	c.rm.mu.Unlock()
}

// send queues p for the broker (cluster_outbox.go).
func (c *cluster) send(ctx context.Context, p post) (uint64, error) {
	if c.rm.isClosed() {
		return 0, ErrRoomClosed
	}
	return c.out.push(ctx, p)
}

// drain waits until the outbox is empty and no sender runs.
func (c *cluster) drain() { c.out.drain() }

// deliver is the subscription's callback: one publication from any node,
// this one included.
func (c *cluster) deliver(pub broker.Publication) {
	w, err := decodeWire(pub.Data)
	if err != nil {
		c.rm.cfg.log.Warn("chatroom: undecodable publication from broker", "room", c.rm.cfg.name, "err", err)
		return
	}
	if w.Snapshot {
		c.peers.snapshot(w)
		return
	}
	if w.Msg == nil {
		return
	}
	mine := w.Node == c.node
	if mine && c.out.delivered(w.Seq) {
		return // the node delivered it itself, as the broker had refused it
	}
	rm := c.rm
	p := w.post(mine)
	rm.mu.Lock()
	if mine && w.From != 0 && (w.To != "" || w.Key != "") {
		p.sender = rm.memberLocked(w.From)
	}
	id, _ := rm.deliverLocked(&p, pub.ID)
	rm.mu.Unlock()
	if mine && w.From == 0 {
		c.out.settle(w.Seq, outcome{id: id})
	}
}
