package chatroom

import (
	"hash/fnv"
	"time"
)

// Frame IDs. Every room frame (a chat or server message, a join or leave
// notice: the frames a history keeps) takes an ID of its own, greater than
// the one before; a frame for some members only (the member list, an error
// frame, a truncated notice, a direct message) carries the ID of the last
// room frame before it, so that a client that resumes from the greatest ID
// it has seen misses nothing and receives nothing twice. The IDs have one
// source per room:
//
//   - The room itself, without a broker or with a plain one. The first ID
//     is taken from the clock, in milliseconds, so that a room created again
//     (after a restart, say) numbers above the old one and a client resuming
//     with an old ID learns that its history is gone. Consecutive IDs step
//     by idStride, and every ID of a room leaves the same remainder, the
//     room's tag, drawn from its name: a since taken from another room is
//     told apart (but for one pair of names in idStride) even when it falls
//     within this room's range.
//   - A broker.HistoryBroker, which numbers the frames of the whole cluster:
//     the frame it numbered b has the ID b×idStride on every node. The
//     numbers in between belong to the frames one node delivers on its own
//     while the broker cannot take them (an outage): b×idStride+j for the
//     j-th since broker frame b. They are unique on that node and order
//     with the broker's frames, and a client resuming from one learns, with
//     a truncated notice, that the rest of the cluster never had them.
//
// IDs stay below 2^53, the integers a JavaScript number holds exactly: the
// clock in milliseconds times idStride is about 1.8e15 in 2026, and a
// broker's numbers must stay below maxBrokerID.
const idStride = 1 << 10

// maxBrokerID bounds the numbers a HistoryBroker gives: times idStride they
// stay below 2^53.
const maxBrokerID = 1<<53/idStride - 1

// roomTag is the remainder every frame ID of the room named name leaves.
// Rooms without a name share one.
func roomTag(name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return h.Sum64() % idStride
}

// idBase returns the ID before the first a room numbering from t gives.
func idBase(t time.Time, tag uint64) uint64 {
	return uint64(max(t.UnixMilli(), 0))*idStride + tag
}

// numbering gives a room's frames their IDs. The room's lock guards it.
type numbering struct {
	byBroker bool   // a HistoryBroker numbers the room frames
	first    uint64 // the room's own numbering: the ID of its first frame
	last     uint64 // the ID of the last room frame delivered, or the one before the first
	local    uint64 // byBroker: frames delivered on this node alone since the last broker frame
}

// restart starts the room's own IDs afresh from its clock, above every ID it
// gave before: IDs from before are foreign from now on.
func (n *numbering) restart(now time.Time, name string) {
	tag := roomTag(name)
	base := idBase(now, tag)
	if n.last >= base {
		base = n.last + idStride
	}
	n.last = base
	n.first = base + idStride
}

// adopt makes the frames a Store kept before the room was created, from
// first to last (Store.Span), the room's own: its IDs go on above last, and
// a client resuming from one of them resumes from the store. It follows
// restart, in New.
func (n *numbering) adopt(now time.Time, name string, first, last uint64) {
	if last == 0 {
		return
	}
	n.last = max(n.last, last)
	n.restart(now, name)
	if first%idStride == n.last%idStride {
		n.first = min(n.first, first)
	}
}

// next returns the ID of the next room frame: the broker's number b scaled,
// or, with b 0, the next of the room's own or of this node's alone. It
// reports false when a node has delivered idStride-1 frames on its own since
// the broker's last, and has no ID left to give.
func (n *numbering) next(b uint64) (uint64, bool) {
	switch {
	case !n.byBroker:
		n.last += idStride
	case b != 0:
		n.last, n.local = min(b, maxBrokerID)*idStride, 0
	case n.local == idStride-1:
		return 0, false
	default:
		n.local++
		n.last++
	}
	return n.last, true
}

// own reports whether id is one the room's own numbering gave, or the ID
// before its first.
func (n *numbering) own(id uint64) bool {
	return id+idStride >= n.first && id <= n.last && id%idStride == n.last%idStride
}

// brokerSince splits a client's since, on a room the broker numbers, into
// the broker's number it follows and whether it is the ID of a frame that
// one node delivered on its own.
func brokerSince(since uint64) (after uint64, local bool) {
	return since / idStride, since%idStride != 0
}
