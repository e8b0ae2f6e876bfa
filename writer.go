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
	if m.queue == nil {
		m.queue = m.room.getQueue()
	}
	m.queue.frames = append(m.queue.frames, frame)
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
		if m.queue == nil || len(m.queue.frames) == 0 || m.abort.Load() {
			m.stopWritingLocked()
			m.mu.Unlock()
			return
		}
		batch := m.queue
		m.queue, m.spare = m.spare, nil
		m.mu.Unlock()

		n, err := m.writeBatch(batch.frames)

		m.mu.Lock()
		m.queuedMsgs -= len(batch.frames)
		m.queuedBytes -= n
		m.spare = batch
		m.room.recycleQueue(&m.spare) // a full batch goes back to the pool
		if err == nil && m.reason == nil && m.deadlines {
			// Clear the deadline so that pongs and close frames the
			// connection writes on its own later are not cut short by it.
			_ = m.sock.SetWriteDeadline(time.Time{})
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
	// An idle member holds no queue: they go back to the room's pool.
	m.room.putQueue(&m.queue)
	m.room.putQueue(&m.spare)
	m.sock.releaseBatch()
	m.writerDone.Broadcast()
}

// frameQueue is a member's queue of encoded frames. Queues are pooled by the
// room and held by a member only while its writer runs, so that idle members
// cost nothing and busy ones rarely allocate.
type frameQueue struct {
	frames [][]byte // oldest first
}

// maxPooledQueue bounds the queues kept for reuse, in frames.
const maxPooledQueue = 1024

func (rm *Room) getQueue() *frameQueue {
	if q, ok := rm.queues.Get().(*frameQueue); ok {
		return q
	}
	return &frameQueue{frames: make([][]byte, 0, 16)}
}

// putQueue empties *q, returns it to the pool and sets *q to nil.
func (rm *Room) putQueue(q **frameQueue) {
	if *q == nil {
		return
	}
	clear((*q).frames) // drop references to frames others may still hold
	(*q).frames = (*q).frames[:0]
	if cap((*q).frames) <= maxPooledQueue {
		rm.queues.Put(*q)
	}
	*q = nil
}

// recycleQueue empties *q for reuse by the same member, or hands it back to
// the pool if it grew too big to keep.
func (rm *Room) recycleQueue(q **frameQueue) {
	if cap((*q).frames) > 64 {
		rm.putQueue(q)
		return
	}
	clear((*q).frames)
	(*q).frames = (*q).frames[:0]
}

// writeBatch writes frames in order and returns how many bytes they held.
// The socket is held meanwhile, so that the frames reach the network in as
// few writes as maxBatch allows, usually one.
func (m *Member) writeBatch(batch [][]byte) (int, error) {
	n := 0
	for _, f := range batch {
		n += len(f)
	}
	s := m.sock
	s.hold()
	for _, f := range batch {
		if m.abort.Load() {
			s.discard()
			return n, nil
		}
		// This copies the frame into the held batch: it does not wait for
		// the network.
		if err := m.conn.Write(context.Background(), websocket.MessageText, f); err != nil {
			s.discard()
			return n, err
		}
		if s.buffered() >= maxBatch {
			if err := m.flush(); err != nil {
				return n, err
			}
			s.hold()
		}
	}
	return n, m.flush()
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
		return m.sock.flush()
	}
	timeout := m.room.cfg.writeTimeout
	if closing {
		timeout = m.room.cfg.closeTimeout
	}
	t := time.AfterFunc(timeout, func() { _ = m.sock.Conn.Close() })
	err := m.sock.flush()
	if !t.Stop() {
		return errWriteTimeout
	}
	return err
}

// writeFailure turns a failed write into a leave reason.
func writeFailure(err error) error {
	var ne net.Error
	if errors.Is(err, errWriteTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return cause(ErrSlowConsumer, websocket.StatusPolicyViolation, reasonTooSlow, errWriteTimeout)
	}
	return cause(ErrClientClosed, 0, "", err)
}
