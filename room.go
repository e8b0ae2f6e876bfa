package chatroom

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/coder/websocket"
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

	mu      sync.Mutex // guards the fields below; fan-out holds it, hooks never run under it
	members []*Member  // in no particular order
	nextID  uint64
	closed  bool          // Shutdown or Close has begun
	active  int           // connections between acquire and release
	idle    chan struct{} // closed when closed && active == 0
}

// New returns a room configured by opts. It starts no goroutine: a room costs
// nothing until members connect.
func New(opts ...Option) *Room {
	rm := &Room{cfg: defaultConfig(), idle: make(chan struct{})}
	for _, opt := range opts {
		opt(&rm.cfg)
	}
	rm.ctx, rm.cancel = context.WithCancel(context.Background())
	return rm
}

// Broadcast sends msg to every member, as if a member had sent it but without
// the message hook: for bots, announcements and server events. It never waits
// for a member's socket. It returns ErrRoomClosed once Shutdown or Close has
// begun.
func (rm *Room) Broadcast(ctx context.Context, msg Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return rm.publish(msg)
}

// publish is the one path by which every message reaches the members. It
// encodes the message once and queues the same bytes for every member, under
// the room lock so that all members see one order.
func (rm *Room) publish(msg Message) error {
	frame := msg.appendJSON(make([]byte, 0, msg.encodedLen()))
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.closed {
		return ErrRoomClosed
	}
	for _, m := range rm.members {
		m.enqueue(frame)
	}
	return nil
}

// Members returns the current members in the order they joined.
func (rm *Room) Members() []*Member {
	rm.mu.Lock()
	ms := slices.Clone(rm.members)
	rm.mu.Unlock()
	slices.SortFunc(ms, func(a, b *Member) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
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
	rm.closeMembers()
	select {
	case <-rm.idle:
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
	rm.closeMembers()
	rm.dropConnections()
	<-rm.idle
	return nil
}

// closeMembers marks the room closed and starts closing every member.
func (rm *Room) closeMembers() {
	rm.mu.Lock()
	if !rm.closed {
		rm.closed = true
		if rm.active == 0 {
			close(rm.idle)
		}
	}
	ms := slices.Clone(rm.members)
	rm.mu.Unlock()
	for _, m := range ms {
		m.leave(roomClosed())
	}
}

// dropConnections closes every member's TCP connection, ending any close
// handshake still under way.
func (rm *Room) dropConnections() {
	rm.mu.Lock()
	ms := slices.Clone(rm.members)
	rm.mu.Unlock()
	for _, m := range ms {
		if m.netConn != nil {
			_ = m.netConn.Close()
		} else {
			_ = m.conn.CloseNow()
		}
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

// release counts a connection out once it is completely finished.
func (rm *Room) release() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.active--
	if rm.closed && rm.active == 0 {
		close(rm.idle)
	}
}

// add makes m a member. It reports false once the room is closed.
func (rm *Room) add(m *Member) bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.closed {
		return false
	}
	m.index = len(rm.members)
	rm.members = append(rm.members, m)
	return true
}

// remove takes m out of the room; no broadcast reaches it afterwards.
func (rm *Room) remove(m *Member) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	i := m.index
	if i < 0 {
		return
	}
	last := len(rm.members) - 1
	rm.members[i] = rm.members[last]
	rm.members[i].index = i
	rm.members[last] = nil
	rm.members = rm.members[:last]
	m.index = -1
}
