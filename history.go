package chatroom

import (
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

// WithHistory keeps the room's last n frames (chat messages, server
// messages, join and leave notices; not direct messages, which are private,
// nor error frames) in memory. A joiner receives them before any live frame.
//
// A client that reconnects with the ID of the last frame it saw,
//
//	ws://host/chat?nickname=sei&since=1763884800000042
//
// receives exactly the frames after it that it missed, then the live ones.
// If some of those are no longer kept, or the ID is not one of this room's
// (a room created again after a restart numbers its frames above the old
// room's), the client first receives a truncated notice
//
//	{"type":"truncated","id":1763884800000107,"time":"…"}
//
// and then every frame still kept. A since that is not a number is refused
// with HTTP 400 before the upgrade. Frames keep their IDs when replayed,
// while the notice and the member list take new ones: a client resumes from
// the greatest ID it has seen. Without the envelope clients see no IDs, so
// history only replays the last frames to joiners.
//
// History frames are queued regardless of WithSendQueue: they are already
// held by the store, so the bound is n.
func WithHistory(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.store = NewMemoryStore(n)
			c.historyLen = n
		}
	}
}

// WithStore is WithHistory with a Store of the host's. Give each room its
// own.
func WithStore(s Store) Option {
	return func(c *config) { c.store, c.historyLen = s, 0 }
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
		foreign := after > rm.seq || after+1 < rm.firstID
		if foreign {
			msgs, _ = st.Since(0)
		}
		if (foreign || !complete) && rm.cfg.envelope {
			rm.sendLocked(Message{Type: TypeTruncated}, m)
		}
	}
	for _, msg := range msgs {
		m.enqueueUnbounded(rm.encode(msg))
	}
}

// MemoryStore is the Store of WithHistory: the last n messages in a ring.
// It is safe for concurrent use.
type MemoryStore struct {
	mu      sync.Mutex
	ring    []Message // len(ring) == capacity once full
	next    int       // where the next message goes once full
	dropped uint64    // ID of the last message dropped; 0 if none
}

// NewMemoryStore returns a store that keeps the last n messages (at least 1).
func NewMemoryStore(n int) *MemoryStore {
	return &MemoryStore{ring: make([]Message, 0, max(n, 1))}
}

// Append implements Store.
func (s *MemoryStore) Append(msg Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, msg)
		return
	}
	s.dropped = s.ring[s.next].ID
	s.ring[s.next] = msg
	s.next = (s.next + 1) % len(s.ring)
}

// Since implements Store.
func (s *MemoryStore) Since(after uint64) ([]Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.ring)
	at := func(i int) Message { return s.ring[(s.next+i)%n] } // oldest first
	first := sort.Search(n, func(i int) bool { return at(i).ID > after })
	msgs := make([]Message, 0, n-first)
	for i := first; i < n; i++ {
		msgs = append(msgs, at(i))
	}
	return msgs, after >= s.dropped
}
