package chatroom

import "slices"

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
	return rm.nicknamesLocked()
}

// nicknamesLocked lists the nicknames present: on every node of a cluster,
// this node's first, each by its first connection's join order. rm.mu is
// held.
func (rm *Room) nicknamesLocked() []string {
	return rm.link.nicknamesLocked(rm.localNicknamesLocked())
}

// localNicknamesLocked lists the nicknames of this node's members by their
// first connection's join order. rm.mu is held.
func (rm *Room) localNicknamesLocked() []string {
	names := make([]string, 0, len(rm.byNick))
	for name := range rm.byNick {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmpID(rm.byNick[a][0].id, rm.byNick[b][0].id)
	})
	return names
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
