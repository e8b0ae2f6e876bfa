package chatroom

import (
	"context"
	"iter"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// peerView is what a node knows of the members the other nodes have in a
// room, from their heartbeats and notices, and what its own members were
// told of them. Every change costs what changed, not the room's size: a
// heartbeat carries only a digest of its node's nicknames, and a node sends
// its full list only when a peer's view of it disagrees, or a node that
// just subscribed asks. Its methods take its lock; those named ...Locked
// also need the room's, which comes first.
type peerView struct {
	c *cluster

	mu    sync.Mutex
	peers map[string]*peer // other nodes' members, by node
	where map[string]int   // how many peers have each nickname
	told  map[string]bool  // nicknames this node's members know are present
	// What the heartbeat loop is to send next: the node's full list (a
	// peer asked for it), and the nodes whose full list this one wants.
	sendFull bool
	wants    map[string]bool
	stored   storedPresence
	nudge    chan struct{} // asks the heartbeat loop to announce now
}

// peer is what a node knows of another node's members.
type peer struct {
	nicks   nickSet
	expires time.Time
	// known says the view was taken from the node's full list once, and
	// has been kept since by its notices; suspect, that its last
	// heartbeat's digest disagreed with the view. A notice still on its way
	// explains one disagreement; two in a row, or one about a node never
	// seen in full, earn a request for its full list.
	known, suspect bool
}

// nickSet is a set of nicknames that remembers the order they were added
// in, with the digest of its members.
type nickSet struct {
	seq   map[string]uint64
	next  uint64
	sum   digest
	order joinOrder // by seq
}

func (s *nickSet) has(n string) bool { _, ok := s.seq[n]; return ok }

// add adds n, and reports whether it was absent.
func (s *nickSet) add(n string) bool {
	if s.has(n) {
		return false
	}
	if s.seq == nil {
		s.seq = make(map[string]uint64)
	}
	s.next++
	s.seq[n] = s.next
	s.sum.add(n)
	s.order.add(s.next, n)
	return true
}

// remove removes n, and reports whether it was present.
func (s *nickSet) remove(n string) bool {
	if !s.has(n) {
		return false
	}
	delete(s.seq, n)
	s.sum.remove(n)
	s.order.drop(s.live)
	return true
}

// live reports whether e is the addition of a nickname in the set.
func (s *nickSet) live(e orderEntry) bool {
	seq, ok := s.seq[e.name]
	return ok && seq == e.key
}

// all yields the nicknames in the order they were added.
func (s *nickSet) all() iter.Seq[string] { return s.order.all(s.live) }

// storedPresence is what the node last stored in a PresenceBroker: the
// record is written again when it changed, or before it expires.
type storedPresence struct {
	sum digest
	at  time.Time
}

func (v *peerView) init(c *cluster) {
	v.c = c
	v.peers = make(map[string]*peer)
	v.where = make(map[string]int)
	v.told = make(map[string]bool)
	v.wants = make(map[string]bool)
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

// announce publishes the node's presence in the room: its digest, or its
// full list when query is set (the node asks every other node for theirs
// too) or a peer asked for it; it also asks the nodes whose full list this
// one wants. A PresenceBroker's record is renewed when it changed, or
// before it expires.
func (c *cluster) announce(query bool) {
	rm := c.rm
	v := &c.peers
	rm.mu.Lock()
	sum := rm.nickSum
	v.mu.Lock()
	full := query || v.sendFull
	v.sendFull = false
	w := wire{Node: c.node, Snapshot: true, Query: query, Count: sum.Count, Hash: sum.Hash}
	for node := range v.wants {
		w.Want = append(w.Want, node)
	}
	clear(v.wants)
	now := time.Now()
	store := c.presence != nil && (sum != v.stored.sum || now.Sub(v.stored.at) >= 3*c.heartbeat/2)
	if store {
		v.stored = storedPresence{sum: sum, at: now}
	}
	v.mu.Unlock()
	var nicks []string
	if full || store {
		nicks = rm.localNicknamesLocked(0)
	}
	rm.mu.Unlock()
	if full {
		w.Full, w.Nicks = true, nicks
	}
	sort.Strings(w.Want)
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	if err := c.b.Publish(ctx, rm.cfg.name, broker.Publication{Data: w.encode()}); err != nil {
		c.health.failed(BrokerPublish, err, "effect", "heartbeat not sent")
	} else {
		c.health.ok()
	}
	if store {
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
// that is alive answers the query announce sends at once, with its full
// list; one that died recently is forgotten sooner than its record would
// be. rm.mu is held.
func (v *peerView) seedLocked(seeded map[string][]string) {
	v.mu.Lock()
	expires := time.Now().Add(2 * v.c.heartbeat)
	var changed []string
	for node, nicks := range seeded {
		if node != v.c.node && len(nicks) > 0 {
			changed = append(changed, v.replaceLocked(node, nicks)...)
			v.peers[node].expires = expires
		}
	}
	v.mu.Unlock()
	v.reconcileLocked(changed)
}

// resetLocked forgets everything, as the node unsubscribes. rm.mu is held.
func (v *peerView) resetLocked() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.peers)
	clear(v.where)
	clear(v.told)
	clear(v.wants)
	v.sendFull = false
	v.stored = storedPresence{}
}

// snapshot takes another node's heartbeat: a full list replaces the view
// of that node; a digest that agrees with the view only renews it.
func (v *peerView) snapshot(w wire) {
	if w.Node == v.c.node {
		return
	}
	rm := v.c.rm
	rm.mu.Lock()
	defer rm.mu.Unlock()
	v.mu.Lock()
	var changed []string
	switch {
	case w.Full:
		changed = v.replaceLocked(w.Node, w.Nicks)
	case w.Count <= 0:
		changed = v.replaceLocked(w.Node, nil)
	default:
		p := v.peerLocked(w.Node)
		if p.nicks.sum == (digest{Count: w.Count, Hash: w.Hash}) {
			p.suspect = false
		} else if p.suspect || !p.known {
			v.wants[w.Node] = true
		} else {
			p.suspect = true
		}
	}
	if p := v.peers[w.Node]; p != nil {
		p.expires = time.Now().Add(3 * v.c.heartbeat)
	}
	nudge := w.Query || len(v.wants) > 0 || slices.Contains(w.Want, v.c.node)
	if w.Query || slices.Contains(w.Want, v.c.node) {
		v.sendFull = true
	}
	v.mu.Unlock()
	v.reconcileLocked(changed)
	if nudge {
		select {
		case v.nudge <- struct{}{}:
		default:
		}
	}
}

// peerLocked returns the view of node, made empty if there is none. v.mu
// is held.
func (v *peerView) peerLocked(node string) *peer {
	p := v.peers[node]
	if p == nil {
		p = &peer{expires: time.Now().Add(3 * v.c.heartbeat)}
		v.peers[node] = p
	}
	return p
}

// replaceLocked makes nicks the view of node, which is then known, and
// returns the nicknames that came or went. No nicknames forget the node.
// v.mu is held.
func (v *peerView) replaceLocked(node string, nicks []string) []string {
	p := v.peerLocked(node)
	p.known, p.suspect = true, false
	delete(v.wants, node)
	next := make(map[string]bool, len(nicks))
	for _, n := range nicks {
		next[n] = true
	}
	var changed []string
	for n := range p.nicks.seq {
		if !next[n] {
			v.dropNickLocked(p, n)
			changed = append(changed, n)
		}
	}
	for _, n := range nicks {
		if v.addNickLocked(p, n) {
			changed = append(changed, n)
		}
	}
	if len(p.nicks.seq) == 0 {
		delete(v.peers, node)
	}
	return changed
}

// addNickLocked and dropNickLocked change a peer's view, and report
// whether it changed. v.mu is held.
func (v *peerView) addNickLocked(p *peer, n string) bool {
	if !p.nicks.add(n) {
		return false
	}
	v.where[n]++
	return true
}

func (v *peerView) dropNickLocked(p *peer, n string) bool {
	if !p.nicks.remove(n) {
		return false
	}
	if v.where[n]--; v.where[n] <= 0 {
		delete(v.where, n)
	}
	return true
}

// expireLocked forgets the nodes not heard of for three heartbeats. rm.mu
// is held.
func (v *peerView) expireLocked(now time.Time) {
	v.mu.Lock()
	var changed []string
	for node, p := range v.peers {
		if now.After(p.expires) {
			changed = append(changed, v.replaceLocked(node, nil)...)
		}
	}
	v.mu.Unlock()
	v.reconcileLocked(changed)
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
		p := v.peerLocked(origin)
		p.expires = time.Now().Add(3 * c.heartbeat)
		if msg.Type == TypeJoin {
			v.addNickLocked(p, msg.Nickname)
		} else {
			v.dropNickLocked(p, msg.Nickname)
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
	return len(v.c.rm.byNick[nickname]) > 0 || v.where[nickname] > 0
}

// nicknamesLocked implements link for the cluster: this node's nicknames in
// join order, then the others', node by node, the first limit of them (all
// if limit <= 0). It costs what it lists, not the room's size. rm.mu is
// held.
func (c *cluster) nicknamesLocked(local []string, limit int) []string {
	v := &c.peers
	v.mu.Lock()
	defer v.mu.Unlock()
	names := local
	full := func() bool { return limit > 0 && len(names) >= limit }
	if full() {
		return names
	}
	seen := make(map[string]bool) // the others' nicknames listed
	nodes := make([]string, 0, len(v.peers))
	for node := range v.peers {
		nodes = append(nodes, node)
	}
	sort.Strings(nodes)
	for _, node := range nodes {
		for n := range v.peers[node].nicks.all() {
			if full() {
				return names
			}
			if len(c.rm.byNick[n]) == 0 && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	return names
}

// countLocked implements link for the cluster. rm.mu is held.
func (c *cluster) countLocked() int {
	v := &c.peers
	v.mu.Lock()
	defer v.mu.Unlock()
	n := len(c.rm.byNick)
	for nick := range v.where {
		if len(c.rm.byNick[nick]) == 0 {
			n++
		}
	}
	return n
}

// reconcileLocked brings what the node's members were told of the
// nicknames that came or went on other nodes in line with the presence it
// knows: the notices that no node published, because a node crashed or
// this one just learnt of the others, are sent to this node's members
// alone. rm.mu is held.
func (v *peerView) reconcileLocked(changed []string) {
	rm := v.c.rm
	if !rm.cfg.notices || len(changed) == 0 {
		return
	}
	v.mu.Lock()
	var gone, came []string
	for _, n := range changed {
		switch present := v.presentLocked(n); {
		case v.told[n] && !present:
			delete(v.told, n)
			gone = append(gone, n)
		case !v.told[n] && present:
			v.told[n] = true
			came = append(came, n)
		}
	}
	v.mu.Unlock()
	sort.Strings(gone)
	for _, n := range gone {
		rm.tellLocked(TypeLeave, n)
	}
	for _, n := range came {
		rm.tellLocked(TypeJoin, n)
	}
}
