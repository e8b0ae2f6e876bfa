// Package durable is what the database stores of chatroom's nested modules
// (sqlitestore, pgstore) share: a room's window of recent frames in memory,
// one writer goroutine per database that batches every room's frames into
// one transaction behind a bounded queue, retention by count and by age,
// Flush, and the database reads of scrollback and resume. A Backend is the
// SQL of one database.
//
// It is an internal package of the root module, so the stores depend on
// the root at the same version: the modules of this repository are
// released together (RELEASING.md), and the stores' API is chatroom's
// Store interfaces, not this package's types.
package durable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed014c2c51/chatroom"
)

// Defaults of Options.
const (
	DefaultQueueLen = 4096
	DefaultWindow   = chatroom.DefaultHistoryLen
)

// maxBatch bounds the frames one transaction writes; TrimBatch the frames
// one age retention pass deletes from a room.
const (
	maxBatch     = 1024
	TrimBatch    = 1000
	trimInterval = time.Minute
)

// ErrNotWritten is wrapped by Flush for a frame the database did not take.
var ErrNotWritten = errors.New("chatroom store: frame not written")

// ErrClosed is returned by Room once Close has begun.
var ErrClosed = errors.New("chatroom store: closed")

// A Frame is a room's frame for the writer.
type Frame struct {
	Room string
	Msg  chatroom.Message
}

// Loaded is what a Backend reads of a room when its Store is opened.
type Loaded struct {
	First, Last uint64 // the room's span, 0 if the database has none
	Trimmed     uint64 // the greatest ID retention deleted
	// Frames are the room's newest window+1 chat and server messages and
	// window notices, not older than the age asked for, oldest first.
	Frames []chatroom.Message
}

// A Backend is the SQL of one database. Its methods are called by the
// writer goroutine (Write, TrimCount, TrimAge) and by the stores, outside
// any room's lock.
type Backend interface {
	// Load reads the room's span and its newest frames, none older than
	// notBefore (Unix nanoseconds).
	Load(ctx context.Context, room string, window int, notBefore int64) (Loaded, error)
	// Write writes frames in one transaction, keeping one row per room
	// and ID (a frame written twice, by two nodes, is kept once), and
	// raises each room's last ID.
	Write(ctx context.Context, frames []Frame) error
	// Older returns at most limit chat and server messages of room with
	// an ID below before, newest first.
	Older(ctx context.Context, room string, before uint64, limit int) ([]chatroom.Message, error)
	// Newer returns at most limit frames of room with an ID above after,
	// oldest first, and the greatest ID retention deleted.
	Newer(ctx context.Context, room string, after uint64, limit int) (msgs []chatroom.Message, trimmed uint64, err error)
	// TrimCount deletes the room's frames older than its keep newest chat
	// and server messages; TrimAge at most TrimBatch of its frames older
	// than cutoff. Each records the greatest ID it deleted.
	TrimCount(ctx context.Context, room string, keep int) error
	TrimAge(ctx context.Context, room string, cutoff time.Time) error
	// Close closes the database.
	Close() error
}

// Options configures a DB; the stores' Options map to it.
type Options struct {
	Name        string // the store's package, for errors and the log
	Window      int
	WindowBytes int
	QueueLen    int
	Logger      *slog.Logger
}

// Retention bounds what the database keeps of one room. Its zero value
// keeps everything.
type Retention struct {
	// Count is how many of the room's newest chat and server messages the
	// database keeps, with the notices between them; 0 means no bound.
	Count int
	// Age is how long the database keeps a frame; 0 means no bound.
	Age time.Duration
}

// Stats counts a database's writes since it was opened.
type Stats struct {
	Written uint64 // frames committed (a frame two nodes wrote counts on each)
	Dropped uint64 // frames not written: queue full, closed, or failed
}

// DB is one database holding the history of many rooms, and its writer.
type DB struct {
	be      Backend
	log     *slog.Logger
	opts    Options
	queue   chan op
	mu      sync.RWMutex // enqueue holds it shared; Close exclusively to end
	closed  bool
	quit    chan struct{}
	done    chan struct{}
	written atomic.Uint64
	dropped atomic.Uint64

	aged sync.Map // room name → *Store with Retention.Age, for the age passes
}

// op is a frame to write, or (st nil) a barrier that the writer closes done
// for once everything queued before it is written.
type op struct {
	st   *Store
	msg  chatroom.Message
	done chan struct{}
}

// Open fills in opts' defaults and starts be's writer goroutine.
func Open(be Backend, opts Options) (*DB, error) {
	switch {
	case opts.Window < 0 || opts.WindowBytes < 0 || opts.QueueLen < 0:
		return nil, fmt.Errorf("%s: negative bound in Options (window %d, %d bytes, queue %d)", opts.Name, opts.Window, opts.WindowBytes, opts.QueueLen)
	case opts.Window == 0:
		opts.Window = DefaultWindow
	}
	if opts.WindowBytes == 0 {
		opts.WindowBytes = chatroom.DefaultHistoryBytes
	}
	if opts.QueueLen == 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{be: be, log: opts.Logger, opts: opts, queue: make(chan op, opts.QueueLen),
		quit: make(chan struct{}), done: make(chan struct{})}
	go db.run()
	return db, nil
}

// Stats returns the database's counts.
func (db *DB) Stats() Stats {
	return Stats{Written: db.written.Load(), Dropped: db.dropped.Load()}
}

// Close writes what is queued, stops the writer and closes the database.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		<-db.done
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	close(db.quit)
	<-db.done
	if err := db.be.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", db.opts.Name, err)
	}
	return nil
}

// Room returns the Store of the room named name, its window loaded from the
// database once every frame queued before is written, so that a room
// opened again misses none.
func (db *DB) Room(ctx context.Context, name string, keep Retention) (*Store, error) {
	if keep.Count < 0 || keep.Age < 0 {
		return nil, fmt.Errorf("%s: room %q: negative retention %+v", db.opts.Name, name, keep)
	}
	if err := db.barrier(ctx); err != nil {
		return nil, err
	}
	st := &Store{db: db, name: name, keep: keep, changed: make(chan struct{}),
		window: chatroom.NewMemoryStore(db.opts.Window, db.opts.WindowBytes)}
	notBefore := int64(math.MinInt64) // Unix nanoseconds
	if keep.Age > 0 {
		notBefore = time.Now().Add(-keep.Age).UnixNano()
	}
	l, err := db.be.Load(ctx, name, db.opts.Window, notBefore)
	if err != nil {
		return nil, fmt.Errorf("%s: room %q: %w", db.opts.Name, name, err)
	}
	st.first, st.last, st.written, st.cut = l.First, l.Last, l.Last, l.Trimmed
	for _, m := range l.Frames {
		st.window.Append(m)
	}
	if keep.Age > 0 {
		db.aged.Store(name, st)
	}
	return st, nil
}

// barrier waits until the writer has written everything queued so far.
func (db *DB) barrier(ctx context.Context) error {
	done := make(chan struct{})
	if err := db.push(ctx, op{done: done}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for the queue: %w", db.opts.Name, ctx.Err())
	}
}

// push queues o, waiting within ctx for room in the queue.
func (db *DB) push(ctx context.Context, o op) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return fmt.Errorf("%s: %w", db.opts.Name, ErrClosed)
	}
	select {
	case db.queue <- o:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for the queue: %w", db.opts.Name, ctx.Err())
	}
}

// enqueue queues msg of st for the writer, without waiting, and reports
// whether it did.
func (db *DB) enqueue(st *Store, msg chatroom.Message) bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return false
	}
	select {
	case db.queue <- op{st: st, msg: msg}:
		return true
	default:
		return false
	}
}

// run is the writer goroutine: it writes what is queued in batches, and
// trims rooms by age, until Close.
func (db *DB) run() {
	defer close(db.done)
	tick := time.NewTicker(trimInterval)
	defer tick.Stop()
	batch := make([]op, 0, maxBatch)
	for {
		select {
		case o := <-db.queue:
			batch = db.fill(append(batch[:0], o))
			db.write(batch)
		case <-tick.C:
			db.trimAge()
		case <-db.quit:
			for {
				batch = db.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				db.write(batch)
			}
		}
	}
}

// fill adds to batch what is queued, up to maxBatch, without waiting.
func (db *DB) fill(batch []op) []op {
	for len(batch) < maxBatch {
		select {
		case o := <-db.queue:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// write commits batch in one transaction, then tells each store what was
// written, trims the rooms with a count retention, and releases the
// barriers.
func (db *DB) write(batch []op) {
	ctx := context.Background()
	frames := make([]Frame, 0, len(batch))
	last := make(map[*Store]uint64)
	for _, o := range batch {
		if o.st != nil {
			frames = append(frames, Frame{Room: o.st.name, Msg: o.msg})
			last[o.st] = max(last[o.st], o.msg.ID)
		}
	}
	var err error
	if len(frames) > 0 {
		err = db.be.Write(ctx, frames)
	}
	if err != nil {
		db.log.Error(db.opts.Name+": write failed", "frames", len(frames), "err", err)
		db.dropped.Add(uint64(len(frames)))
		for _, o := range batch {
			if o.st != nil {
				o.st.lose(o.msg.ID, err)
			}
		}
	} else {
		db.written.Add(uint64(len(frames)))
		for st, id := range last {
			st.wrote(id)
		}
	}
	for st := range last {
		if st.keep.Count > 0 {
			db.retain(st, db.be.TrimCount(ctx, st.name, st.keep.Count))
		}
	}
	// Barriers last: what they wait for includes the retention.
	for _, o := range batch {
		if o.done != nil {
			close(o.done)
		}
	}
}

// trimAge deletes, for every room with an age retention, at most TrimBatch
// of its frames older than that.
func (db *DB) trimAge() {
	db.aged.Range(func(_, v any) bool {
		st := v.(*Store)
		db.retain(st, db.be.TrimAge(context.Background(), st.name, time.Now().Add(-st.keep.Age)))
		return true
	})
}

// retain logs a retention pass's error.
func (db *DB) retain(st *Store, err error) {
	if err != nil {
		db.log.Error(db.opts.Name+": retention failed", "room", st.name, "err", err)
	}
}
