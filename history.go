package chatroom

import (
	"slices"
	"sort"
	"sync"
)

// A Store keeps the recent frames of one room, for joiners and for clients
// that resume (see WithHistory). The room calls it with its lock held, in
// the order frames are sent, so that a joiner's history and the live frames
// that follow meet with no gap and no duplicate. An implementation must
// therefore be fast and must not block: keep recent frames in memory and
// hand slow work, such as writing to a database, to a goroutine of its own.
// A Store belongs to one room.
type Store interface {
	// Append keeps msg, whose ID is greater than that of every message
	// appended before it.
	Append(msg Message)
	// Since returns the kept messages with an ID greater than after, oldest
	// first. complete reports whether they are all the room sent after that
	// ID: false once some of those were dropped.
	Since(after uint64) (msgs []Message, complete bool)
}

// DefaultHistoryBytes bounds the memory of WithHistory's store unless
// WithHistoryBytes says otherwise: a room keeps at most its last n messages
// and at most this many bytes of them.
const DefaultHistoryBytes = 256 << 10

// WithHistory keeps the room's last n chat and server messages in memory
// (not join and leave notices, which a member list makes up for and which
// one client's churn could otherwise push every message out with; not
// direct messages, which are private; not error frames), within
// DefaultHistoryBytes, 256 KiB, of nicknames and texts (see
// WithHistoryBytes). A joiner receives them before any live frame.
//
// A client that reconnects with the ID of the last frame it saw,
//
//	ws://host/chat?nickname=sei&since=1763884800000042
//
// receives exactly the kept frames after it that it missed, then the live
// ones. If some of those are no longer kept, or the ID is not one of this
// room's (a room created again after a restart numbers its frames above the
// old room's), the client first receives a truncated notice
//
//	{"type":"truncated","id":1763884800000107,"time":"…"}
//
// and then every frame still kept. A since that is not a number is refused
// with HTTP 400 before the upgrade. Frames keep their IDs when replayed,
// while the notice and the member list take new ones: a client resumes from
// the greatest ID it has seen. Without the envelope clients see no IDs, so
// history only replays the last frames to joiners.
//
// A joiner's history counts against the message bound of WithSendQueue. The
// room encodes it only as the member's writer reaches it, so a joiner that
// does not read holds no more than a batch of it (32 KiB) beyond what the
// kernel buffers (WithSendBuffer).
func WithHistory(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.store, c.historyLen = nil, n
		}
	}
}

// WithHistoryBytes bounds WithHistory's store in bytes of nicknames and
// texts (default DefaultHistoryBytes, 256 KiB): the oldest messages go
// first, and the newest is always kept. It has no effect on a Store of the
// host's. A value <= 0 keeps the default.
func WithHistoryBytes(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.historyBytes = n
		}
	}
}

// WithStore is WithHistory with a Store of the host's. Give each room its
// own.
func WithStore(s Store) Option {
	return func(c *config) { c.store, c.historyLen = s, 0 }
}

// kept reports whether a frame of type t belongs in the room's history:
// chat and server messages.
func kept(t MessageType) bool {
	switch t.orDefault() {
	case TypeMessage, TypeSystem:
		return true
	}
	return false
}

// replayLocked queues for the joiner m the history it has not seen. rm.mu
// is held, so no frame is sent between the history and m joining.
func (rm *Room) replayLocked(m *Member) {
	st := rm.cfg.store
	if st == nil {
		return
	}
	var after uint64
	if m.resume {
		after = m.since
	}
	msgs, complete := st.Since(after)
	if m.resume {
		foreign := !rm.ownIDLocked(after)
		if foreign {
			msgs, _ = st.Since(0)
		}
		if (foreign || !complete) && rm.cfg.envelope {
			rm.sendLocked(Message{Type: TypeTruncated}, m)
		}
	}
	m.replayLocked(msgs)
}

// MemoryStore is the Store of WithHistory: the last messages, within a
// count and a byte bound. It is safe for concurrent use.
type MemoryStore struct {
	mu       sync.Mutex
	msgs     []Message // oldest first, from start
	start    int
	size     int    // bytes of msgs[start:], as storedSize counts them
	dropped  uint64 // ID of the last message dropped; 0 if none
	maxMsgs  int
	maxBytes int
}

// NewMemoryStore returns a store that keeps the last n messages (at least
// 1) and at most maxBytes of their nicknames and texts (DefaultHistoryBytes
// if maxBytes <= 0). The newest message is always kept, whatever its size.
func NewMemoryStore(n, maxBytes int) *MemoryStore {
	if maxBytes <= 0 {
		maxBytes = DefaultHistoryBytes
	}
	return &MemoryStore{maxMsgs: max(n, 1), maxBytes: maxBytes}
}

// storedSize is what a message counts against a store's byte bound.
func storedSize(msg Message) int {
	return len(msg.Nickname) + len(msg.Text) + len(msg.To)
}

// Append implements Store.
func (s *MemoryStore) Append(msg Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msg)
	s.size += storedSize(msg)
	for n := len(s.msgs) - s.start; n > 1 && (n > s.maxMsgs || s.size > s.maxBytes); n-- {
		old := &s.msgs[s.start]
		s.dropped = old.ID
		s.size -= storedSize(*old)
		*old = Message{} // let go of its strings
		s.start++
	}
	if s.start >= 64 && s.start >= len(s.msgs)/2 {
		s.msgs = append(s.msgs[:0], s.msgs[s.start:]...)
		clear(s.msgs[len(s.msgs):cap(s.msgs)])
		s.start = 0
	}
}

// Since implements Store.
func (s *MemoryStore) Since(after uint64) ([]Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.msgs[s.start:]
	first := sort.Search(len(kept), func(i int) bool { return kept[i].ID > after })
	return slices.Clone(kept[first:]), after >= s.dropped
}
