package chatroom

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// Acknowledgements and idempotent resends (PROTOCOL.md, "Acknowledgements").
//
// With the envelope, a client may give a message a "ref". Once the room has
// taken it (it has its ID in the room's order), the connection that sent it
// receives an ack frame with that ID and the ref; a refusal is the error
// frame, with the ref. A message whose ref its sender already had taken
// within broker.DedupWindow is not delivered again: the sender receives the
// ack of the first. The record of what was taken lives here, with the
// room, for the room's own members (refRecord); in a cluster a
// broker.DedupBroker keeps it for every node.

// The bounds of a room's record of refs: an attacker that sends unique refs
// pushes out its own first, and costs the room at most maxRefs entries
// (each up to 64 bytes of ref and the sender's key).
const (
	maxRefLen        = 64
	maxRefsPerSender = 1024
	maxRefs          = 1 << 16
)

// reasonInvalidRef is the reason of the 1007 error frame or close that
// refuses a frame whose "ref" is not a string of 1 to 64 bytes; part of
// the documented protocol.
const reasonInvalidRef = "invalid ref"

// decodeRef reads a frame's "ref": a JSON string of 1 to maxRefLen bytes.
func decodeRef(raw json.RawMessage) (string, bool) {
	var ref string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &ref) != nil {
		return "", false
	}
	return ref, ref != "" && len(ref) <= maxRefLen
}

// refKey is the key of a member's ref, the same for every connection of
// the same sender: its identity's ID with an authenticator, its nickname
// without.
func refKey(m *Member, ref string) string {
	who := "n" + m.nickname
	if m.identity.ID != "" {
		who = "i" + m.identity.ID
	}
	// Quoted, so that no sender's key is a prefix of another's.
	return strconv.Quote(who) + ref
}

// claimRef looks m's ref up: if the room took it already, m receives its
// ack; if it is being taken, m waits for its ack; else the room claims it
// for m's message, which the caller goes on to take, and returns the claim.
// It reports whether the caller is done with the frame.
func (rm *Room) claimRef(m *Member, ref string) (claim *refEntry, done bool) {
	key := refKey(m, ref)
	rm.mu.Lock()
	defer rm.mu.Unlock()
	now := rm.cfg.now()
	e := rm.refs.lookLocked(key, now)
	switch {
	case e == nil:
		return rm.refs.claimLocked(key, now), false
	case e.id == 0:
		e.waiting = append(e.waiting, m)
	default:
		rm.cfg.log.Debug("chatroom: resent message acknowledged", "room", rm.cfg.name, "member", m.String(), "ref", ref, "id", e.id)
		rm.sendLocked(ackFrame(e.id, ref), m)
	}
	return nil, true
}

// refuse answers m's message that the room did not take with the error
// frame msg, if not nil, carrying its ref. The claim made for it, if any
// and still open, is released, so that a resend is a new attempt, and
// whoever resent it meanwhile receives the same answer.
func (rm *Room) refuse(m *Member, claim *refEntry, ref string, msg *Message) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.refuseLocked(m, claim, ref, msg)
}

// refuseLocked is refuse with rm.mu held; m may be nil.
func (rm *Room) refuseLocked(m *Member, claim *refEntry, ref string, msg *Message) {
	to := []*Member{m}
	if claim != nil && !claim.gone && claim.id == 0 {
		to = append(to, claim.waiting...)
		claim.waiting = nil
		rm.refs.releaseLocked(claim)
	}
	if msg == nil {
		return
	}
	answer := *msg
	answer.Ref = ref
	for _, o := range to {
		if o != nil && o.index >= 0 {
			rm.sendLocked(answer, o)
		}
	}
}

// ackLocked records that the room took the message p with ID id, if its
// sender gave it a ref, and sends the ack to the sender's connection and to
// those that resent it meanwhile. rm.mu is held.
func (rm *Room) ackLocked(p *post, id uint64) {
	if !p.mine || p.key == "" {
		return
	}
	e := rm.refs.byKey[p.key]
	if e == nil {
		// Forgotten while the broker had it, or never claimed on this node.
		e = rm.refs.claimLocked(p.key, rm.cfg.now())
	}
	if e.id == 0 {
		e.id = id
	}
	to := e.waiting
	e.waiting = nil
	if p.sender != nil && !slices.Contains(to, p.sender) {
		to = append(to, p.sender)
	}
	for _, m := range to {
		if m.index >= 0 {
			rm.sendLocked(ackFrame(id, p.ref), m)
		}
	}
}

// storedLocked returns msg, the frame of p, as the room's Store keeps it:
// on a room without a broker, with the sender's key of its ref, so that a
// room created on the Store after a restart recognises its resend
// (recallLocked). In a cluster the broker keeps the keys
// (broker.DedupBroker). rm.mu is held.
func (rm *Room) storedLocked(msg Message, p *post) Message {
	if rm.cfg.broker == nil {
		msg.RefKey = p.key
	}
	return msg
}

// recallLocked records the refs of the frames a room's Store holds when the
// room is created, oldest first, as taken when the frames were sent: the
// record of a room that was restarted on the Store, within the same bounds
// as the refs it takes (DedupWindow of the frames' times, and at least
// the last least). rm.mu is held, or the room is not yet shared.
func (r *refRecord) recallLocked(msgs []Message) {
	for _, m := range msgs {
		if m.RefKey == "" || m.ID == 0 {
			continue
		}
		r.claimLocked(m.RefKey, m.Time).id = m.ID
	}
}

// ackFrame is the frame that tells a sender the room took its message ref
// with the given ID.
func ackFrame(id uint64, ref string) Message {
	return Message{Type: TypeAck, ID: id, Ref: ref}
}

// refEntry is one ref the room took, or is taking (id still 0).
type refEntry struct {
	key    string
	sender string // the key's sender part, for the per-sender bound
	id     uint64
	at     time.Time
	gone   bool // forgotten; still in a queue, skipped there
	// waiting are the connections that resent the ref while it was being
	// taken: they receive its ack (or its refusal) too.
	waiting []*Member
}

// refRecord is what a room remembers of the refs it took, guarded by
// Room.mu: by key, in the order taken, with each sender's count bounded.
// It keeps at least the last least refs whatever their age, and as many
// of each sender's: a room's history of least messages.
type refRecord struct {
	least   int
	byKey   map[string]*refEntry
	order   []*refEntry // oldest first, gone entries included
	senders map[string][]*refEntry
}

// lookLocked returns the entry of key, or nil. now expires what is older
// than broker.DedupWindow first.
func (r *refRecord) lookLocked(key string, now time.Time) *refEntry {
	r.expire(now)
	return r.byKey[key]
}

// claimLocked records key as being taken, and returns its entry.
func (r *refRecord) claimLocked(key string, now time.Time) *refEntry {
	sender, _ := strconv.QuotedPrefix(key) // refKey made it
	if r.byKey == nil {
		r.byKey = make(map[string]*refEntry)
		r.senders = make(map[string][]*refEntry)
	}
	e := &refEntry{key: key, sender: sender, at: now}
	r.byKey[key] = e
	r.order = append(r.order, e)
	r.senders[sender] = append(r.senders[sender], e)
	for len(r.senders[sender]) > max(maxRefsPerSender, r.least) {
		r.forget(r.senders[sender][0]) // and drops it from the sender's queue
	}
	for len(r.order) > maxRefs {
		r.forget(r.order[0])
		r.order[0] = nil
		r.order = r.order[1:]
	}
	return e
}

// releaseLocked forgets e: its message was refused, so a resend is a new
// message.
func (r *refRecord) releaseLocked(e *refEntry) { r.forget(e) }

// expire forgets the entries older than broker.DedupWindow, but
// the last r.least.
func (r *refRecord) expire(now time.Time) {
	for len(r.order) > 0 {
		e := r.order[0]
		if !e.gone && (now.Sub(e.at) < broker.DedupWindow || len(r.byKey) <= r.least) {
			break
		}
		r.forget(e)
		r.order[0] = nil
		r.order = r.order[1:]
	}
}

// forget removes e from the record; the queues drop it when it reaches
// their heads.
func (r *refRecord) forget(e *refEntry) {
	if e.gone {
		return
	}
	e.gone = true
	if r.byKey[e.key] == e {
		delete(r.byKey, e.key)
	}
	mine := r.senders[e.sender]
	for len(mine) > 0 && mine[0].gone {
		mine[0] = nil
		mine = mine[1:]
	}
	if len(mine) == 0 {
		delete(r.senders, e.sender)
	} else {
		r.senders[e.sender] = mine
	}
}

// lenLocked returns the number of refs remembered.
func (r *refRecord) lenLocked() int { return len(r.byKey) }
