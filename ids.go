package chatroom

import (
	"hash/fnv"
	"time"
)

// Frame IDs. A room numbers its frames itself unless a HistoryBroker does
// (WithBroker). Its IDs say two things besides their order:
//
//   - When the room began numbering: the first ID is taken from the clock,
//     in milliseconds, so that a room created again (after a restart, say)
//     numbers above the old one and a client resuming with an old ID learns
//     that its history is gone.
//   - Which room gave them: consecutive IDs step by idStride, and every ID
//     of a room leaves the same remainder, the room's tag, drawn from its
//     name. A since taken from another room is then told apart (but for one
//     pair of names in idStride) even when it falls within this room's range.
//
// Both stay below 2^53, the integers a JavaScript number holds exactly: the
// clock in milliseconds times idStride is about 1.8e15 in 2026, and 2^53 is
// about 9.0e15.
const idStride = 1 << 10

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

// startNumberingLocked starts the room's IDs afresh from its clock, above
// every ID it gave before: IDs from before are foreign from now on. rm.mu is
// held, or the room is not yet shared.
func (rm *Room) startNumberingLocked() {
	tag := roomTag(rm.cfg.name)
	base := idBase(rm.cfg.now(), tag)
	if rm.seq >= base {
		base = rm.seq + idStride
	}
	rm.seq = base
	rm.firstID = base + idStride
}

// nextIDLocked returns the room's next frame ID. rm.mu is held.
func (rm *Room) nextIDLocked() uint64 {
	rm.seq += idStride
	return rm.seq
}

// ownIDLocked reports whether id is one this room has given, or the ID
// before its first. rm.mu is held.
func (rm *Room) ownIDLocked(id uint64) bool {
	return id+idStride >= rm.firstID && id <= rm.seq && id%idStride == rm.seq%idStride
}
