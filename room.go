package chatroom

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom/broker"
)

// A Room is one broadcast chat room: every message a member sends reaches
// every member, the sender included, in one order that all members share.
// Serve it with ServeHTTP at any path of any router. Create rooms with New;
// the zero Room is not usable. Two rooms share nothing.
type Room struct {
	cfg config

	// ctx is handed to the hooks; it ends when Shutdown gives up or Close
	// is called.
	ctx    context.Context
	cancel context.CancelFunc

	readBuffers sync.Pool // *bytes.Buffer for decoding client messages
	chunks      sync.Pool // framequeue chunks, for members' queues
	batches     sync.Pool // *[]byte for members' sockets while writing
	deflater    *deflater // nil with WithCompression(Off)

	// onEmpty, set by a Registry, learns when the last connection is gone.
	onEmpty func(*Room)

	// link carries the room's posts to its members on every node: a
	// cluster (WithBroker), or the room alone.
	link link
	// store keeps the room's history: WithHistory's Store, or its memory
	// on a room whose broker keeps none; nil without. On a room whose
	// broker numbers the frames it keeps the broker's (for scrollback,
	// and resumes from further back than the broker's history).
	store Store

	joins *joinLimiter // nil without a join limit

	// metrics is where the room reports (WithMetrics); nil without.
	metrics RoomMetrics

	mu      sync.Mutex           // guards the fields below; fan-out holds it, hooks never run under it
	members []*Member            // in no particular order
	byNick  map[string][]*Member // members by nickname, each list in join order
	byID    map[uint64]*Member   // members by Member.id, for a node's own publications
	byKey   map[string]int       // members by nicknameKey, with WithUniqueNicknames only
	pending noticeBatch          // notices waiting to go out together (WithPresenceDeltas)
	nickSum digest               // of byNick's nicknames, for a cluster's heartbeats
	order   joinOrder            // byNick's nicknames by their first connection's ID
	nextID  uint64               // the last member ID given
	ids     numbering            // the frames' IDs
	refs    refRecord            // the refs of the messages taken (ack.go)
	keep    bool                 // a Registry keeps the room when empty
	closed  bool                 // Shutdown or Close has begun
	active  int                  // connections between acquire and release
	idle    chan struct{}        // closed when closed && active == 0
	closing chan struct{}        // closed when closed is set
}

// New returns a room configured by opts. It starts no goroutine: a room costs
// nothing until members connect. It panics if an option is out of range or
// options contradict each other (see Option).
func New(opts ...Option) *Room {
	rm := &Room{cfg: newConfig(opts), idle: make(chan struct{}), closing: make(chan struct{}), byNick: make(map[string][]*Member), byID: make(map[uint64]*Member)}
	rm.keep = rm.cfg.keepWhenEmpty
	rm.joins = rm.cfg.newJoinLimiter()
	if rm.cfg.compressMin > 0 {
		rm.deflater = &deflater{min: rm.cfg.compressMin}
	}
	rm.ctx, rm.cancel = context.WithCancel(context.Background())
	_, byBroker := rm.cfg.broker.(broker.HistoryBroker)
	if h := rm.cfg.history; h != nil {
		rm.store = h.Store
		if rm.store == nil && !byBroker {
			rm.store = NewMemoryStore(h.Len, h.Bytes)
		}
	}
	rm.ids.byBroker = byBroker
	if h := rm.cfg.history; h != nil {
		rm.refs.least = h.Len
	}
	if rm.cfg.stamps() && !byBroker {
		rm.ids.restart(rm.cfg.now(), rm.cfg.name)
		if rm.store != nil {
			first, last := rm.store.Span()
			rm.ids.adopt(rm.cfg.now(), rm.cfg.name, first, last)
		}
	}
	if rm.store != nil && rm.cfg.broker == nil && rm.cfg.envelope {
		// A room restarted on its Store recognises the resends of what
		// the Store holds (ack.go).
		msgs, _ := rm.store.Since(0)
		rm.refs.recallLocked(msgs)
	}
	if rm.cfg.metrics != nil {
		rm.metrics = rm.cfg.metrics.Room(rm.cfg.name)
	}
	rm.link = localLink{rm}
	if rm.cfg.broker != nil {
		rm.link = newCluster(rm)
	}
	return rm
}

// Name returns the room's name: its name in a Registry, or the one given
// with WithName.
func (rm *Room) Name() string { return rm.cfg.name }

// Broadcast sends msg to every member, as if a member had sent it but without
// the message hook: for bots, announcements and server events. With the
// envelope its type defaults to TypeMessage; TypeSystem marks a message from
// the server. It never waits for a member's socket. It returns the ID the
// message got in the room's order (see Message.ID; 0 without the envelope
// or a history), or ErrRoomClosed once Shutdown or Close has begun; with
// History.Durable, the ID and an error wrapping ErrNotStored if the store
// did not write it. In a cluster the ID is known once the broker has
// handed the message back to this node: Broadcast waits for that within
// ctx (and for room while the queue of publications for the broker is
// full), and returns an error if the broker did not take it in time (it
// may still deliver it later), or ID 0 if this node has no members in the
// room, and so does not receive it.
func (rm *Room) Broadcast(ctx context.Context, msg Message) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return rm.publish(ctx, post{msg: msg})
}

// Members returns the current members in the order they joined.
func (rm *Room) Members() []*Member {
	rm.mu.Lock()
	ms := slices.Clone(rm.members)
	rm.mu.Unlock()
	slices.SortFunc(ms, func(a, b *Member) int { return cmpID(a.id, b.id) })
	return ms
}

// Len returns the number of members.
func (rm *Room) Len() int {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return len(rm.members)
}

// Shutdown closes the room gracefully. From its start, new connections are
// refused with HTTP 503 and Broadcast returns ErrRoomClosed; every member is
// sent close status 1001 "room closed" and leaves with ErrRoomClosed.
// Shutdown returns nil once every member's goroutines and leave hook have
// finished. If ctx ends first, it drops the remaining connections, cancels
// the context given to hooks, and returns ctx's error; hooks still running
// then finish on their own.
//
// http.Server.Shutdown neither closes nor waits for WebSocket connections,
// which it no longer tracks once upgraded. Call both, with one deadline:
//
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	srv.Shutdown(ctx)  // stop accepting; finish ordinary requests
//	room.Shutdown(ctx) // close the members; wait for them
//
// Shutdown may be called more than once and concurrently with Close.
func (rm *Room) Shutdown(ctx context.Context) error {
	rm.closeMembers(roomClosed())
	select {
	case <-rm.idle:
		rm.link.drain()
		return nil
	case <-ctx.Done():
		rm.cancel()
		rm.dropConnections()
		return fmt.Errorf("chatroom: shutdown: %w", ctx.Err())
	}
}

// Close closes the room at once: like Shutdown, but the hooks' context is
// cancelled first and every connection is dropped without a close handshake.
// It waits for the members' goroutines and leave hooks; use Shutdown with a
// deadline to bound that wait. It always returns nil.
func (rm *Room) Close() error {
	rm.cancel()
	rm.closeMembers(cause(ErrRoomClosed, 0, "", nil)) // code 0: no close frame
	rm.dropConnections()
	<-rm.idle
	rm.link.drain()
	return nil
}

// closeMembers marks the room closed and starts closing every member.
func (rm *Room) closeMembers(reason error) {
	rm.mu.Lock()
	if !rm.closed {
		rm.closed = true
		close(rm.closing)
		if rm.active == 0 {
			close(rm.idle)
		}
		if rm.metrics != nil {
			rm.metrics.Closed()
		}
	}
	ms := slices.Clone(rm.members)
	rm.mu.Unlock()
	for _, m := range ms {
		m.leave(reason)
	}
}

// dropConnections closes every member's TCP connection, ending any close
// handshake still under way.
func (rm *Room) dropConnections() {
	rm.mu.Lock()
	ms := slices.Clone(rm.members)
	rm.mu.Unlock()
	for _, m := range ms {
		_ = m.sock.Drop()
	}
}

// roomClosed is the leave reason of members the room closes.
func roomClosed() error {
	return cause(ErrRoomClosed, websocket.StatusGoingAway, "room closed", nil)
}

// acquire counts a connection in before it is upgraded, so that Shutdown
// waits for it. It reports false once the room is closed.
func (rm *Room) acquire() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.closed {
		return false
	}
	rm.active++
	return true
}

// release counts a connection out once it is completely finished: before
// ServeHTTP returns, or when the member's goroutine ends (upgraded).
func (rm *Room) release(upgraded bool) {
	rm.mu.Lock()
	rm.active--
	empty := rm.active == 0
	if rm.closed && empty {
		close(rm.idle)
	}
	rm.mu.Unlock()
	if empty && rm.onEmpty != nil {
		rm.onEmpty(rm)
	}
	if upgraded && rm.cfg.finished != nil {
		rm.cfg.finished() // last: a test that waits for it sees the registry's removal too
	}
}

// retire closes the room if it has no connection and is not kept, and
// reports whether it is now closed and empty. A Registry calls it, under its
// own lock, before it forgets the room.
func (rm *Room) retire() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.active > 0 {
		return false
	}
	if !rm.closed {
		if rm.keep {
			return false
		}
		rm.closed = true
		close(rm.closing)
		close(rm.idle)
		rm.cancel()
		if rm.metrics != nil {
			rm.metrics.Closed()
		}
	}
	return true
}

// isClosed reports whether Shutdown or Close has begun.
func (rm *Room) isClosed() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.closed
}

// add makes m a member, in one step under the room lock so that nothing is
// missed or seen twice: the history m missed, the member list, then every
// frame delivered after it. It reports whether m's join notice is to be
// published (WithNotices), which its caller does once the lock is released.
func (rm *Room) add(m *Member) (announce bool, err error) {
	var key string
	if rm.cfg.uniqueNicknames {
		key = nicknameKey(m.nickname) // outside the lock: it costs a PRECIS pass
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.closed {
		return false, roomClosed()
	}
	present := rm.link.presentLocked(m.nickname)
	if rm.cfg.uniqueNicknames {
		if present || rm.byKey[key] > 0 {
			return false, cause(ErrNicknameTaken, StatusNicknameTaken, reasonNicknameTaken, nil)
		}
		if rm.byKey == nil {
			rm.byKey = make(map[string]int)
		}
		rm.byKey[key]++
	}
	rm.link.replayLocked(m)
	m.index = len(rm.members)
	rm.members = append(rm.members, m)
	rm.indexNickLocked(m)
	rm.byID[m.id] = m
	if rm.cfg.presence {
		rm.sendLocked(rm.membersLocked(), m)
	}
	return rm.cfg.notices && !present, nil
}

// remove takes m out of the room; no frame reaches it afterwards. It
// reports whether m's leave notice is to be published: it was the last
// connection of its nickname on any node (WithNotices).
func (rm *Room) remove(m *Member) (announce bool) {
	var key string
	if rm.cfg.uniqueNicknames {
		key = nicknameKey(m.nickname)
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	i := m.index
	if i < 0 {
		return false
	}
	if rm.cfg.uniqueNicknames {
		if rm.byKey[key]--; rm.byKey[key] <= 0 {
			delete(rm.byKey, key)
		}
	}
	last := len(rm.members) - 1
	rm.members[i] = rm.members[last]
	rm.members[i].index = i
	rm.members[last] = nil
	rm.members = rm.members[:last]
	m.index = -1
	delete(rm.byID, m.id)

	if !rm.unindexNickLocked(m) {
		return false
	}
	return rm.cfg.notices && !rm.link.presentLocked(m.nickname)
}
