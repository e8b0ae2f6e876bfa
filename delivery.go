package chatroom

import (
	"context"
	"slices"
	"time"
)

// A post is a frame on its way to the room: for every member (to is
// empty), or for the connections of nickname to and the sender's.
type post struct {
	msg Message
	to  string
	// from is the member that sent it, on the node that sent it; 0 for
	// the host. mine says that node is this one; sender is then the
	// member, or nil.
	from   uint64
	mine   bool
	sender *Member
	// origin is the node that sent it.
	origin string
	// ref is the client's reference for a member's message, and key the
	// sender's record of it (ack.go); "" without. claim is the record's
	// entry the sender's node made for it, if any.
	ref, key string
	claim    *refEntry
	// frame is msg encoded, when the room stamps nothing and could encode
	// it before taking its lock; nil otherwise.
	frame []byte
}

// publish sends p.msg to the whole room, or with p.to set to the
// connections of that nickname and the sender's, through the room's link:
// the one path by which a frame reaches members of more than one. p.sender
// is the member that sent it, or nil; p.ref and p.key its ref, if any. It
// returns the ID the frame got on this node (see link.send).
func (rm *Room) publish(ctx context.Context, p post) (uint64, error) {
	msg := &p.msg
	msg.Type = msg.Type.orDefault()
	msg.ID = 0
	msg.Time = time.Time{}
	msg.Ref = ""
	msg.RefKey = ""
	if rm.cfg.stamps() {
		msg.Time = rm.cfg.now()
	}
	p.mine = true
	if p.sender != nil {
		p.from = p.sender.id
	}
	if p.claim != nil {
		p.key = p.claim.key
	}
	return rm.link.send(ctx, p)
}

// deliverLocked hands p to this node's members, and reports whether it
// did, with the ID the frame got: it is where every post reaches them,
// whichever node sent it, and where the sender of a message with a ref
// receives its ack. b is the number a HistoryBroker gave p, or 0. rm.mu is
// held, so all members receive the room's frames in one order.
func (rm *Room) deliverLocked(p *post, b uint64) (uint64, bool) {
	msg := p.msg
	roomFrame := p.to == "" && kept(msg.Type)
	notice := isNotice(msg.Type)
	if notice && !rm.link.noticeLocked(msg, p.origin, p.mine) {
		return 0, true
	}
	if rm.cfg.deltas && !notice {
		rm.flushNoticesLocked() // the notices before it go out before it
	}
	frame := p.frame
	if frame == nil {
		if rm.cfg.stamps() {
			if roomFrame {
				id, ok := rm.ids.next(b)
				if !ok {
					return 0, false
				}
				msg.ID = id
			} else {
				msg.ID = rm.ids.last
			}
		}
		if roomFrame {
			rm.link.deliveredLocked(msg)
			if rm.store != nil && (!rm.ids.byBroker || msg.ID%idStride == 0) {
				// With a broker that numbers the frames, only the
				// cluster's: not those this node delivers on its own.
				rm.store.Append(rm.storedLocked(msg, p))
			}
		}
		if notice && rm.cfg.deltas {
			rm.pendLocked(msg.Type, msg.Nickname)
			return msg.ID, true
		}
		frame = rm.encode(msg)
	}
	if p.to != "" {
		to := rm.byNick[p.to]
		if p.mine && p.sender != nil && p.sender.index >= 0 && !slices.Contains(to, p.sender) {
			to = append(slices.Clip(to), p.sender)
		}
		rm.queueLocked(frame, to)
		rm.ackLocked(p, msg.ID) // a direct frame is not stored: no wait for the Store
		return msg.ID, true
	}
	var skip uint64
	if rm.cfg.excludeSender && p.mine {
		skip = p.from
	}
	f := rm.startFanout()
	out := rm.newOutFrame(frame)
	for _, m := range rm.members {
		if m.id == skip {
			continue
		}
		if m.replayed != 0 {
			// A joiner whose history came from the broker may have been
			// replayed frames this node has yet to deliver: m.replayed is
			// the last. Past it, live frames are new to it.
			if msg.ID <= m.replayed {
				continue
			}
			m.replayed = 0
		}
		b := out.forMember(m)
		f.queued(m.enqueueFrame(b), len(b))
	}
	rm.reportFanout(f)
	if !rm.storesFirst(p) {
		rm.ackLocked(p, msg.ID)
	}
	return msg.ID, true
}

// fanoutCount counts, when the room has metrics, one frame's queuing for
// RoomMetrics.Fanout: in locals, so that a delivery costs no more than a
// comparison.
type fanoutCount struct {
	start                  time.Time // zero for a frame for some members only
	frames, bytes, deepest int
}

// startFanout starts counting a broadcast's queuing.
func (rm *Room) startFanout() fanoutCount {
	if rm.metrics == nil {
		return fanoutCount{}
	}
	return fanoutCount{start: time.Now()}
}

// queued counts a frame of size bytes queued for a member that now has
// depth bytes queued, or none if depth is negative (enqueueFrame).
func (f *fanoutCount) queued(depth, size int) {
	if depth >= 0 {
		f.frames++
		f.bytes += size
		f.deepest = max(f.deepest, depth)
	}
}

// reportFanout reports f to the room's metrics.
func (rm *Room) reportFanout(f fanoutCount) {
	if rm.metrics == nil {
		return
	}
	out := Fanout{Frames: f.frames, Bytes: f.bytes}
	if !f.start.IsZero() {
		out.Broadcast, out.DeepestQueue, out.Took = true, f.deepest, time.Since(f.start)
	}
	rm.metrics.Fanout(out)
}

// queueLocked queues frame for the given members only, and reports
// whether it queued it for all. rm.mu is held, or to is one member.
func (rm *Room) queueLocked(frame []byte, to []*Member) bool {
	var f fanoutCount
	out := rm.newOutFrame(frame)
	for _, m := range to {
		b := out.forMember(m)
		f.queued(m.enqueueFrame(b), len(b))
	}
	rm.reportFanout(f)
	return f.frames == len(to)
}

// sendLocked queues msg for the given members only: a frame of theirs.
// rm.mu is held.
func (rm *Room) sendLocked(msg Message, to ...*Member) {
	var one *Member
	if len(to) == 1 {
		one = to[0]
	}
	rm.stampOwnLocked(&msg, one)
	rm.queueLocked(rm.encode(msg), to)
}

// stampOwnLocked stamps a frame for some members only: it carries the ID of
// the last room frame before it, or, for a joiner m whose history came from
// the broker, of the last of that history. rm.mu is held.
func (rm *Room) stampOwnLocked(msg *Message, m *Member) {
	msg.Type = msg.Type.orDefault()
	if !rm.cfg.stamps() {
		return
	}
	msg.Time = rm.cfg.now()
	if msg.Type == TypeAck {
		return // it carries the ID of the message it acknowledges
	}
	msg.ID = rm.ids.last
	if m != nil {
		msg.ID = max(msg.ID, m.replayed)
	}
}

// memberLocked returns this node's member with the given ID, or nil. rm.mu
// is held.
func (rm *Room) memberLocked(id uint64) *Member { return rm.byID[id] }
