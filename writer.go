package chatroom

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/coder/websocket"
)

// The outbound path of a member: a queue bounded by count and bytes, filled by
// the broadcaster without ever blocking, and drained by a writer goroutine
// that exists only while the queue is not empty.

const reasonTooSlow = "too slow"

var (
	errQueueFull    = errors.New("send queue full")
	errWriteTimeout = errors.New("write timed out")
)

// enqueue appends an encoded frame to the member's queue and makes sure a
// writer is running. It never blocks: the broadcaster calls it with the room
// lock held. A member whose queue is full is disconnected instead.
func (m *Member) enqueue(frame []byte) bool {
	return m.enqueueFrame(frame, true)
}

// enqueueUnbounded queues a frame that does not count against the queue's
// bounds: history, whose size the store already bounds.
func (m *Member) enqueueUnbounded(frame []byte) bool {
	return m.enqueueFrame(frame, false)
}

func (m *Member) enqueueFrame(frame []byte, bounded bool) bool {
	cfg := &m.room.cfg
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reason != nil {
		return false
	}
	if bounded && m.queuedMsgs > 0 && (m.queuedMsgs >= cfg.queueMessages || m.queuedBytes+len(frame) > cfg.queueBytes) {
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
