package chatroom

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed014c2c51/chatroom/internal/framequeue"
	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// A Member is one WebSocket connection in a room. Its methods are safe to call
// from any goroutine, also after the member has left.
type Member struct {
	room     *Room
	id       uint64
	nickname string
	clientIP string
	identity Identity
	since    uint64 // where the member's history resumes, if resume
	// replayed is the ID of the newest frame of a joiner's history read
	// from a broker, which live frames up to it must not repeat, until the
	// first live frame past it; 0 otherwise. Guarded by room.mu.
	replayed uint64
	// missed is what a member resuming from further back than its room's
	// Store holds in memory missed, read from the database before it
	// joins (readMissed); nil otherwise. Guarded by room.mu.
	missed  *replay
	refusal error // why the member may not join, decided before the upgrade
	conn    *websocket.Conn
	sock    *socket.Socket // the hijacked connection under conn
	// The flags side by side: each alone between wider fields would cost
	// 8 bytes, and a member is in the next size class at 464.
	resume bool
	// deadlines: sock takes deadlines, so flushes need no timer.
	deadlines bool
	// deflate: the client negotiated permessage-deflate (compress.go).
	deflate bool
	ctx     context.Context
	cancel  context.CancelFunc
	// limiter and pacer are made when the member first sends, since most
	// members of a big room never do: nil until then, and nil without
	// WithRateLimit or pacing (WithPacing). Only the reader uses them.
	limiter *rate.Limiter
	pacer   *rate.Limiter
	// unread is the rest of a message over the size limit that tooBig
	// left for discardReads, limited to what the closing member may still
	// make the room read. Only the member's reader uses it.
	unread *io.LimitedReader
	index  int // position in room.members, guarded by room.mu; -1 outside

	// abort tells the writer to stop between frames without taking mu: the
	// member leaves for a reason that makes its queue worthless (it is too
	// slow, or its connection is gone).
	abort atomic.Bool
	// closing mirrors reason != nil, for the writer.
	closing atomic.Bool

	mu    sync.Mutex       // guards the fields below; never held while calling out
	queue framequeue.Queue // frames waiting for the writer; empty while idle
	// beforeReplay and replay are, while a joiner's history is pending,
	// the frames queued before it and the history itself (replayLocked):
	// the writer sends beforeReplay, then replay, then queue.
	beforeReplay framequeue.Queue
	replay       []Message
	queuedMsgs   int // frames queued or being written
	queuedBytes  int
	// readsPaused is closed to resume the reader, paused while the queue
	// is deep (waitForOwnQueue); nil while it is not.
	readsPaused chan struct{}
	writing     bool // a writer goroutine is running
	reaped      bool // the member's goroutine is collecting the others: start no more
	// startWriter is writeLoop as a func value made once: "go m.writeLoop()"
	// would allocate a closure every time a writer starts.
	startWriter func()
	// writerDone is closed when writing becomes false, for closeConn,
	// which makes it only to wait: an idle member holds none.
	writerDone chan struct{}
	reason     error // why the member leaves; nil while it is live
	pingTimer  *time.Timer
	// pings counts the pings sent; pingOut is the one awaiting its pong, 0
	// if none, and nextPing when the next is due (keepalive.go).
	pings, pingOut uint64
	nextPing       time.Time
	wg             sync.WaitGroup // the writer, closer and ping goroutines
}

// ID returns the member's number, unique within its room and increasing in
// the order members connected.
func (m *Member) ID() uint64 { return m.id }

// Nickname returns the member's nickname.
func (m *Member) Nickname() string { return m.nickname }

// ClientIP returns the client's IP address as resolved by WithClientIP.
func (m *Member) ClientIP() string { return m.clientIP }

// Room returns the member's room: in a Registry, its Name tells which.
func (m *Member) Room() *Room { return m.room }

// String returns "nickname#id", for logs.
func (m *Member) String() string { return m.nickname + "#" + strconv.FormatUint(m.id, 10) }

// Send queues msg for this member only, as the tutorial's
// send_personal_message. It never waits for the member's socket. It returns
// ErrMemberLeft once the member is leaving (also when this message would
// overflow its queue, which disconnects it with ErrQueueOverflow).
func (m *Member) Send(ctx context.Context, msg Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rm := m.room
	if !rm.cfg.stamps() {
		if !rm.queueLocked(rm.encode(msg), []*Member{m}) {
			return ErrMemberLeft
		}
		return nil
	}
	if msg.Type == "" {
		msg.Type = TypeDirect
		if msg.To == "" {
			msg.To = m.nickname
		}
	}
	// Under the room lock, so that the frame's ID keeps the room's order.
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.stampOwnLocked(&msg, m)
	if !rm.queueLocked(rm.encode(msg), []*Member{m}) {
		return ErrMemberLeft
	}
	return nil
}

// Close disconnects the member with the given close status and reason (at
// most 123 bytes; longer is cut). It returns at once; the member leaves with
// a reason wrapping ErrRefused once its goroutines have finished.
func (m *Member) Close(code websocket.StatusCode, reason string) {
	m.leave(cause(ErrRefused, code, truncateReason(reason), nil))
}

// leave records why the member leaves, if nothing has yet, and closes its
// connection on a goroutine of its own. It never blocks.
func (m *Member) leave(reason error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaveLocked(reason)
}

func (m *Member) leaveLocked(reason error) {
	if !m.setReasonLocked(reason) {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.closeConn(reason)
	}()
}

// setReasonLocked records reason if the member was live and reports whether
// it did. The first reason wins.
func (m *Member) setReasonLocked(reason error) bool {
	if m.reason != nil {
		return false
	}
	m.reason = reason
	m.closing.Store(true)
	m.resumeReadsLocked(true)
	if code, _ := closeFrame(reason); code == 0 || errors.Is(reason, ErrSlowConsumer) || errors.Is(reason, ErrPingTimeout) {
		m.abort.Store(true)
	}
	m.cancel()
	return true
}

// closeConn starts closing the connection as reason calls for: with no
// close frame, it drops the connection; otherwise it writes the close
// frame, after the messages already queued unless the member is aborted,
// so that it sees everything broadcast before its close. Everything, the
// queue's last writes, the close frame and the reads the member's reader
// goes on discarding until the client answers, ends by the close timeout.
func (m *Member) closeConn(reason error) {
	code, text := closeFrame(reason)
	if code == 0 || !m.deadlines {
		// Without deadlines nothing would bound the handshake.
		_ = m.conn.CloseNow()
		return
	}
	m.sock.StartClosing()
	m.mu.Lock()
	for m.writing {
		if m.writerDone == nil {
			m.writerDone = make(chan struct{})
		}
		done := m.writerDone
		m.mu.Unlock()
		<-done
		m.mu.Lock()
	}
	m.mu.Unlock()
	if err := m.sock.WriteClose(code, text); err != nil {
		_ = m.conn.CloseNow()
	}
}

// reap collects what is left of a member that has been removed from the
// room, or never joined: it reads what the client still sends until its
// close frame (discardReads), stops everything that could start another of
// the member's goroutines and waits for the running ones, then ends the
// connection. Only the member's own goroutine calls it.
func (m *Member) reap() {
	m.discardReads()
	m.mu.Lock()
	m.reaped = true
	if m.pingTimer != nil {
		m.pingTimer.Stop()
	}
	m.mu.Unlock()
	m.wg.Wait()
	_ = m.conn.CloseNow()
	m.sock.Finish()
}

// leaveReason returns why the member left.
func (m *Member) leaveReason() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reason
}

// leaveNow is leave for the member's own goroutine: it closes the
// connection inline, since blocking here delays no one else.
func (m *Member) leaveNow(reason error) {
	m.mu.Lock()
	won := m.setReasonLocked(reason)
	m.mu.Unlock()
	if won {
		m.closeConn(reason)
	}
}
