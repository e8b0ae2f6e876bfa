package chatroom

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	conn     *websocket.Conn
	netConn  net.Conn // the hijacked connection; nil if unknown
	// deadlines: netConn takes deadlines, so writes need no context timer.
	deadlines bool
	ctx       context.Context
	cancel    context.CancelFunc
	limiter   *rate.Limiter // nil without WithRateLimit
	index     int           // position in room.members, guarded by room.mu; -1 outside

	// abort tells the writer to stop between frames without taking mu: the
	// member leaves for a reason that makes its queue worthless (it is too
	// slow, or its connection is gone).
	abort atomic.Bool
	// closing mirrors reason != nil, for the writer.
	closing atomic.Bool

	mu          sync.Mutex // guards the fields below; never held while calling out
	queue       [][]byte   // encoded frames waiting for the writer, oldest first
	spare       [][]byte   // the writer's last batch, reused for the next queue
	queuedMsgs  int        // frames queued or being written
	queuedBytes int
	writing     bool       // a writer goroutine is running
	writerDone  *sync.Cond // signalled when writing becomes false
	reason      error      // why the member leaves; nil while it is live
	reaped      bool       // the member's goroutine is collecting the others: start no more
	pingTimer   *time.Timer
	wg          sync.WaitGroup // the writer, closer and ping goroutines
}

// ID returns the member's number, unique within its room and increasing in
// the order members connected.
func (m *Member) ID() uint64 { return m.id }

// Nickname returns the member's nickname.
func (m *Member) Nickname() string { return m.nickname }

// ClientIP returns the client's IP address as resolved by WithClientIP.
func (m *Member) ClientIP() string { return m.clientIP }

// String returns "nickname#id", for logs.
func (m *Member) String() string { return m.nickname + "#" + strconv.FormatUint(m.id, 10) }

// Send queues msg for this member only, as the tutorial's
// send_personal_message. It never waits for the member's socket. It returns
// ErrMemberLeft once the member is leaving (also when this message would
// overflow its queue, which disconnects it as a slow consumer).
func (m *Member) Send(ctx context.Context, msg Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !m.enqueue(msg.appendJSON(make([]byte, 0, msg.encodedLen()))) {
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

const reasonTooSlow = "too slow"

var (
	errQueueFull    = errors.New("send queue full")
	errWriteTimeout = errors.New("write timed out")
)

// enqueue appends an encoded frame to the member's queue and makes sure a
// writer is running. It never blocks: the broadcaster calls it with the room
// lock held. A member whose queue is full is disconnected instead.
func (m *Member) enqueue(frame []byte) bool {
	cfg := &m.room.cfg
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reason != nil {
		return false
	}
	if m.queuedMsgs > 0 && (m.queuedMsgs >= cfg.queueMessages || m.queuedBytes+len(frame) > cfg.queueBytes) {
		m.leaveLocked(cause(ErrSlowConsumer, websocket.StatusPolicyViolation, reasonTooSlow, errQueueFull))
		return false
	}
	m.queue = append(m.queue, frame)
	m.queuedMsgs++
	m.queuedBytes += len(frame)
	if !m.writing {
		// The writer exists only while there is something to write, so an
		// idle member costs no goroutine beyond its reader.
		m.writing = true
		m.wg.Add(1)
		go m.writeLoop()
	}
	return true
}

// writeLoop drains the queue batch by batch until it is empty or the member
// is leaving.
func (m *Member) writeLoop() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		if len(m.queue) == 0 || m.abort.Load() {
			m.stopWritingLocked()
			m.mu.Unlock()
			return
		}
		batch := m.queue
		m.queue, m.spare = m.spare, nil
		m.mu.Unlock()

		n, err := m.writeBatch(batch)

		m.mu.Lock()
		m.queuedMsgs -= len(batch)
		m.queuedBytes -= n
		clear(batch) // drop references to frames others may still hold
		if cap(batch) <= 64 {
			m.spare = batch[:0]
		}
		if err == nil && m.reason == nil && m.deadlines {
			// Clear the deadline so that pongs and close frames the
			// connection writes on its own later are not cut short by it.
			_ = m.netConn.SetWriteDeadline(time.Time{})
		}
		m.mu.Unlock()

		if err != nil {
			m.leave(writeFailure(err))
			m.mu.Lock()
			m.stopWritingLocked()
			m.mu.Unlock()
			return
		}
	}
}

func (m *Member) stopWritingLocked() {
	m.writing = false
	m.writerDone.Broadcast()
}

// writeBatch writes frames in order and returns how many bytes they held.
func (m *Member) writeBatch(batch [][]byte) (int, error) {
	n := 0
	for _, f := range batch {
		n += len(f)
	}
	for _, f := range batch {
		if m.abort.Load() {
			return n, nil
		}
		if err := m.writeFrame(f); err != nil {
			return n, err
		}
	}
	return n, nil
}

// writeFrame writes one text frame within the write timeout or, once the
// member is closing, within the close timeout. A deadline on the hijacked
// connection costs nothing per write; a context with a timeout, the fallback,
// allocates a timer each time.
func (m *Member) writeFrame(f []byte) error {
	closing := m.closing.Load()
	if m.deadlines {
		if !closing { // closeConn has set the close deadline
			_ = m.netConn.SetWriteDeadline(time.Now().Add(m.room.cfg.writeTimeout))
		}
		return m.conn.Write(context.Background(), websocket.MessageText, f)
	}
	timeout := m.room.cfg.writeTimeout
	if closing {
		timeout = m.room.cfg.closeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return m.conn.Write(ctx, websocket.MessageText, f)
}

// writeFailure turns a failed write into a leave reason.
func writeFailure(err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return cause(ErrSlowConsumer, websocket.StatusPolicyViolation, reasonTooSlow, errWriteTimeout)
	}
	return cause(ErrClientClosed, 0, "", err)
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
	if code, _ := closeFrame(reason); code == 0 || errors.Is(reason, ErrSlowConsumer) || errors.Is(reason, ErrPingTimeout) {
		m.abort.Store(true)
	}
	m.cancel()
	return true
}

// closeConn closes the connection as reason calls for, within the close
// timeout. Unless the member is aborted, the messages already queued for it
// are written first, so that it sees everything broadcast before its close.
func (m *Member) closeConn(reason error) {
	code, text := closeFrame(reason)
	if code == 0 {
		_ = m.conn.CloseNow()
		return
	}
	if m.deadlines {
		// Bounds the queue's last writes, the close frame's write and the
		// wait for the client's answer, which the reader is blocked on.
		_ = m.netConn.SetDeadline(time.Now().Add(m.room.cfg.closeTimeout))
	}
	m.mu.Lock()
	for m.writing {
		m.writerDone.Wait()
	}
	m.mu.Unlock()
	_ = m.conn.Close(code, text)
}

// startKeepalive arms the first ping.
func (m *Member) startKeepalive() {
	if m.room.cfg.pingInterval <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.reaped {
		m.pingTimer = time.AfterFunc(m.room.cfg.pingInterval, m.ping)
	}
}

// ping runs on the timer's goroutine: it pings once and re-arms the timer.
func (m *Member) ping() {
	m.mu.Lock()
	if m.reaped || m.reason != nil {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()

	// Not derived from m.ctx: a context that ends during a write makes
	// coder/websocket drop the connection without a close frame, and the
	// member's context ends as soon as it starts leaving.
	ctx, cancel := context.WithTimeout(context.Background(), m.room.cfg.pongTimeout)
	err := m.conn.Ping(ctx)
	cancel()
	if err != nil {
		// The peer is unresponsive: a close handshake would only wait for
		// an answer that will not come.
		m.leave(cause(ErrPingTimeout, 0, "", err))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.reaped {
		m.pingTimer.Reset(m.room.cfg.pingInterval)
	}
}

// reap stops everything that could start another goroutine for this member
// and waits for the running ones. Only the member's own goroutine calls it,
// after the member has been removed from the room.
func (m *Member) reap() {
	m.mu.Lock()
	m.reaped = true
	if m.pingTimer != nil {
		m.pingTimer.Stop()
	}
	m.mu.Unlock()
	m.wg.Wait()
	_ = m.conn.CloseNow()
}

// leaveReason returns why the member left.
func (m *Member) leaveReason() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reason
}

// stop is leave for the member's own goroutine: it closes the connection
// inline, since blocking here delays no one else.
func (m *Member) stop(reason error) {
	m.mu.Lock()
	won := m.setReasonLocked(reason)
	m.mu.Unlock()
	if won {
		m.closeConn(reason)
	}
}
