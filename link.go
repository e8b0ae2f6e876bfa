package chatroom

import (
	"context"
	"fmt"

	"github.com/coder/websocket"
)

// A link carries a room's posts to the members of every node that has the
// room: the room hands it each post (Broadcast, a member's message, a
// notice, a direct message), and the link hands each back to the room's
// deliverLocked, once on every node, in one order that every node shares.
// It is the room's one seam between sending and delivering. A room without
// a broker has the trivial link, localLink, which delivers at once; a room
// with one has a cluster (cluster.go), which delivers what the broker hands
// back.
//
// A link also answers what depends on the other nodes: who is present, and
// what history a joiner receives.
type link interface {
	// send hands p to every node, and returns the ID p got on this node.
	// It returns ErrRoomClosed once the room is closed, or ctx's error if
	// ctx ends while it waits.
	send(ctx context.Context, p post) (uint64, error)
	// attach counts a joining member in, before its history is read, and
	// detach counts a member out once it has left or was refused.
	attach()
	detach()
	// readHistory reads, before m is added and without the room's lock,
	// the history m will receive, if it comes from elsewhere than the
	// room's own Store; forget drops it if m does not join.
	readHistory(m *Member)
	forget(m *Member)
	// replayLocked queues for m the history it has not seen, as it is
	// added. rm.mu is held.
	replayLocked(m *Member)
	// presentLocked reports whether nickname is present on any node, and
	// nicknamesLocked lists the nicknames present on every node, this
	// node's (local) first. rm.mu is held.
	presentLocked(nickname string) bool
	nicknamesLocked(local []string, limit int) []string
	// countLocked counts the nicknames present on every node. rm.mu is
	// held.
	countLocked() int
	// noticeLocked reports whether this node's members are to receive a
	// join or leave notice that node origin sent (mine: this node), and
	// records it. rm.mu is held.
	noticeLocked(msg Message, origin string, mine bool) bool
	// deliveredLocked learns of each room frame delivered, with its ID.
	// rm.mu is held.
	deliveredLocked(msg Message)
	// drain waits until every post sent has been handed over.
	drain()
}

// localLink is the link of a room without a broker: the room is the only
// node, and delivers each post as it is sent.
type localLink struct{ rm *Room }

func (l localLink) send(ctx context.Context, p post) (uint64, error) {
	rm := l.rm
	if !rm.cfg.stamps() {
		// Nothing to number: encode before taking the lock.
		p.frame = rm.encode(p.msg)
	}
	rm.mu.Lock()
	if rm.closed {
		rm.mu.Unlock()
		return 0, ErrRoomClosed
	}
	id, _ := rm.deliverLocked(&p, 0) // a room of its own always delivers
	rm.mu.Unlock()
	if !rm.storesFirst(&p) {
		return id, nil
	}
	err := rm.store.Flush(ctx, id)
	// The ack waited for the write; a frame the store did not write is
	// answered as not taken, though its members have it.
	rm.mu.Lock()
	if err == nil {
		rm.ackLocked(&p, id)
	} else if p.key != "" {
		answer := errorFrame(websocket.StatusInternalError, reasonNotStored)
		rm.refuseLocked(p.sender, p.claim, p.ref, &answer)
	}
	rm.mu.Unlock()
	if err != nil {
		return id, fmt.Errorf("%w: %w", ErrNotStored, err)
	}
	return id, nil
}

// storesFirst reports whether p is a frame the room's Store must have
// written before Broadcast returns and its sender is acknowledged
// (History.Durable).
func (rm *Room) storesFirst(p *post) bool {
	h := rm.cfg.history
	return h != nil && h.Durable && p.to == "" && kept(p.msg.Type)
}

func (localLink) attach()                                        {}
func (localLink) detach()                                        {}
func (l localLink) readHistory(m *Member)                        { l.rm.readMissed(m) }
func (localLink) forget(*Member)                                 {}
func (l localLink) replayLocked(m *Member)                       { l.rm.replayStoreLocked(m) }
func (l localLink) presentLocked(nickname string) bool           { return len(l.rm.byNick[nickname]) > 0 }
func (localLink) nicknamesLocked(local []string, _ int) []string { return local }
func (l localLink) countLocked() int                             { return len(l.rm.byNick) }
func (localLink) noticeLocked(Message, string, bool) bool        { return true }
func (localLink) deliveredLocked(Message)                        {}
func (localLink) drain()                                         {}
