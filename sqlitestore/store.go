package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/seed014c2c51/chatroom"
)

// maxLost bounds the IDs a Store remembers as not written, for Flush.
const maxLost = 1024

// Store is the chatroom.Store of one room in a DB: its recent frames in
// memory, every frame in the database. Open it with DB.Room and give it to
// one room (chatroom.History.Store). It is safe for concurrent use.
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
	lost    []uint64      // IDs not written, ascending, at most maxLost
	lostErr error         // why the last of them was not
	changed chan struct{} // closed and replaced when written or lost change
}

var _ chatroom.Store = (*Store)(nil)

// frameColumns are the columns scan reads.
const frameColumns = `id, type, time, nickname, text`

// load reads the room's span and its window from the database.
func (s *Store) load(ctx context.Context) error {
	var first, last, cut int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT first_id, last_id, trimmed_id FROM rooms WHERE name = ?`, s.name).Scan(&first, &last, &cut)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	s.first, s.last, s.written, s.cut = uint64(first), uint64(last), uint64(last), uint64(cut)
	notExpired := int64(math.MinInt64)
	if s.keep.Age > 0 {
		notExpired = time.Now().Add(-s.keep.Age).UnixNano()
	}
	// One message more than the window holds, so that the window knows
	// that older ones exist and reports a since before them incomplete.
	chat, err := s.query(ctx, `SELECT `+frameColumns+` FROM frames WHERE room = ? AND type IN ('message', 'system') AND time >= ? ORDER BY id DESC LIMIT ?`,
		s.name, notExpired, s.db.opts.Window+1)
	if err != nil {
		return err
	}
	notices, err := s.query(ctx, `SELECT `+frameColumns+` FROM frames WHERE room = ? AND type IN ('join', 'leave') AND time >= ? ORDER BY id DESC LIMIT ?`,
		s.name, notExpired, s.db.opts.Window)
	if err != nil {
		return err
	}
	all := append(chat, notices...)
	slices.SortFunc(all, func(a, b chatroom.Message) int { return cmp.Compare(a.ID, b.ID) })
	for _, m := range all {
		s.window.Append(m)
	}
	return nil
}

// query returns the frames a query of frameColumns selects, in its order.
func (s *Store) query(ctx context.Context, q string, args ...any) ([]chatroom.Message, error) {
	rows, err := s.db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []chatroom.Message
	for rows.Next() {
		var id, t int64
		var typ string
		var m chatroom.Message
		if err := rows.Scan(&id, &typ, &t, &m.Nickname, &m.Text); err != nil {
			return nil, err
		}
		m.ID, m.Type, m.Time = uint64(id), chatroom.MessageType(typ), time.Unix(0, t).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

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
		s.db.log.Warn("sqlitestore: frame not written: queue full or closed", "room", s.name, "id", msg.ID)
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
	if more {
		return recent, true, nil
	}
	from := before
	if len(recent) > 0 {
		from = recent[0].ID
	}
	if from == 0 {
		from = math.MaxInt64
	}
	need := limit - len(recent)
	older, err := s.query(ctx, `SELECT `+frameColumns+` FROM frames WHERE room = ? AND id < ? AND type IN ('message', 'system') ORDER BY id DESC LIMIT ?`,
		s.name, int64(from), need+1)
	if err != nil {
		return nil, false, fmt.Errorf("sqlitestore: room %q: scrollback: %w", s.name, err)
	}
	more = len(older) > need
	older = older[:min(need, len(older))]
	slices.Reverse(older)
	return append(older, recent...), more, nil
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
			return fmt.Errorf("%w: room %q, frame %d: %w", ErrNotWritten, s.name, id, err)
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
			return fmt.Errorf("sqlitestore: room %q, frame %d: %w", s.name, id, ctx.Err())
		}
	}
}

// Span implements chatroom.Store: what the database kept of the room, and
// what was appended since.
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
