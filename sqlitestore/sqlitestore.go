// Package sqlitestore keeps the history of chat rooms (package chatroom) in
// one SQLite database file, so that it survives restarts: a joiner gets the
// room's last messages, a client resuming with a since from before the
// restart gets exactly what it missed, and clients scroll back as far as the
// database keeps.
//
//	db, err := sqlitestore.Open(ctx, "chat.db", sqlitestore.Options{})
//	...
//	defer db.Close()
//	st, err := db.Room(ctx, "lobby", sqlitestore.Retention{Age: 30 * 24 * time.Hour})
//	...
//	room := chatroom.New(chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{Store: st}))
//
// The driver is modernc.org/sqlite, SQLite translated to Go: no cgo, so `go
// get`, `go build` and cross-compiling need no C compiler, at a cost in
// speed that a chat does not notice (BENCHMARKS.md measures it).
//
// # Writes
//
// The room appends each frame to its Store under its lock, where nothing
// may block, so a Store keeps the room's recent frames in memory (its
// window, loaded from the database when the Store is opened) and queues the
// write for the database's one writer goroutine, which writes what is
// queued, for every room, in one transaction, and commits it durably
// (WAL, synchronous=FULL). The queue is bounded (Options.QueueLen): when
// the database is slower than the rooms for that long, Append does not
// wait, the frame is not written (it still reaches the members and the
// window), Stats counts it, the log says so, and Flush of its ID returns an
// error wrapping ErrNotWritten. With chatroom.History.Durable the room
// waits for Flush, so its publishers, not the queue, take the delay.
//
// Retention (Retention, per room) is applied by the writer goroutine too:
// by count after each batch that wrote to the room, by age once a minute, a
// bounded number of frames at a time. Neither runs under a room's lock.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed014c2c51/chatroom"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// Defaults of Options.
const (
	// DefaultQueueLen is how many frames, of all rooms together, may wait
	// to be written unless Options.QueueLen says otherwise.
	DefaultQueueLen = 4096
	// DefaultWindow is how many chat messages, and as many join and leave
	// notices, each room keeps in memory unless Options.Window says
	// otherwise: what joiners and resuming clients receive.
	DefaultWindow = chatroom.DefaultHistoryLen
)

// maxBatch bounds the frames one transaction writes; trimBatch the frames
// one age retention pass deletes from a room.
const (
	maxBatch     = 1024
	trimBatch    = 1000
	trimInterval = time.Minute
)

// ErrNotWritten is wrapped by Flush for a frame the database did not take:
// the queue was full, the store was closed, or the write failed.
var ErrNotWritten = errors.New("sqlitestore: frame not written")

// ErrClosed is returned by Room once Close has begun.
var ErrClosed = errors.New("sqlitestore: closed")

// Options configures a database. The zero value is the default.
type Options struct {
	// Window is how many chat messages each room keeps in memory, and as
	// many join and leave notices: the history a joiner receives, and how
	// far back a client resumes without a truncated notice. 0 means
	// DefaultWindow.
	Window int
	// WindowBytes bounds the nicknames and texts of a room's window; 0
	// means chatroom.DefaultHistoryBytes.
	WindowBytes int
	// QueueLen bounds the frames waiting to be written; 0 means
	// DefaultQueueLen.
	QueueLen int
	// Logger receives the writer's errors; nil means slog.New of a
	// handler that discards.
	Logger *slog.Logger
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

// Stats counts a database's writes since Open.
type Stats struct {
	Written uint64 // frames committed
	Dropped uint64 // frames not written: queue full, closed, or failed
}

// DB is one SQLite database holding the history of many rooms. Open it
// once, give each room the Store of Room, and Close it after the rooms.
type DB struct {
	sql     *sql.DB
	log     *slog.Logger
	opts    Options
	queue   chan op
	mu      sync.RWMutex // Append holds it shared to queue; Close exclusively to end
	closed  bool
	quit    chan struct{}
	done    chan struct{}
	written atomic.Uint64
	dropped atomic.Uint64

	aged sync.Map // room name → *Store with Retention.Age, for the writer's age passes
}

// op is a frame to write, or (msg.ID 0) a barrier that the writer closes
// done for once everything queued before it is written.
type op struct {
	st   *Store
	msg  chatroom.Message
	done chan struct{}
}

// Open opens (creating it if need be) the database at path and starts its
// writer goroutine.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	switch {
	case opts.Window < 0 || opts.WindowBytes < 0 || opts.QueueLen < 0:
		return nil, fmt.Errorf("sqlitestore: negative bound in %+v", opts)
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
	q := url.Values{"_pragma": {"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)"}, "_txlock": {"immediate"}}
	sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	for _, stmt := range schema {
		if _, err := sdb.ExecContext(ctx, stmt); err != nil {
			_ = sdb.Close()
			return nil, fmt.Errorf("sqlitestore: create tables in %s: %w", path, err)
		}
	}
	db := &DB{sql: sdb, log: opts.Logger, opts: opts, queue: make(chan op, opts.QueueLen),
		quit: make(chan struct{}), done: make(chan struct{})}
	go db.run()
	return db, nil
}

// schema creates the tables: one row per room, its span and what retention
// removed, and one per frame, keyed by room and ID so that writing a frame
// twice keeps one.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS rooms (
		name TEXT PRIMARY KEY,
		first_id INTEGER NOT NULL,
		last_id INTEGER NOT NULL,
		trimmed_id INTEGER NOT NULL DEFAULT 0
	) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS frames (
		room TEXT NOT NULL,
		id INTEGER NOT NULL,
		type TEXT NOT NULL,
		time INTEGER NOT NULL,
		nickname TEXT NOT NULL,
		text TEXT NOT NULL,
		PRIMARY KEY (room, id)
	) WITHOUT ROWID`,
}

// Stats returns the database's counts.
func (db *DB) Stats() Stats {
	return Stats{Written: db.written.Load(), Dropped: db.dropped.Load()}
}

// Close writes what is queued, stops the writer and closes the database.
// Close the rooms first: frames appended after Close are not written.
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
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("sqlitestore: close: %w", err)
	}
	return nil
}

// Room returns the Store of the room named name, its window loaded from the
// database once every frame queued before is written, so that a room
// opened again (a Registry's, after it emptied) misses none. keep bounds
// what the database keeps of the room from now on.
func (db *DB) Room(ctx context.Context, name string, keep Retention) (*Store, error) {
	if keep.Count < 0 || keep.Age < 0 {
		return nil, fmt.Errorf("sqlitestore: room %q: negative retention %+v", name, keep)
	}
	if err := db.barrier(ctx); err != nil {
		return nil, err
	}
	st := &Store{db: db, name: name, keep: keep, changed: make(chan struct{}),
		window: chatroom.NewMemoryStore(db.opts.Window, db.opts.WindowBytes)}
	if err := st.load(ctx); err != nil {
		return nil, fmt.Errorf("sqlitestore: room %q: %w", name, err)
	}
	if keep.Age > 0 {
		db.aged.Store(name, st)
	}
	return st, nil
}

// barrier waits until the writer has written everything queued so far.
func (db *DB) barrier(ctx context.Context) error {
	done := make(chan struct{})
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	select {
	case db.queue <- op{done: done}:
	case <-ctx.Done():
		db.mu.RUnlock()
		return fmt.Errorf("sqlitestore: waiting for the queue: %w", ctx.Err())
	}
	db.mu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sqlitestore: waiting for the queue: %w", ctx.Err())
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
// written and trims the rooms with a count retention.
func (db *DB) write(batch []op) {
	ctx := context.Background()
	last := make(map[*Store]uint64)
	var n uint64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, o := range batch {
			if o.st == nil {
				continue
			}
			m := o.msg
			if _, err := tx.ExecContext(ctx, `INSERT INTO frames (room, id, type, time, nickname, text) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
				o.st.name, int64(m.ID), string(m.Type), m.Time.UnixNano(), m.Nickname, m.Text); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO rooms (name, first_id, last_id) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)`,
				o.st.name, int64(m.ID), int64(m.ID)); err != nil {
				return err
			}
			last[o.st] = max(last[o.st], m.ID)
			n++
		}
		return nil
	})
	if err != nil {
		db.log.Error("sqlitestore: write failed", "frames", n, "err", err)
		for _, o := range batch {
			if o.st != nil {
				o.st.lose(o.msg.ID, err)
			}
		}
	} else {
		db.written.Add(n)
		for st, id := range last {
			st.wrote(id)
		}
	}
	for _, o := range batch {
		if o.done != nil {
			close(o.done)
		}
	}
	for st := range last {
		if st.keep.Count > 0 {
			db.trimCount(ctx, st)
		}
	}
}

// inTx runs fn in a transaction and commits it.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// trimCount deletes the frames of st's room older than its Count newest
// messages.
func (db *DB) trimCount(ctx context.Context, st *Store) {
	var cut sql.NullInt64
	err := db.sql.QueryRowContext(ctx, `SELECT id FROM frames WHERE room = ? AND type IN ('message', 'system') ORDER BY id DESC LIMIT 1 OFFSET ?`,
		st.name, st.keep.Count).Scan(&cut)
	if errors.Is(err, sql.ErrNoRows) {
		return
	}
	db.trimTo(ctx, st, cut, err)
}

// trimAge deletes, for every room with an age retention, at most trimBatch
// of its frames older than that.
func (db *DB) trimAge() {
	ctx := context.Background()
	db.aged.Range(func(_, v any) bool {
		st := v.(*Store)
		var cut sql.NullInt64
		err := db.sql.QueryRowContext(ctx, `SELECT max(id) FROM (SELECT id FROM frames WHERE room = ? AND time < ? ORDER BY id LIMIT ?)`,
			st.name, time.Now().Add(-st.keep.Age).UnixNano(), trimBatch).Scan(&cut)
		db.trimTo(ctx, st, cut, err)
		return true
	})
}

// trimTo deletes st's frames up to cut, and remembers it.
func (db *DB) trimTo(ctx context.Context, st *Store, cut sql.NullInt64, err error) {
	if err == nil && cut.Valid {
		err = db.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM frames WHERE room = ? AND id <= ?`, st.name, cut.Int64); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE rooms SET trimmed_id = max(trimmed_id, ?) WHERE name = ?`, cut.Int64, st.name)
			return err
		})
	}
	if err != nil {
		db.log.Error("sqlitestore: retention failed", "room", st.name, "err", err)
	}
}
