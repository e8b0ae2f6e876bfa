package chatroom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
)

// The member's lifecycle, in the order things happen, with the one verb
// each step has:
//
//	ServeHTTP (the HTTP server's goroutine)
//	  rm.acquire   count the connection in, so that Shutdown waits for it
//	  rm.admit     decide who the request is, before the upgrade
//	  (upgrade)    websocket.Accept; the hijacked connection is a socket
//	  rm.newMember
//	  rm.join      the join hook, then link.attach (subscribe the node),
//	               link.readHistory, and rm.add under the room's lock;
//	               the join notice is published after it
//	rm.serve (the member's goroutine, from here on)
//	  rm.readLoop  read and publish until the member must leave; the loop
//	               may move to a fresh goroutine between messages
//	               (awaitMessage), which then does what follows
//	  m.leave      record the first reason and start the close handshake
//	               (any goroutine may call it: the writer, the keepalive,
//	               Shutdown, Member.Close)
//	  rm.remove    under the room's lock; the leave notice after it
//	  link.detach  unsubscribe the node after its last member
//	  m.reap       read until the client's close, wait for the member's
//	               other goroutines (writer, closer, keepalive), close
//	  OnLeave
//	  rm.release   count the connection out; an empty room may go
//
// A member refused by join is reaped at once, with no leave hook.
//
// Locks, in the order they are taken, never the other way:
//
//	Registry.mu > Room.mu > cluster: peerView.mu, recentFrames.mu, outbox.mu > Member.mu > socket.mu
//
// Room.mu guards the members and their order, and is held while a frame
// is queued for every member (deliverLocked), so that all receive one
// order. No hook and no broker call ever runs under it. Member.mu guards
// the member's queue and leave reason; the writer never holds it while
// writing to the network. The cluster's subMu serialises subscribing, and is
// taken before Room.mu.

// newMember makes the member of an upgraded connection, not yet joined.
func (rm *Room) newMember(conn *websocket.Conn, s *socket.Socket, adm admission) *Member {
	m := &Member{
		room:     rm,
		nickname: adm.identity.Nickname,
		identity: adm.identity,
		clientIP: adm.clientIP,
		since:    adm.since,
		resume:   adm.resume,
		conn:     conn,
		sock:     s,
		index:    -1,
		// Probe once: a connection that refuses deadlines gets a timer on
		// every flush instead.
		deadlines: s.SetWriteDeadline(time.Time{}) == nil,
		deflate:   adm.deflate,
	}
	if adm.authErr != nil {
		m.refusal = cause(ErrUnauthorized, StatusUnauthorized, reasonUnauthorized, adm.authErr)
	}
	m.startWriter = m.writeLoop
	m.ctx, m.cancel = context.WithCancel(rm.ctx)
	rm.mu.Lock()
	rm.nextID++
	m.id = rm.nextID
	rm.mu.Unlock()
	if rm.metrics != nil {
		rm.metrics.Connected()
	}
	return m
}

// serve runs a joined member's life on its own goroutine: read until it
// leaves, then clean up, run the leave hook and count the connection out
// (rm.release). The reader may hand its loop over to a fresh goroutine
// (awaitMessage), which serve's goroutine starts before it ends: there is
// always exactly one, and the last one cleans up.
func (rm *Room) serve(m *Member) {
	err := rm.readLoop(m)
	if err == errHandOver {
		if rm.cfg.handedOver != nil {
			rm.cfg.handedOver()
		}
		go rm.serve(m)
		return
	}
	rm.finish(m, err)
}

// finish is the rest of serve once the member leaves for reason err. Its
// frame is not serve's, which is on the stack while the reader waits.
//
//go:noinline
func (rm *Room) finish(m *Member, err error) {
	defer rm.release(true)
	defer m.cancel()
	m.leaveNow(err)
	if rm.remove(m) {
		rm.announce(TypeLeave, m.nickname)
	}
	rm.link.detach()
	m.reap()
	reason := m.leaveReason()
	rm.ended(m, reason, false)
	rm.runLeaveHook(m, reason)
}

// ended logs why m's connection ended, at the level its reason calls for
// (leaveLevel), and reports it (WithMetrics): m left, or, if refused, the
// room refused it after the upgrade. The attributes are the ones an
// operator filters on: room, member ("nickname#id"), reason (ReasonLabel)
// and err (the LeaveError, with the close status).
func (rm *Room) ended(m *Member, reason error, refused bool) {
	label := ReasonLabel(reason)
	msg := "chatroom: member left"
	if refused {
		msg = "chatroom: join refused"
	}
	rm.cfg.log.Log(context.Background(), leaveLevel(label), msg,
		"room", rm.cfg.name, "member", m.String(), "reason", label, "err", reason)
	if rm.metrics != nil {
		rm.metrics.Disconnected(reason)
	}
}

// leaveLevel is the level of the log line of a member that left for the
// reason labelled label: Debug for what happens all day (a client that
// closed or whose connection broke, a shutdown), Info for a client the
// room or the host closed, Warn for a member cut as too slow (the server
// or the network may be overloaded), Error for a hook that panicked.
// docs/operations.md has the table.
func leaveLevel(label string) slog.Level {
	switch label {
	case ReasonNormal, ReasonAbnormal, ReasonShutdown:
		return slog.LevelDebug
	case ReasonSlow:
		return slog.LevelWarn
	case ReasonHookPanic, ReasonOther:
		return slog.LevelError
	}
	return slog.LevelInfo
}

const reasonJoinRefused = "join refused"

// join runs the join hook and adds m to the room, and reports whether m
// joined. A member refused is closed and reaped before it returns, without
// a leave hook.
func (rm *Room) join(m *Member) bool {
	if err := rm.enter(m); err != nil {
		m.leaveNow(err)
		m.reap()
		m.cancel()
		rm.ended(m, err, true)
		return false
	}
	rm.cfg.log.Debug("chatroom: joined", "room", rm.cfg.name, "member", m.String(), "ip", m.clientIP)
	if rm.cfg.joined != nil {
		rm.cfg.joined(m)
	}
	m.startKeepalive()
	return true
}

// enter is join's work, which a refusal ends with the leave reason.
func (rm *Room) enter(m *Member) error {
	if m.refusal != nil {
		return m.refusal
	}
	if rm.cfg.onJoin != nil {
		err := rm.callHook(m, func() error { return rm.cfg.onJoin(m.ctx, m) })
		if err != nil {
			if errors.Is(err, ErrHookPanic) {
				return err
			}
			if reason, ok := hookClose(err); ok {
				return reason
			}
			return cause(ErrRefused, websocket.StatusPolicyViolation, reasonJoinRefused, err)
		}
	}
	rm.link.attach()
	rm.link.readHistory(m)
	announce, err := rm.add(m)
	if err != nil {
		rm.link.forget(m)
		rm.link.detach()
		return err
	}
	if announce {
		rm.announce(TypeJoin, m.nickname)
	}
	return nil
}

// announce publishes a join or leave notice of nickname. A notice that
// cannot be published, once the room is closed, has no one left to tell.
func (rm *Room) announce(t MessageType, nickname string) {
	_, _ = rm.publish(context.Background(), post{msg: Message{Type: t, Nickname: nickname}})
}

// hookClose reports whether a hook's error asks to close the member with a
// websocket.CloseError of its own, and returns the leave reason if so.
func hookClose(err error) (error, bool) {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return nil, false
	}
	return cause(ErrRefused, ce.Code, truncateReason(ce.Reason), err), true
}

// callHook runs a hook, turning a panic into an ErrHookPanic reason.
func (rm *Room) callHook(m *Member, hook func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			rm.cfg.log.Error("chatroom: hook panicked", "room", rm.cfg.name, "member", m.String(), "panic", p, "stack", string(debug.Stack()))
			err = cause(ErrHookPanic, websocket.StatusInternalError, "internal error", fmt.Errorf("panic: %v", p))
		}
	}()
	return hook()
}

// runLeaveHook runs OnLeave, if any, recovering a panic.
func (rm *Room) runLeaveHook(m *Member, reason error) {
	if rm.cfg.onLeave == nil {
		return
	}
	_ = rm.callHook(m, func() error {
		rm.cfg.onLeave(rm.ctx, m, reason)
		return nil
	})
}
