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
// speed that a chat does not notice (BENCHMARKS.md measures it). One file
// serves one process; for several nodes, use pgstore.
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
//
// A client resuming from further back than the window receives what it
// missed from the database (chatroom.DatabaseStore), read before it joins.
//
// Each frame is stored with its sender's key of its ref
// (chatroom.Message.RefKey), so that a room restarted on the file
// recognises the resends of the messages in its window: with
// chatroom.History.Durable, a server killed in the middle of a stream
// loses no acknowledged message and stores none twice (PROTOCOL.md,
// "Durable history"). Open adds the column to a file written before it
// existed.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/internal/durable"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// Defaults of Options.
const (
	// DefaultQueueLen is how many frames, of all rooms together, may wait
	// to be written unless Options.QueueLen says otherwise.
	DefaultQueueLen = durable.DefaultQueueLen
	// DefaultWindow is how many chat messages, and as many join and leave
	// notices, each room keeps in memory unless Options.Window says
	// otherwise: what joiners and resuming clients receive without reading
	// the database.
	DefaultWindow = durable.DefaultWindow
)

// ErrNotWritten is wrapped by Flush for a frame the database did not take:
// the queue was full, the store was closed, or the write failed.
var ErrNotWritten = durable.ErrNotWritten

// ErrClosed is wrapped by Room's error once Close has begun.
var ErrClosed = durable.ErrClosed

// Options configures a database. The zero value is the default.
type Options struct {
	// Window is how many chat messages each room keeps in memory, and as
	// many join and leave notices: the history a joiner receives, and how
	// far back a client resumes without reading the database. 0 means
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

// Retention bounds what the database keeps of one room: Count, how many
// of its newest chat and server messages, with the notices between them;
// Age, how long it keeps a frame. Zero means no bound, for either.
type Retention = durable.Retention

// Stats counts a database's writes since Open: Written, the frames
// committed; Dropped, those not written (queue full, closed, or failed).
type Stats = durable.Stats

// DB is one SQLite database holding the history of many rooms. Open it
// once, give each room the Store of Room, and Close it after the rooms.
type DB struct{ db *durable.DB }

// Open opens (creating it if need be) the database at path and starts its
// writer goroutine.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
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
	if err := migrate(ctx, sdb); err != nil {
		_ = sdb.Close()
		return nil, fmt.Errorf("sqlitestore: add ref_key to the frames of %s: %w", path, err)
	}
	db, err := durable.Open(backend{sdb}, durable.Options{Name: "sqlitestore", Window: opts.Window,
		WindowBytes: opts.WindowBytes, QueueLen: opts.QueueLen, Logger: opts.Logger})
	if err != nil {
		_ = sdb.Close()
		return nil, err
	}
	return &DB{db}, nil
}

// Room returns the Store of the room named name, its window loaded from the
// database once every frame queued before is written, so that a room
// opened again (a Registry's, after it emptied) misses none. keep bounds
// what the database keeps of the room from now on. Give the Store to one
// room (chatroom.History.Store).
func (db *DB) Room(ctx context.Context, name string, keep Retention) (chatroom.DatabaseStore, error) {
	return db.db.Room(ctx, name, keep)
}

// Stats returns the database's counts.
func (db *DB) Stats() Stats { return db.db.Stats() }

// Close writes what is queued, stops the writer and closes the database.
// Close the rooms first: frames appended after Close are not written.
func (db *DB) Close() error { return db.db.Close() }

// schema creates the tables: one row per room, its span and what retention
// removed, and one per frame, keyed by room and ID so that writing a frame
// twice keeps one. A frame's ref_key is chatroom.Message.RefKey: how a
// room restarted on the file recognises a resend of it.
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
		ref_key TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (room, id)
	) WITHOUT ROWID`,
}

// addRefKey adds the column ref_key to a frames table of a file created
// before it existed: its frames have none.
const addRefKey = `ALTER TABLE frames ADD COLUMN ref_key TEXT NOT NULL DEFAULT ''`

// migrate brings the tables of an older file up to schema.
func migrate(ctx context.Context, sdb *sql.DB) error {
	var n int
	err := sdb.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('frames') WHERE name = 'ref_key'`).Scan(&n)
	if err != nil || n > 0 {
		return err
	}
	_, err = sdb.ExecContext(ctx, addRefKey)
	return err
}

// backend is durable.Backend in SQLite's SQL.
type backend struct{ sql *sql.DB }

// frameColumns are the columns query reads.
const frameColumns = `id, type, time, nickname, text, ref_key`

func (b backend) Load(ctx context.Context, room string, window int, notBefore int64) (durable.Loaded, error) {
	var l durable.Loaded
	var first, last, cut int64
	err := b.sql.QueryRowContext(ctx, `SELECT first_id, last_id, trimmed_id FROM rooms WHERE name = ?`, room).Scan(&first, &last, &cut)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return l, nil
	case err != nil:
		return l, err
	}
	l.First, l.Last, l.Trimmed = uint64(first), uint64(last), uint64(cut)
	// One message more than the window holds, so that the window knows
	// that older ones exist and reports a since before them incomplete.
	l.Frames, err = b.query(ctx, `SELECT * FROM (
		SELECT * FROM (SELECT `+frameColumns+` FROM frames WHERE room = ?1 AND type IN ('message', 'system') AND time >= ?2 ORDER BY id DESC LIMIT ?3)
		UNION ALL
		SELECT * FROM (SELECT `+frameColumns+` FROM frames WHERE room = ?1 AND type IN ('join', 'leave') AND time >= ?2 ORDER BY id DESC LIMIT ?4)
	) ORDER BY id`, room, notBefore, window+1, window)
	return l, err
}

func (b backend) Write(ctx context.Context, frames []durable.Frame) error {
	return b.inTx(ctx, func(tx *sql.Tx) error {
		for _, f := range frames {
			m := f.Msg
			if _, err := tx.ExecContext(ctx, `INSERT INTO frames (room, id, type, time, nickname, text, ref_key) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
				f.Room, int64(m.ID), string(m.Type), m.Time.UnixNano(), m.Nickname, m.Text, m.RefKey); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO rooms (name, first_id, last_id) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET first_id = min(first_id, excluded.first_id), last_id = max(last_id, excluded.last_id)`,
				f.Room, int64(m.ID), int64(m.ID)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b backend) Older(ctx context.Context, room string, before uint64, limit int) ([]chatroom.Message, error) {
	return b.query(ctx, `SELECT `+frameColumns+` FROM frames WHERE room = ? AND id < ? AND type IN ('message', 'system') ORDER BY id DESC LIMIT ?`,
		room, int64(min(before, 1<<63-1)), limit)
}

func (b backend) Newer(ctx context.Context, room string, after uint64, limit int) ([]chatroom.Message, uint64, error) {
	var cut int64
	err := b.sql.QueryRowContext(ctx, `SELECT trimmed_id FROM rooms WHERE name = ?`, room).Scan(&cut)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, 0, err
	}
	msgs, err := b.query(ctx, `SELECT `+frameColumns+` FROM frames WHERE room = ? AND id > ? ORDER BY id LIMIT ?`,
		room, int64(after), limit)
	return msgs, uint64(cut), err
}

func (b backend) TrimCount(ctx context.Context, room string, keep int) error {
	var cut sql.NullInt64
	err := b.sql.QueryRowContext(ctx, `SELECT id FROM frames WHERE room = ? AND type IN ('message', 'system') ORDER BY id DESC LIMIT 1 OFFSET ?`,
		room, keep).Scan(&cut)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return b.trimTo(ctx, room, cut, err)
}

func (b backend) TrimAge(ctx context.Context, room string, cutoff time.Time) error {
	var cut sql.NullInt64
	err := b.sql.QueryRowContext(ctx, `SELECT max(id) FROM (SELECT id FROM frames WHERE room = ? AND time < ? ORDER BY id LIMIT ?)`,
		room, cutoff.UnixNano(), durable.TrimBatch).Scan(&cut)
	return b.trimTo(ctx, room, cut, err)
}

// trimTo deletes room's frames up to cut, and remembers it.
func (b backend) trimTo(ctx context.Context, room string, cut sql.NullInt64, err error) error {
	if err != nil || !cut.Valid {
		return err
	}
	return b.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM frames WHERE room = ? AND id <= ?`, room, cut.Int64); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE rooms SET trimmed_id = max(trimmed_id, ?) WHERE name = ?`, cut.Int64, room)
		return err
	})
}

func (b backend) Close() error { return b.sql.Close() }

// inTx runs fn in a transaction and commits it.
func (b backend) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := b.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// query returns the frames a query of frameColumns selects, in its order.
func (b backend) query(ctx context.Context, q string, args ...any) ([]chatroom.Message, error) {
	rows, err := b.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []chatroom.Message
	for rows.Next() {
		var id, t int64
		var typ string
		var m chatroom.Message
		if err := rows.Scan(&id, &typ, &t, &m.Nickname, &m.Text, &m.RefKey); err != nil {
			return nil, err
		}
		m.ID, m.Type, m.Time = uint64(id), chatroom.MessageType(typ), time.Unix(0, t).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}
