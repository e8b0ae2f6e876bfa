package chatroom

import (
	"context"
	"errors"
	"net"
	"sync"
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
	m.queue.push(frame, &m.room.chunks)
	m.queuedMsgs++
	m.queuedBytes += len(frame)
	if !m.writing {
		// The writer exists only while there is something to write, so an
		// idle member costs no goroutine beyond its reader.
		m.writing = true
		m.wg.Add(1)
		go m.startWriter()
	}
	return true
}

// writeLoop drains the queue batch by batch until it is empty or the member
// is leaving.
func (m *Member) writeLoop() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		if m.queue.len == 0 || m.abort.Load() {
			m.stopWritingLocked()
			m.mu.Unlock()
			return
		}
		batch := m.queue
		m.queue = frameQueue{}
		m.mu.Unlock()

		err := m.writeBatch(&batch)
		count, n := batch.len, batch.bytes
		batch.release(&m.room.chunks)

		m.mu.Lock()
		m.queuedMsgs -= count
		m.queuedBytes -= n
		if err == nil && m.reason == nil && m.deadlines {
			// Clear the deadline so that pongs and close frames the
			// connection writes on its own later are not cut short by it.
			_ = m.sock.SetWriteDeadline(time.Time{})
		}
		m.mu.Unlock()

		if err != nil {
			if writeTimedOut(err) {
				m.leave(cause(ErrSlowConsumer, websocket.StatusPolicyViolation, reasonTooSlow, errWriteTimeout))
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
	// An idle member holds no queue chunk and no batch buffer: they go back
	// to the room's pools.
	m.queue.release(&m.room.chunks)
	m.sock.releaseBatch()
	m.writerDone.Broadcast()
}

// frameQueue is a member's queue of encoded frames, oldest first: a list of
// fixed-size chunks from the room's pool. Appending never copies the queue,
// so a broadcast allocates nothing per member however far behind the member
// is, and an idle member holds no chunk.
type frameQueue struct {
	head, tail *chunk
	len        int // frames
	bytes      int // their total size
}

// chunkFrames is the number of frames in a chunk: a chunk is 1.5 KiB.
const chunkFrames = 64

type chunk struct {
	frames [chunkFrames][]byte
	n      int
	next   *chunk
}

// push appends frame, taking a chunk from pool when the last one is full.
func (q *frameQueue) push(frame []byte, pool *sync.Pool) {
	if q.tail == nil || q.tail.n == chunkFrames {
		c, ok := pool.Get().(*chunk)
		if !ok {
			c = new(chunk)
		}
		if q.tail == nil {
			q.head = c
		} else {
			q.tail.next = c
		}
		q.tail = c
	}
	q.tail.frames[q.tail.n] = frame
	q.tail.n++
	q.len++
	q.bytes += len(frame)
}

// release empties q and returns its chunks to pool.
func (q *frameQueue) release(pool *sync.Pool) {
	for c := q.head; c != nil; {
		next := c.next
		clear(c.frames[:c.n]) // drop references to frames others may still hold
		c.n, c.next = 0, nil
		pool.Put(c)
		c = next
	}
	*q = frameQueue{}
}

// writeBatch writes the frames of batch in order. The socket is held
// meanwhile, so that the frames reach the network in as few writes as
// maxBatch allows, usually one.
func (m *Member) writeBatch(batch *frameQueue) error {
	s := m.sock
	s.hold()
	for c := batch.head; c != nil; c = c.next {
		for _, f := range c.frames[:c.n] {
			if m.abort.Load() {
				s.discard()
				return nil
			}
			// This copies the frame into the held batch: it does not
			// wait for the network.
			held, err := s.appendFrame(f)
			if err != nil {
				s.discard()
				return err
			}
			if held >= maxBatch {
				if err := m.flush(); err != nil {
					return err
				}
				s.hold()
			}
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

// writeTimedOut reports whether a failed write ran out of time.
func writeTimedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, errWriteTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
