package chatroom

import (
	"slices"
	"time"
)

const reasonNicknameTaken = "nickname taken"

// WithNotices announces to the whole room, the joiner included, each
// nickname that joins and each that leaves:
//
//	{"type":"join","id":4,"time":"…","nickname":"sei"}
//	{"type":"leave","id":9,"time":"…","nickname":"sei"}
//
// A nickname with several connections is announced when its first joins and
// when its last leaves, so the notices keep a member list exact. It turns
// on WithEnvelope.
func WithNotices() Option {
	return func(c *config) { c.notices = true }
}

// WithPresence sends each joiner the nicknames present, itself included, in
// the order they joined, and then keeps it up to date with join and leave
// notices:
//
//	{"type":"members","id":5,"time":"…","members":["ann","sei"]}
//
// The list comes after the history (WithHistory) and before the joiner's own
// join notice, in one step with joining, so no join or leave is missed or
// counted twice. Hosts read the same list with Room.Nicknames. It turns on
// WithNotices, and so WithEnvelope.
func WithPresence() Option {
	return func(c *config) { c.presence = true }
}

// WithAnnouncedRateLimit puts the room's rate limit (WithRateLimit) in the
// members frame each joiner receives, so that a client can pace itself
// under it instead of being refused:
//
//	{"type":"members","id":5,"time":"…","members":["ann","sei"],"rate":{"perSecond":10,"burst":20}}
//
// Without a rate limit the frame carries no rate. It needs WithPresence,
// whose frame it extends; New panics without it.
func WithAnnouncedRateLimit() Option {
	return func(c *config) { c.announceRate = true }
}

// WithUniqueNicknames refuses a connection whose nickname is already present
// in the room: it is closed with StatusNicknameTaken (4009) and reason
// "nickname taken", after the join hook and without a leave hook, and the
// member already present is not disturbed. The check is made when the member
// is added, so two clients racing for one nickname cannot both win.
//
// Nicknames are compared as the PRECIS Nickname profile compares them
// (RFC 8266; see PrepareNickname), ignoring case: "Bob" is taken while "bob"
// is present. Across the nodes of a cluster (WithBroker) the comparison is
// exact. A client that reconnects while the room still holds its old
// connection, which a lost network leaves open until the keepalive drops it,
// is refused until then.
func WithUniqueNicknames() Option {
	return func(c *config) { c.uniqueNicknames = true }
}

// Nicknames returns the nicknames present, each once, in the order they
// joined.
func (rm *Room) Nicknames() []string {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.nicknamesLocked(0)
}

// nicknamesLocked lists the nicknames present, the first limit of them
// (all if limit <= 0): on every node of a cluster, this node's first, each
// by its first connection's join order. rm.mu is held.
func (rm *Room) nicknamesLocked(limit int) []string {
	return rm.link.nicknamesLocked(rm.localNicknamesLocked(limit), limit)
}

// indexNickLocked files m under its nickname. rm.mu is held.
func (rm *Room) indexNickLocked(m *Member) {
	rm.byNick[m.nickname] = append(rm.byNick[m.nickname], m)
	if len(rm.byNick[m.nickname]) == 1 {
		rm.nickSum.add(m.nickname)
		rm.order.add(m.id, m.nickname)
	}
}

// unindexNickLocked takes m from under its nickname, and reports whether
// it was the nickname's last connection on this node. rm.mu is held.
func (rm *Room) unindexNickLocked(m *Member) (gone bool) {
	ms := rm.byNick[m.nickname]
	wasFirst := len(ms) > 0 && ms[0] == m
	same := slices.DeleteFunc(ms, func(o *Member) bool { return o == m })
	if len(same) > 0 {
		rm.byNick[m.nickname] = same
		if wasFirst { // the nickname now joined when its next connection did
			rm.order.add(same[0].id, m.nickname)
			rm.order.drop(rm.liveLocal)
		}
		return false
	}
	delete(rm.byNick, m.nickname)
	rm.nickSum.remove(m.nickname)
	rm.order.drop(rm.liveLocal)
	return true
}

// liveLocal reports whether e is the join of a nickname's first
// connection on this node. rm.mu is held.
func (rm *Room) liveLocal(e orderEntry) bool {
	ms := rm.byNick[e.name]
	return len(ms) > 0 && ms[0].id == e.key
}

// localNicknamesLocked lists the nicknames of this node's members by their
// first connection's join order, the first limit of them (all if limit <=
// 0). rm.mu is held.
func (rm *Room) localNicknamesLocked(limit int) []string {
	n := len(rm.byNick)
	if limit > 0 {
		n = min(n, limit)
	}
	return rm.order.first(make([]string, 0, n), limit, rm.liveLocal)
}

// A digest sums up a set of nicknames in their count and an order-free
// hash, kept as nicknames come and go, so that two nodes can tell whether
// they agree on a set without sending it.
type digest struct {
	Count int
	Hash  uint64
}

func (d *digest) add(n string)    { d.Count++; d.Hash += nickHash(n) }
func (d *digest) remove(n string) { d.Count--; d.Hash -= nickHash(n) }

// nickHash is FNV-1a of n, mixed (SplitMix64's finaliser) so that sums of
// similar nicknames do not collide; every node computes the same.
func nickHash(n string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(n); i++ {
		h ^= uint64(n[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// cmpID orders member IDs.
func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DefaultDeltaWindow and DefaultMaxMembers are WithPresenceDeltas' defaults.
const (
	DefaultDeltaWindow = 100 * time.Millisecond
	DefaultMaxMembers  = 1000
)

// PresenceDeltas configures WithPresenceDeltas.
type PresenceDeltas struct {
	// Window is how long a join or leave notice may wait for others to go
	// out with it; 0 means DefaultDeltaWindow.
	Window time.Duration
	// MaxMembers caps the nicknames a members frame lists; 0 means
	// DefaultMaxMembers, Off lists them all.
	MaxMembers int
}

// WithPresenceDeltas is WithPresence for big rooms, whose cost follows the
// joins and leaves rather than the room's size. The joins and leaves of a
// short window (d.Window) go out together, to the whole room, in one frame
// that says what changed and how many nicknames are present:
//
//	{"type":"presence","id":7,"time":"…","joined":["ann","bob"],"left":["sei"],"count":1042}
//
// in place of the join and leave frames of WithNotices. A nickname that
// joined and left within one window is in neither list. Any other room
// frame waits for the notices before it, so the room's order holds. The
// members frame a joiner receives lists at most d.MaxMembers nicknames (the
// first to join, this node's first in a cluster) and always carries the
// exact count:
//
//	{"type":"members","id":5,"time":"…","members":["ann","sei"],"count":2}
//
// A client applies the lists to its member list as sets, and shows count
// as the number present. The history keeps the notices one by one, and
// replays them so. It turns on WithPresence. New panics if d.Window or
// d.MaxMembers is negative (other than Off).
func WithPresenceDeltas(d PresenceDeltas) Option {
	return func(c *config) {
		c.deltas = true
		c.deltaWindow = d.Window
		c.maxMembers = d.MaxMembers
	}
}

// membersLocked is the members frame for a joiner: the nicknames present,
// at most WithPresenceDeltas' MaxMembers of them with the exact count.
// rm.mu is held.
func (rm *Room) membersLocked() Message {
	m := Message{Type: TypeMembers}
	if rm.cfg.deltas {
		m.Members, m.Count = rm.nicknamesLocked(rm.cfg.maxMembers), rm.link.countLocked()
	} else {
		m.Members = rm.nicknamesLocked(0)
	}
	if rm.cfg.announceRate && rm.cfg.rateLimit > 0 {
		m.Rate = &RateLimit{PerSecond: float64(rm.cfg.rateLimit), Burst: rm.cfg.rateBurst}
	}
	return m
}

// noticeBatch is the join and leave notices waiting to go out together,
// each nickname's net change by the order it first changed in.
type noticeBatch struct {
	change  map[string]pendingNotice
	next    uint64
	running bool // a flusher waits for the window to end
}

type pendingNotice struct {
	typ MessageType
	seq uint64
}

// tellLocked tells this node's members alone that nickname joined or left:
// in the next presence frame with WithPresenceDeltas, in a frame of its own
// without. rm.mu is held.
func (rm *Room) tellLocked(t MessageType, nickname string) {
	if rm.cfg.deltas {
		rm.pendLocked(t, nickname)
		return
	}
	rm.sendLocked(Message{Type: t, Nickname: nickname}, rm.members...)
}

// pendLocked adds a notice to the batch, and starts the batch's flusher if
// it is the first: one goroutine per room at a time, which ends when the
// window does. A join and a leave of one nickname cancel out. rm.mu is
// held.
func (rm *Room) pendLocked(t MessageType, nickname string) {
	b := &rm.pending
	if old, ok := b.change[nickname]; ok {
		if old.typ != t {
			delete(b.change, nickname)
		}
		return
	}
	if b.change == nil {
		b.change = make(map[string]pendingNotice)
	}
	b.next++
	b.change[nickname] = pendingNotice{typ: t, seq: b.next}
	if b.running || (rm.closed && rm.active == 0) {
		return
	}
	b.running = true
	rm.active++ // Shutdown, Close and a Registry wait for the flusher too
	go rm.flushAfter(rm.cfg.deltaWindow)
}

// flushAfter sends the batch when the window ends, or at once when the
// room closes.
func (rm *Room) flushAfter(window time.Duration) {
	t := time.NewTimer(window)
	select {
	case <-t.C:
	case <-rm.closing:
		t.Stop()
	}
	rm.mu.Lock()
	rm.flushNoticesLocked()
	rm.pending.running = false
	rm.mu.Unlock()
	rm.release(false)
}

// flushNoticesLocked sends the batch to this node's members in one
// presence frame, if it holds a change. rm.mu is held.
func (rm *Room) flushNoticesLocked() {
	b := &rm.pending
	if len(b.change) == 0 {
		return
	}
	names := make([]string, 0, len(b.change))
	for n := range b.change {
		names = append(names, n)
	}
	slices.SortFunc(names, func(x, y string) int { return cmpID(b.change[x].seq, b.change[y].seq) })
	msg := Message{Type: TypePresence, Count: rm.link.countLocked()}
	for _, n := range names {
		if b.change[n].typ == TypeJoin {
			msg.Joined = append(msg.Joined, n)
		} else {
			msg.Left = append(msg.Left, n)
		}
	}
	clear(b.change)
	rm.sendLocked(msg, rm.members...)
}
