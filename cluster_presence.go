package chatroom

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// peerView is what a node knows of the members the other nodes have in a
// room, from their heartbeats and notices, and what its own members were
// told of them. Its methods take its lock; those named ...Locked also need
// the room's, which comes first.
type peerView struct {
	c *cluster

	mu    sync.Mutex
	peers map[string]*peer // other nodes' members, by node
	told  map[string]bool  // nicknames this node's members know are present
	nudge chan struct{}    // asks the heartbeat loop to announce now
}

// peer is what a node knows of another node's members.
type peer struct {
	nicks   []string
	expires time.Time
}

func (v *peerView) init(c *cluster) {
	v.c = c
	v.peers = make(map[string]*peer)
	v.told = make(map[string]bool)
	v.nudge = make(chan struct{}, 1)
}

// heartbeats sends the node's heartbeat and forgets nodes not heard of,
// until stop is closed. detach owns it.
func (c *cluster) heartbeats(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			c.rm.mu.Lock()
			c.peers.expireLocked(now)
			c.rm.mu.Unlock()
			c.announce(false)
		case <-c.peers.nudge:
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
	w := wire{Node: c.node, Snapshot: true, Nicks: nicks, Query: query}
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	if err := c.b.Publish(ctx, rm.cfg.name, broker.Publication{Data: w.encode()}); err != nil {
		c.health.failed(BrokerPublish, err, "effect", "heartbeat not sent")
	} else {
		c.health.ok()
	}
	if c.presence != nil {
		if err := c.presence.SetPresence(ctx, rm.cfg.name, c.node, nicks, 3*c.heartbeat); err != nil {
			c.health.failed(BrokerPresence, err)
		}
	}
}

// seedPresence reads the other nodes' presence from a PresenceBroker, as
// the node subscribes.
func (c *cluster) seedPresence(ctx context.Context) map[string][]string {
	if c.presence == nil {
		return nil
	}
	seeded, err := c.presence.Presence(ctx, c.rm.cfg.name)
	if err != nil {
		c.health.failed(BrokerPresence, err)
	}
	return seeded
}

// seedLocked takes the presence read as the node subscribed. A seeded node
// that is alive answers the query announce sends at once; one that died
// recently is forgotten sooner than its record would be. rm.mu is held.
func (v *peerView) seedLocked(seeded map[string][]string) {
	v.mu.Lock()
	expires := time.Now().Add(2 * v.c.heartbeat)
	for node, nicks := range seeded {
		if node != v.c.node && len(nicks) > 0 {
			v.peers[node] = &peer{nicks: nicks, expires: expires}
		}
	}
	v.mu.Unlock()
	v.reconcileLocked()
}

// resetLocked forgets everything, as the node unsubscribes. rm.mu is held.
func (v *peerView) resetLocked() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.peers)
	clear(v.told)
}

// snapshot takes another node's heartbeat.
func (v *peerView) snapshot(w wire) {
	if w.Node == v.c.node {
		return
	}
	rm := v.c.rm
	rm.mu.Lock()
	defer rm.mu.Unlock()
	v.mu.Lock()
	if len(w.Nicks) == 0 {
		delete(v.peers, w.Node)
	} else {
		v.peers[w.Node] = &peer{nicks: w.Nicks, expires: time.Now().Add(3 * v.c.heartbeat)}
	}
	v.mu.Unlock()
	v.reconcileLocked()
	if w.Query {
		select {
		case v.nudge <- struct{}{}:
		default:
		}
	}
}

// expireLocked forgets the nodes not heard of for three heartbeats. rm.mu
// is held.
func (v *peerView) expireLocked(now time.Time) {
	v.mu.Lock()
	for node, p := range v.peers {
		if now.After(p.expires) {
			delete(v.peers, node)
		}
	}
	v.mu.Unlock()
	v.reconcileLocked()
}

// noticeLocked implements link for the cluster: it learns from another
// node's notice, and reports whether this node's members are to receive it:
// a nickname joins for them when it was not present, and leaves when it is
// present on no node. rm.mu is held.
func (c *cluster) noticeLocked(msg Message, origin string, mine bool) bool {
	v := &c.peers
	v.mu.Lock()
	defer v.mu.Unlock()
	if !mine {
		pr := v.peers[origin]
		if pr == nil {
			pr = &peer{}
			v.peers[origin] = pr
		}
		pr.expires = time.Now().Add(3 * c.heartbeat)
		pr.nicks = slices.DeleteFunc(slices.Clone(pr.nicks), func(n string) bool { return n == msg.Nickname })
		if msg.Type == TypeJoin {
			pr.nicks = append(pr.nicks, msg.Nickname)
		}
	}
	if !c.rm.cfg.notices {
		return false
	}
	switch msg.Type {
	case TypeJoin:
		if v.told[msg.Nickname] {
			return false
		}
		v.told[msg.Nickname] = true
	case TypeLeave:
		if !v.told[msg.Nickname] || v.presentLocked(msg.Nickname) {
			return false
		}
		delete(v.told, msg.Nickname)
	}
	return true
}

// presentLocked implements link for the cluster. rm.mu is held.
func (c *cluster) presentLocked(nickname string) bool {
	c.peers.mu.Lock()
	defer c.peers.mu.Unlock()
	return c.peers.presentLocked(nickname)
}

// presentLocked reports whether nickname is present on any node. rm.mu and
// v.mu are held.
func (v *peerView) presentLocked(nickname string) bool {
	if len(v.c.rm.byNick[nickname]) > 0 {
		return true
	}
	for _, p := range v.peers {
		if slices.Contains(p.nicks, nickname) {
			return true
		}
	}
	return false
}

// nicknamesLocked implements link for the cluster: this node's nicknames in
// join order, then the others', node by node. rm.mu is held.
func (c *cluster) nicknamesLocked(local []string) []string {
	v := &c.peers
	v.mu.Lock()
	defer v.mu.Unlock()
	names := local
	nodes := make([]string, 0, len(v.peers))
	for node := range v.peers {
		nodes = append(nodes, node)
	}
	sort.Strings(nodes)
	for _, node := range nodes {
		for _, n := range v.peers[node].nicks {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// reconcileLocked brings what the node's members were told in line with
// the presence it knows, after a heartbeat or an expiry changed it: the
// notices that no node published, because a node crashed or this one just
// learnt of the others, are sent to this node's members alone. rm.mu is
// held.
func (v *peerView) reconcileLocked() {
	rm := v.c.rm
	if !rm.cfg.notices {
		return
	}
	present := rm.nicknamesLocked()
	v.mu.Lock()
	var gone, came []string
	for n := range v.told {
		if !slices.Contains(present, n) {
			gone = append(gone, n)
		}
	}
	sort.Strings(gone)
	for _, n := range gone {
		delete(v.told, n)
	}
	for _, n := range present {
		if !v.told[n] {
			v.told[n] = true
			came = append(came, n)
		}
	}
	v.mu.Unlock()
	for _, n := range gone {
		rm.sendLocked(Message{Type: TypeLeave, Nickname: n}, rm.members...)
	}
	for _, n := range came {
		rm.sendLocked(Message{Type: TypeJoin, Nickname: n}, rm.members...)
	}
}
