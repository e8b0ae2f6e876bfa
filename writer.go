package chatroom

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/seed014c2c51/chatroom/internal/framequeue"
	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
)

// The outbound path of a member: a queue bounded by count and bytes, filled by
// the broadcaster without ever blocking, and drained by a writer goroutine
// that exists only while the queue is not empty.

const reasonTooSlow = "too slow"

// errWriteTimeout is the error of a flush that the fallback timer cut
// short.
var errWriteTimeout = errors.New("write timed out")

// replayLocked queues the history m receives on joining: it goes out after
// the frames queued so far and before any queued later. The messages are
// encoded only as the writer reaches them, a batch at a time, so that a
// joiner that does not read holds the history's messages, which the store
// shares, and never their frames. They count against the queue's message
// bound. rm.mu is held, so that no frame is queued between the history and
// m joining.
func (m *Member) replayLocked(msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reason != nil {
		return
	}
	m.beforeReplay, m.queue = m.queue, framequeue.Queue{}
	m.replay = msgs
	m.queuedMsgs += len(msgs)
	m.startWriterLocked()
}

// enqueueFrame appends an encoded frame to the member's queue and makes
// sure a writer is running, and returns the bytes now queued, or -1 if it
// did not queue it. It never blocks: the broadcaster calls it with the room
// lock held. A member whose queue is full is disconnected instead.
func (m *Member) enqueueFrame(frame []byte) int {
	cfg := &m.room.cfg
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reason != nil {
		return -1
	}
	if m.queuedMsgs > 0 && (m.queuedMsgs >= cfg.queueMessages || m.queuedBytes+len(frame) > cfg.queueBytes) {
		m.leaveLocked(cause(ErrQueueOverflow, websocket.StatusPolicyViolation, reasonTooSlow, nil))
		return -1
	}
	m.queue.Push(frame, &m.room.chunks)
	m.queuedMsgs++
	m.queuedBytes += len(frame)
	m.startWriterLocked()
	return m.queuedBytes
}

// startWriterLocked starts the writer unless it runs. The writer exists only
// while there is something to write, so an idle member costs no goroutine
// beyond its reader. m.mu is held.
func (m *Member) startWriterLocked() {
	if !m.writing {
		m.writing = true
		m.wg.Add(1)
		go m.startWriter()
	}
}

// writeLoop drains the queue batch by batch until it is empty or the member
// is leaving.
func (m *Member) writeLoop() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		var batch framequeue.Queue
		var replay []Message
		switch {
		case m.abort.Load():
		case m.beforeReplay.Len > 0:
			batch, m.beforeReplay = m.beforeReplay, framequeue.Queue{}
		case len(m.replay) > 0:
			replay, m.replay = m.replay, nil
		default:
			batch, m.queue = m.queue, framequeue.Queue{}
		}
		if batch.Len == 0 && replay == nil {
			m.stopWritingLocked()
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()

		var err error
		count, n := batch.Len, batch.Bytes
		if replay != nil {
			err, count = m.writeReplay(replay), len(replay)
		} else {
			err = m.writeBatch(&batch)
			batch.Release(&m.room.chunks)
		}

		m.mu.Lock()
		m.queuedMsgs -= count
		m.queuedBytes -= n
		m.resumeReadsLocked(false)
		if err == nil && m.reason == nil && m.deadlines {
			// Clear the deadline so that pongs and close frames the
			// connection writes on its own later are not cut short by it.
			_ = m.sock.SetWriteDeadline(time.Time{})
		}
		m.mu.Unlock()

		if err != nil {
			if writeTimedOut(err) {
				m.leave(cause(ErrWriteTimeout, websocket.StatusPolicyViolation, reasonTooSlow, err))
			} else {
				// The connection is gone, most often because the client
				// closed it. The reader reports why, with the client's
				// close status if it sent one; a leave reason recorded
				// here would win the race and lose that status.
				m.abort.Store(true)
				_ = m.conn.CloseNow()
			}
			m.mu.Lock()
			m.stopWritingLocked()
			m.mu.Unlock()
			return
		}
	}
}

func (m *Member) stopWritingLocked() {
	m.writing = false
	m.resumeReadsLocked(true)
	// An idle member holds no queue chunk and no batch buffer: they go back
	// to the room's pools.
	m.queue.Release(&m.room.chunks)
	m.beforeReplay.Release(&m.room.chunks)
	m.replay = nil
	m.sock.ReleaseBatch()
	if m.writerDone != nil {
		close(m.writerDone)
		m.writerDone = nil
	}
}

// writeBatch writes the frames of batch in order.
func (m *Member) writeBatch(batch *framequeue.Queue) error {
	next := batch.Cursor()
	return m.writeEach(batch.Len, func(s *socket.Socket) (int, error) {
		// This copies the frame into the held batch: it does not wait
		// for the network.
		return s.AppendFrame(next())
	})
}

// writeReplay writes the history messages of replayLocked, each encoded
// straight into the held batch, or, for a member that negotiated
// permessage-deflate, encoded and compressed on its own, as every frame.
func (m *Member) writeReplay(msgs []Message) error {
	i := 0
	rm := m.room
	deflate := m.deflate && rm.deflater != nil
	return m.writeEach(len(msgs), func(s *socket.Socket) (int, error) {
		msg := msgs[i]
		i++
		if deflate {
			out := rm.newOutFrame(rm.encode(msg))
			return s.AppendFrame(out.forMember(m))
		}
		return s.AppendMessage(func(b []byte) []byte { return rm.appendPayload(b, msg) })
	})
}

// writeEach writes n frames, each added to the held batch by add, which
// returns the batch's size. The socket is held meanwhile, so that the frames
// reach the network in as few writes as socket.MaxBatch allows, usually one.
func (m *Member) writeEach(n int, add func(*socket.Socket) (int, error)) error {
	s := m.sock
	s.Hold()
	for range n {
		if m.abort.Load() {
			s.Discard()
			return nil
		}
		held, err := add(s)
		if err != nil {
			s.Discard()
			return err
		}
		if held >= socket.MaxBatch {
			if err := m.flush(); err != nil {
				return err
			}
			s.Hold()
		}
	}
	return m.flush()
}

// flush writes the held batch within the write timeout or, once the member
// is closing, within the close timeout. A deadline on the connection costs
// nothing per write; the fallback, a timer that closes the connection,
// costs an allocation per flush.
func (m *Member) flush() error {
	closing := m.closing.Load()
	if m.deadlines {
		if !closing { // closeConn has set the close deadline
			_ = m.sock.SetWriteDeadline(time.Now().Add(m.room.cfg.writeTimeout))
		}
		return m.sock.Flush()
	}
	timeout := m.room.cfg.writeTimeout
	if closing {
		timeout = m.room.cfg.closeTimeout
	}
	t := time.AfterFunc(timeout, func() { _ = m.sock.Conn.Close() })
	err := m.sock.Flush()
	if !t.Stop() {
		return errWriteTimeout
	}
	return err
}

// writeTimedOut reports whether a failed write ran out of time.
func writeTimedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, errWriteTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
