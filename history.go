package chatroom

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// A Store keeps the frames of one room, for joiners, for clients that
// resume (see WithHistory) and for clients that scroll back (PROTOCOL.md,
// "Scrollback"). A Store belongs to one room.
//
// The room calls Append and Since with its lock held, in the order frames
// are sent, so that a joiner's history and the live frames that follow meet
// with no gap and no duplicate. They must therefore be fast and must not
// block: a durable Store keeps its recent frames in memory (loaded when it
// is opened) and hands the writes to a goroutine of its own, in batches.
// Before and Flush are called without the room's lock and may wait, within
// their context, for the database.
//
// A Store keeps each field of the frames it is given, Message.RefKey
// included, which is never on the wire: a room without a broker created
// on a Store reads the keys back from the frames Since(0) returns, and so
// recognises, after a restart, the resends of the messages it holds. A
// Store that drops RefKey works, without that recognition across
// restarts.
type Store interface {
	// Append keeps msg, whose ID is greater than that of every message
	// appended before it. It must not block.
	Append(msg Message)
	// Since returns the kept messages with an ID greater than after, oldest
	// first. complete reports whether they are all the room sent after that
	// ID: false once some of those were dropped. It must not block.
	Since(after uint64) (msgs []Message, complete bool)
	// Before returns at most limit chat and server messages (no join or
	// leave notices) with an ID below before, or the newest when before is
	// 0, oldest first; more reports whether the store has older ones still.
	Before(ctx context.Context, before uint64, limit int) (msgs []Message, more bool, err error)
	// Flush returns once the frame id, and every frame appended before it,
	// is as durable as the store makes it: at once for a store in memory.
	// It returns an error if the frame was not written, or ctx's error.
	Flush(ctx context.Context, id uint64) error
	// Span returns the ID of the first frame the store ever kept for its
	// room and of the last one, or 0, 0 if none. New reads it once: the
	// room numbers its frames above last, and a client resuming from an ID
	// in between resumes from the store, across restarts of the process.
	Span() (first, last uint64)
}

// A DatabaseStore is a Store whose memory holds a room's recent frames and
// a database all of them (sqlitestore, pgstore). The room calls its
// methods without its lock:
//
//   - After, for a client that resumes from further back than the memory
//     reaches: the room reads what it missed from the database before the
//     client joins, and the rest from Since as it joins, with no gap and no
//     duplicate.
//   - Fill, on a room whose broker numbers the frames (a
//     broker.HistoryBroker), when the node subscribes: the frames of the
//     broker's history that the database may lack, because no node that
//     wrote them was subscribed, or the only ones that were died before
//     writing them.
type DatabaseStore interface {
	Store
	// After returns at most limit frames (chat and server messages, join
	// and leave notices) with an ID greater than after, oldest first;
	// complete is false if some of those are no longer kept.
	After(ctx context.Context, after uint64, limit int) (msgs []Message, complete bool, err error)
	// Fill writes msgs, frames that Append may never have been given,
	// oldest first; a frame the database has already is kept once. It may
	// return before they are written.
	Fill(ctx context.Context, msgs []Message) error
}

// reasonNotStored answers, with History.Durable, the sender of a message
// with a ref that its members received but the Store could not write.
const reasonNotStored = "message not stored"

// Defaults of History's bounds.
const (
	// DefaultHistoryLen is how many messages a room's history keeps unless
	// History.Len says otherwise.
	DefaultHistoryLen = 100
	// DefaultHistoryBytes bounds the nicknames and texts a room's history
	// keeps in memory unless History.Bytes says otherwise.
	DefaultHistoryBytes = 256 << 10
)

// History configures a room's history (WithHistory). Its zero value is the
// default: the last DefaultHistoryLen messages, within DefaultHistoryBytes,
// in the room's memory.
type History struct {
	// Len is how many chat and server messages a joiner receives: the
	// room keeps its last Len, and apart from them its last Len join and
	// leave notices, so that one client joining and leaving in a loop
	// cannot push the messages out. 0 means DefaultHistoryLen.
	Len int
	// Bytes bounds the nicknames and texts of the messages kept, and of
	// those a joiner receives from a broker's history: the oldest go
	// first, and the newest is always kept. 0 means DefaultHistoryBytes.
	Bytes int
	// Store, if not nil, keeps the room's frames instead of its memory:
	// a Store of the host's, which decides itself how many it keeps (Len
	// and Bytes do not bound it). Give each room its own. On a room whose
	// broker keeps the history (a broker.HistoryBroker, see WithBroker),
	// joiners and resuming clients are served from the broker's, and the
	// Store keeps the frames the broker numbered, with the broker's IDs:
	// for scrollback, and, a DatabaseStore shared by the nodes (pgstore),
	// for clients resuming from further back than the broker keeps.
	Store Store
	// Durable makes Broadcast, and a member's message, wait until the
	// Store has written the frame (Store.Flush): Broadcast returns nil only
	// then, a member's next message is read only then, and the ack of a
	// message with a ref (PROTOCOL.md) is sent only then, so that an ack
	// means the message is stored. Without it they return, and the ack is
	// sent, once the room has taken the frame, which a crash may still
	// lose if the Store writes behind. A frame the Store failed to write
	// has still reached the members: Broadcast returns an error wrapping
	// ErrNotStored, and the sender of a message with a ref receives the
	// error frame "message not stored" (1011) instead of an ack. Only for a room
	// without a broker, New panics otherwise: in a cluster a frame's ID is
	// the broker's, and every node writes the frame (pgstore), so that a
	// frame survives the node that sent it.
	Durable bool
}

// WithHistory keeps the room's recent chat and server messages, and join
// and leave notices, as h says; not direct messages, which are private, nor
// error frames. A joiner receives them, in the order they were sent, before
// any live frame.
//
// A client that reconnects with the ID of the last frame it saw,
//
//	ws://host/chat?nickname=sei&since=1838510899243813
//
// receives exactly the kept frames after it that it missed, then the live
// ones. If some of those are no longer kept, or the ID is not one of this
// room's (a room created again after a restart numbers its frames above the
// old room's; with a durable Store, above the Store's, and the Store's IDs
// are the room's own: see Store.Span), the client first receives a
// truncated notice
//
//	{"type":"truncated","id":1838510899310373,"time":"…"}
//
// and then every frame still kept. Notices dropped for lack of room do not
// count: the member list (WithPresence) makes up for them. A since that is
// not a number is refused with HTTP 400 before the upgrade. Frames keep
// their IDs when replayed: a client resumes from the greatest ID it has
// seen (PROTOCOL.md). Without the envelope clients see no IDs, so history
// only replays the last frames to joiners.
//
// With a broker (WithBroker) the history is the cluster's if the broker
// keeps one (a broker.HistoryBroker): a client resumes on any node, and the
// broker keeps as many frames as its own configuration says
// (redisbroker.WithHistorySize, natsbroker.JetStreamConfig.History): make
// that at least h.Len, which bounds only what a joiner receives. h.Store,
// if set, keeps the frames the broker numbered besides, for scrollback
// and, a DatabaseStore, for clients resuming from further back than the
// broker's history (even from before the broker lost its data). With a
// plain broker each node keeps its own, in h.Store or its memory, which
// begins again whenever the node joins the cluster afresh.
//
// A joiner's history counts against the message bound of WithSendQueue. The
// room encodes it only as the member's writer reaches it, so a joiner that
// does not read holds no more than a batch of it (32 KiB) beyond what the
// kernel buffers (WithSendBuffer).
//
// A client resuming from further back than a DatabaseStore's memory
// receives what it missed from its database, read before it joins, if the
// memory holds the rest and it missed no more than 1000 frames; else the
// truncated notice and what the memory holds.
//
// New panics if h.Len or h.Bytes is negative, or if h.Durable is set on a
// room with a broker.
func WithHistory(h History) Option {
	return func(c *config) { c.history = &h }
}

// resolveHistory returns WithHistory's History with its defaults filled
// in, or nil without history (Option's rules).
func (c *config) resolveHistory() *History {
	if c.history == nil {
		return nil
	}
	h := *c.history
	h.Len = orDefault("WithHistory", "Len", h.Len, DefaultHistoryLen)
	h.Bytes = orDefault("WithHistory", "Bytes", h.Bytes, DefaultHistoryBytes)
	if h.Durable && c.broker != nil {
		badOption("WithHistory", "Durable is for a room without a broker (WithBroker of %T): a frame's ID is the broker's, known only once it hands the frame back", c.broker)
	}
	return &h
}

// kept reports whether a frame of type t belongs in the room's history:
// chat and server messages, join and leave notices.
func kept(t MessageType) bool {
	switch t.orDefault() {
	case TypeMessage, TypeSystem, TypeJoin, TypeLeave:
		return true
	}
	return false
}

// maxMissedRead bounds the frames a resuming member receives from a
// DatabaseStore's database, beyond what its memory holds: one missing more
// receives a truncated notice and the memory's.
const maxMissedRead = 1000

// missedTimeout bounds a DatabaseStore's read for one resuming member.
const missedTimeout = 5 * time.Second

// readMissed reads, for a member resuming from further back than the
// room's Store holds in memory, what it missed from the Store's database
// (DatabaseStore.After), before it joins and without the room's lock; the
// rest comes from the memory as it joins (replayStoreLocked).
func (rm *Room) readMissed(m *Member) {
	st, ok := rm.store.(DatabaseStore)
	if !ok || !m.resume {
		return
	}
	rm.mu.Lock()
	own := rm.ids.own(m.since)
	rm.mu.Unlock()
	if _, complete := st.Since(m.since); !own || complete {
		return
	}
	missed, complete, err := rm.readStored(m, st, m.since)
	if err != nil {
		return
	}
	rm.mu.Lock()
	m.missed = &replay{msgs: missed, truncated: !complete}
	rm.mu.Unlock()
}

// readStored reads from st's database at most maxMissedRead frames after
// the ID after, for m; it logs a failure.
func (rm *Room) readStored(m *Member, st DatabaseStore, after uint64) ([]Message, bool, error) {
	ctx, cancel := context.WithTimeout(m.ctx, missedTimeout)
	defer cancel()
	msgs, complete, err := st.After(ctx, after, maxMissedRead)
	if err != nil {
		rm.cfg.log.Warn("chatroom: reading missed frames from the store failed", "room", rm.cfg.name, "member", m.String(), "err", err)
	}
	return msgs, complete, err
}

// replayStoreLocked queues for the joiner m the history it has not seen,
// from the room's own Store: what readMissed read from its database, if
// the memory holds the rest. rm.mu is held, so no frame is sent between
// the history and m joining.
func (rm *Room) replayStoreLocked(m *Member) {
	st := rm.store
	if st == nil {
		return
	}
	if rp := m.missed; rp != nil {
		m.missed = nil
		last := m.since
		if len(rp.msgs) > 0 {
			last = rp.msgs[len(rp.msgs)-1].ID
		}
		if rest, complete := st.Since(last); complete {
			if rp.truncated && rm.cfg.envelope {
				rm.sendLocked(Message{Type: TypeTruncated}, m)
			}
			m.replayLocked(append(rp.msgs, rest...))
			return
		}
	}
	var after uint64
	if m.resume {
		after = m.since
	}
	msgs, complete := st.Since(after)
	if m.resume {
		foreign := !rm.ids.own(after)
		if foreign {
			msgs, _ = st.Since(0)
		}
		rm.resumedLocked(m, foreign || !complete)
	}
	m.replayLocked(msgs)
}

// resumedLocked tells a resuming client m, if truncated, that it missed
// more than it is replayed (a truncated notice), and reports the resume.
// rm.mu is held.
func (rm *Room) resumedLocked(m *Member, truncated bool) {
	if truncated && rm.cfg.envelope {
		rm.sendLocked(Message{Type: TypeTruncated}, m)
	}
	if rm.metrics != nil {
		rm.metrics.Resumed(truncated)
	}
}

// MemoryStore is the Store of WithHistory: the last chat and server
// messages, within a count and a byte bound, and apart from them as many of
// the last join and leave notices, so that notices never push messages out.
// It is safe for concurrent use.
type MemoryStore struct {
	mu          sync.Mutex
	chat        keptFrames
	notices     keptFrames
	first, last uint64 // IDs of the first and last frames appended
}

// NewMemoryStore returns a store that keeps the last n messages and at most
// maxBytes of their nicknames and texts, and as many join and leave notices
// besides; 0 means DefaultHistoryLen and DefaultHistoryBytes, and a negative
// value panics. The newest message is always kept, whatever its size.
func NewMemoryStore(n, maxBytes int) *MemoryStore {
	switch {
	case n < 0 || maxBytes < 0:
		panic(fmt.Sprintf("chatroom: NewMemoryStore: negative bound (%d, %d)", n, maxBytes))
	case n == 0:
		n = DefaultHistoryLen
	}
	if maxBytes == 0 {
		maxBytes = DefaultHistoryBytes
	}
	return &MemoryStore{
		chat:    keptFrames{maxCount: n, maxBytes: maxBytes},
		notices: keptFrames{maxCount: n, maxBytes: maxBytes},
	}
}

// Append implements Store.
func (s *MemoryStore) Append(msg Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == 0 {
		s.first = msg.ID
	}
	s.last = msg.ID
	if isNotice(msg.Type) {
		s.notices.push(msg)
	} else {
		s.chat.push(msg)
	}
}

// Since implements Store. The notices it returns are those after the last
// message dropped; whether notices were dropped does not make the answer
// incomplete, as the member list (WithPresence) makes up for them.
func (s *MemoryStore) Since(after uint64) ([]Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chat := s.chat.since(after)
	notices := s.notices.since(max(after, s.chat.dropped))
	out := make([]Message, 0, len(chat)+len(notices))
	for len(chat) > 0 || len(notices) > 0 {
		if len(notices) == 0 || (len(chat) > 0 && chat[0].ID < notices[0].ID) {
			out, chat = append(out, chat[0]), chat[1:]
		} else {
			out, notices = append(out, notices[0]), notices[1:]
		}
	}
	return out, after >= s.chat.dropped
}

// Before implements Store, from the messages it keeps.
func (s *MemoryStore) Before(_ context.Context, before uint64, limit int) ([]Message, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.chat.since(0)
	if before != 0 {
		kept = kept[:sort.Search(len(kept), func(i int) bool { return kept[i].ID >= before })]
	}
	more := len(kept) > limit
	if more {
		kept = kept[len(kept)-limit:]
	}
	return slices.Clone(kept), more, nil
}

// Flush implements Store: a MemoryStore holds what it was given at once.
func (*MemoryStore) Flush(context.Context, uint64) error { return nil }

// Span implements Store. A MemoryStore begins empty, so it is that of the
// frames appended to it.
func (s *MemoryStore) Span() (first, last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.last
}

// isNotice reports whether frames of type t are join or leave notices.
func isNotice(t MessageType) bool { return t == TypeJoin || t == TypeLeave }

// keptFrames is a queue of frames, oldest first, bounded by count and by
// bytes (storedSize); the newest is always kept.
type keptFrames struct {
	frames   []Message // from start
	start    int
	size     int    // bytes of frames[start:]
	dropped  uint64 // ID of the last frame dropped; 0 if none
	maxCount int
	maxBytes int
}

// storedSize is what a frame counts against a store's byte bound.
func storedSize(msg Message) int {
	return len(msg.Nickname) + len(msg.Text) + len(msg.To)
}

func (q *keptFrames) push(msg Message) {
	q.frames = append(q.frames, msg)
	q.size += storedSize(msg)
	for n := len(q.frames) - q.start; n > 1 && (n > q.maxCount || q.size > q.maxBytes); n-- {
		old := &q.frames[q.start]
		q.dropped = old.ID
		q.size -= storedSize(*old)
		*old = Message{} // let go of its strings
		q.start++
	}
	// Move the kept frames back to the front once a quarter of the count
	// (or as many as are kept) has been dropped before them: the slice
	// then holds 1.25 times the count, where moving them only once the
	// dropped outnumber them let a full history hold twice its count of
	// 224-byte Messages (BenchmarkRoomMemory), for about 4 frames copied
	// per push.
	if live := len(q.frames) - q.start; q.start >= 16 && (q.start >= live || q.start >= q.maxCount/4) {
		q.frames = append(q.frames[:0], q.frames[q.start:]...)
		clear(q.frames[len(q.frames):cap(q.frames)])
		q.start = 0
	}
}

// since returns the kept frames with an ID greater than after, sharing q's
// storage.
func (q *keptFrames) since(after uint64) []Message {
	kept := q.frames[q.start:]
	first := sort.Search(len(kept), func(i int) bool { return kept[i].ID > after })
	return kept[first:]
}
