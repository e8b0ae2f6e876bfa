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
	r := &Room{cfg: defaultConfig(), idle: make(chan struct{})}
	for _, opt := range opts {
		opt(&r.cfg)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Broadcast sends msg to every member, as if a member had sent it but without
// the message hook: for bots, announcements and server events. It never waits
// for a member's socket. It returns ErrRoomClosed once Shutdown or Close has
// begun.
func (r *Room) Broadcast(ctx context.Context, msg Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.publish(msg)
}

// publish is the one path by which every message reaches the members. It
// encodes the message once and queues the same bytes for every member, under
// the room lock so that all members see one order.
func (r *Room) publish(msg Message) error {
	frame := msg.appendJSON(make([]byte, 0, msg.encodedLen()))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrRoomClosed
	}
	for _, m := range r.members {
		m.enqueue(frame)
	}
	return nil
}

// Members returns the current members in the order they joined.
func (r *Room) Members() []*Member {
	r.mu.Lock()
	ms := slices.Clone(r.members)
	r.mu.Unlock()
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
func (r *Room) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
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
func (r *Room) Shutdown(ctx context.Context) error {
	r.closeMembers()
	select {
	case <-r.idle:
		return nil
	case <-ctx.Done():
		r.cancel()
		r.dropConnections()
		return fmt.Errorf("chatroom: shutdown: %w", ctx.Err())
	}
}

// Close closes the room at once: like Shutdown, but the hooks' context is
// cancelled first and every connection is dropped without a close handshake.
// It waits for the members' goroutines and leave hooks; use Shutdown with a
// deadline to bound that wait. It always returns nil.
func (r *Room) Close() error {
	r.cancel()
	r.closeMembers()
	r.dropConnections()
	<-r.idle
	return nil
}

// closeMembers marks the room closed and starts closing every member.
func (r *Room) closeMembers() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		if r.active == 0 {
			close(r.idle)
		}
	}
	ms := slices.Clone(r.members)
	r.mu.Unlock()
	for _, m := range ms {
		m.leave(cause(ErrRoomClosed, websocket.StatusGoingAway, "room closed", nil))
	}
}

// dropConnections closes every member's TCP connection, ending any close
// handshake still under way.
func (r *Room) dropConnections() {
	r.mu.Lock()
	ms := slices.Clone(r.members)
	r.mu.Unlock()
	for _, m := range ms {
		if m.netConn != nil {
			_ = m.netConn.Close()
		} else {
			_ = m.conn.CloseNow()
		}
	}
}

// acquire counts a connection in before it is upgraded, so that Shutdown
// waits for it. It reports false once the room is closed.
func (r *Room) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.active++
	return true
}

// release counts a connection out once it is completely finished.
func (r *Room) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.closed && r.active == 0 {
		close(r.idle)
	}
}

// add makes m a member. It reports false once the room is closed.
func (r *Room) add(m *Member) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	m.index = len(r.members)
	r.members = append(r.members, m)
	return true
}

// remove takes m out of the room; no broadcast reaches it afterwards.
func (r *Room) remove(m *Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := m.index
	if i < 0 {
		return
	}
	last := len(r.members) - 1
	r.members[i] = r.members[last]
	r.members[i].index = i
	r.members[last] = nil
	r.members = r.members[:last]
	m.index = -1
}
