package durable

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/seed014c2c51/chatroom"
)

// maxLost bounds the IDs a Store remembers as not written, for Flush.
const maxLost = 1024

// Store is the chatroom.DatabaseStore of one room in a DB: its recent
// frames in memory, every frame in the database.
type Store struct {
	db     *DB
	name   string
	keep   Retention
	window *chatroom.MemoryStore // the recent frames, for Since

	mu      sync.Mutex
	first   uint64        // Span
	last    uint64        // Span
	written uint64        // the greatest ID committed
	cut     uint64        // the greatest ID retention had deleted when the window was loaded
	floor   uint64        // the greatest ID Fill wrote: the window may lack frames up to it
	lost    []uint64      // IDs not written, ascending, at most maxLost
	lostErr error         // why the last of them was not
	changed chan struct{} // closed and replaced when written or lost change
}

var _ chatroom.DatabaseStore = (*Store)(nil)

// Append implements chatroom.Store: it keeps msg in the window and queues
// it for the writer, without waiting.
func (s *Store) Append(msg chatroom.Message) {
	s.window.Append(msg)
	s.mu.Lock()
	if s.first == 0 {
		s.first = msg.ID
	}
	s.last = msg.ID
	s.mu.Unlock()
	if !s.db.enqueue(s, msg) {
		s.db.dropped.Add(1)
		s.db.log.Warn(s.db.opts.Name+": frame not written: queue full or closed", "room", s.name, "id", msg.ID)
		s.lose(msg.ID, fmt.Errorf("queue full or closed (%d frames)", s.db.opts.QueueLen))
	}
}

// Since implements chatroom.Store, from the window. A since before frames
// that retention had deleted when the window was loaded is incomplete.
func (s *Store) Since(after uint64) ([]chatroom.Message, bool) {
	msgs, complete := s.window.Since(after)
	s.mu.Lock()
	defer s.mu.Unlock()
	return msgs, complete && after >= s.cut
}

// Before implements chatroom.Store: from the window, then the database.
func (s *Store) Before(ctx context.Context, before uint64, limit int) ([]chatroom.Message, bool, error) {
	recent, more, _ := s.window.Before(ctx, before, limit)
	s.mu.Lock()
	floor := s.floor
	s.mu.Unlock()
	// Up to floor the window may lack frames that Fill wrote: those come
	// from the database.
	i := sort.Search(len(recent), func(i int) bool { return recent[i].ID > floor })
	if i == 0 && more {
		return recent, true, nil
	}
	recent = recent[i:]
	from := before
	if len(recent) > 0 {
		from = recent[0].ID
	}
	if from == 0 {
		from = math.MaxInt64
	}
	need := limit - len(recent)
	older, err := s.db.be.Older(ctx, s.name, from, need+1)
	if err != nil {
		return nil, false, fmt.Errorf("%s: room %q: scrollback: %w", s.db.opts.Name, s.name, err)
	}
	more = len(older) > need
	older = older[:min(need, len(older))]
	slices.Reverse(older)
	return append(older, recent...), more, nil
}

// After implements chatroom.DatabaseStore: at most limit frames after the
// ID after, from the database once the writer has written what was queued
// so far (appended or filled), so that they meet the window; complete is false if retention had deleted
// some of them.
func (s *Store) After(ctx context.Context, after uint64, limit int) ([]chatroom.Message, bool, error) {
	if err := s.db.barrier(ctx); err != nil && ctx.Err() != nil {
		return nil, false, err
	}
	msgs, trimmed, err := s.db.be.Newer(ctx, s.name, after, limit)
	if err != nil {
		return nil, false, fmt.Errorf("%s: room %q: resume: %w", s.db.opts.Name, s.name, err)
	}
	return msgs, after >= trimmed, nil
}

// Fill implements chatroom.DatabaseStore: it queues msgs for the writer,
// which keeps a frame the database has already once, waiting within ctx
// for room in the queue. They are not in the window, so scrollback reads
// the database up to the last of them.
func (s *Store) Fill(ctx context.Context, msgs []chatroom.Message) error {
	for _, msg := range msgs {
		if err := s.db.push(ctx, op{st: s, msg: msg}); err != nil {
			return err
		}
		s.mu.Lock()
		s.floor = max(s.floor, msg.ID)
		s.mu.Unlock()
	}
	return nil
}

// Flush implements chatroom.Store: it waits until the frame id is
// committed, and returns an error wrapping ErrNotWritten if it will not be.
func (s *Store) Flush(ctx context.Context, id uint64) error {
	for {
		s.mu.Lock()
		i := sort.Search(len(s.lost), func(i int) bool { return s.lost[i] >= id })
		if i < len(s.lost) && s.lost[i] == id {
			err := s.lostErr
			s.mu.Unlock()
			return fmt.Errorf("%w: %s: room %q, frame %d: %w", ErrNotWritten, s.db.opts.Name, s.name, id, err)
		}
		if s.written >= id {
			s.mu.Unlock()
			return nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%s: room %q, frame %d: %w", s.db.opts.Name, s.name, id, ctx.Err())
		}
	}
}

// Span implements chatroom.Store: what the database kept of the room when
// the Store was opened, and what was appended since.
func (s *Store) Span() (first, last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.last
}

// wrote records that the frames up to id are committed.
func (s *Store) wrote(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written = max(s.written, id)
	s.notifyLocked()
}

// lose records that frame id will not be written, and why.
func (s *Store) lose(id uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.lost), func(i int) bool { return s.lost[i] >= id })
	if i == len(s.lost) || s.lost[i] != id {
		s.lost = slices.Insert(s.lost, i, id)
	}
	if len(s.lost) > maxLost {
		s.lost = slices.Delete(s.lost, 0, len(s.lost)-maxLost)
	}
	s.lostErr = err
	s.notifyLocked()
}

func (s *Store) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}
