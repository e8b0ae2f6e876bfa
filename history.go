package chatroom

import (
	"fmt"
	"sort"
	"sync"

	"github.com/seed014c2c51/chatroom/broker"
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
	// and Bytes do not bound it). Give each room its own. A room whose
	// broker keeps the history (a broker.HistoryBroker, see WithBroker)
	// has no Store of its own: New panics if given both.
	Store Store
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
// old room's), the client first receives a truncated notice
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
// that at least h.Len, which bounds only what a joiner receives. With a
// plain broker each node keeps its own, in h.Store or its memory, which
// begins again whenever the node joins the cluster afresh.
//
// A joiner's history counts against the message bound of WithSendQueue. The
// room encodes it only as the member's writer reaches it, so a joiner that
// does not read holds no more than a batch of it (32 KiB) beyond what the
// kernel buffers (WithSendBuffer).
//
// New panics if h.Len or h.Bytes is negative, or if h.Store is set on a room
// whose broker keeps the history.
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
	if _, ok := c.broker.(broker.HistoryBroker); ok && h.Store != nil {
		badOption("WithHistory", "a Store cannot be combined with WithBroker of a broker.HistoryBroker (%T), which keeps the room's history for the whole cluster", c.broker)
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

// replayStoreLocked queues for the joiner m the history it has not seen,
// from the room's own Store. rm.mu is held, so no frame is sent between
// the history and m joining.
func (rm *Room) replayStoreLocked(m *Member) {
	st := rm.store
	if st == nil {
		return
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
	mu      sync.Mutex
	chat    keptFrames
	notices keptFrames
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
	if q.start >= 64 && q.start >= len(q.frames)/2 {
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
