// Package framequeue is a member's queue of encoded frames: see Queue.
package framequeue

import "sync"

// Queue is a member's queue of encoded frames, oldest first: a list of
// fixed-size chunks from a pool of the room's. Appending never copies the queue,
// so a broadcast allocates nothing per member however far behind the member
// is, and an idle member holds no chunk.
type Queue struct {
	head, tail *chunk
	// Len and Bytes count the frames and their total size.
	Len, Bytes int
}

// chunkFrames is the number of frames in a chunk: a chunk is 1.5 KiB.
const chunkFrames = 64

// chunk holds chunkFrames frames; a pool of the room's keeps them.
type chunk struct {
	frames [chunkFrames][]byte
	n      int
	next   *chunk
}

// Push appends frame, taking a chunk from pool when the last one is full.
func (q *Queue) Push(frame []byte, pool *sync.Pool) {
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
	q.Len++
	q.Bytes += len(frame)
}

// Release empties q and returns its chunks to pool.
func (q *Queue) Release(pool *sync.Pool) {
	for c := q.head; c != nil; {
		next := c.next
		clear(c.frames[:c.n]) // drop references to frames others may still hold
		c.n, c.next = 0, nil
		pool.Put(c)
		c = next
	}
	*q = Queue{}
}

// Cursor returns a function that returns q's frames one by one, oldest
// first, for a caller that takes them one at a time; it must not be called
// more than q.Len times.
func (q *Queue) Cursor() func() []byte {
	c, k := q.head, 0
	return func() []byte {
		if k == c.n {
			c, k = c.next, 0
		}
		k++
		return c.frames[k-1]
	}
}
