// Package pgstore keeps the history of chat rooms (package chatroom) in
// PostgreSQL, for a room on one node or on several (chatroom.WithBroker):
// it survives restarts and deploys, every node of a cluster resumes and
// scrolls back from the same frames, and each frame is kept once whatever
// the number of nodes.
//
//	pool, err := pgxpool.New(ctx, "postgres://chat@db/chat")
//	...
//	db, err := pgstore.Open(ctx, pool, pgstore.Options{})
//	...
//	defer db.Close()
//	st, err := db.Room(ctx, "lobby", pgstore.Retention{Age: 30 * 24 * time.Hour})
//	...
//	room := chatroom.New(chatroom.WithName("lobby"), chatroom.WithEnvelope(),
//		chatroom.WithBroker(b), chatroom.WithHistory(chatroom.History{Store: st}))
//
// The driver is pgx (github.com/jackc/pgx/v5); the host owns the pool.
// Open creates two tables if they do not exist, chatroom_rooms and
// chatroom_frames.
//
// # Writes
//
// As in sqlitestore, whose design this shares: a room appends each frame to
// its Store under its lock, where nothing may block, so a Store keeps the
// room's recent frames in memory (its window) and queues the write for the
// DB's one writer goroutine, which writes what is queued, for every room,
// in one transaction. The queue is bounded (Options.QueueLen): a frame that
// finds it full is not written by this node, Stats counts it, and Flush of
// its ID returns an error wrapping ErrNotWritten; chatroom.History.Durable
// makes the room wait for Flush instead. Retention (per room, by count and
// by age) is applied by the writer goroutine, a bounded number of frames at
// a time.
//
// # Several nodes
//
// With a broker that numbers the frames (a broker.HistoryBroker), every
// node subscribed to the room writes every frame the broker numbered, with
// the broker's ID, and the database keeps one row per room and ID (INSERT
// … ON CONFLICT DO NOTHING): a frame is in the database as long as one
// node that delivered it lives to commit it, the node that published it or
// any other. When a node subscribes it also writes what the broker's
// history holds beyond the database (chatroom.DatabaseStore's Fill): the
// frames of a time when no node, or only a node that died, was subscribed.
// The frames a node delivers on its own while the broker is down are not
// the cluster's, and are not written. Each transaction takes its rows in
// the order of room and ID, so that nodes writing the same frames never
// deadlock.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/internal/durable"
)

// Defaults of Options.
const (
	// DefaultQueueLen is how many frames, of all rooms together, may wait
	// to be written unless Options.QueueLen says otherwise.
	DefaultQueueLen = durable.DefaultQueueLen
	// DefaultWindow is how many chat messages, and as many join and leave
	// notices, each room keeps in memory unless Options.Window says
	// otherwise.
	DefaultWindow = durable.DefaultWindow
)

// ErrNotWritten is wrapped by Flush for a frame this node did not write:
// the queue was full, the store was closed, or the write failed.
var ErrNotWritten = durable.ErrNotWritten

// ErrClosed is wrapped by Room's error once Close has begun.
var ErrClosed = durable.ErrClosed

// Options configures a DB. The zero value is the default.
type Options struct {
	// Window is how many chat messages each room keeps in memory, and as
	// many join and leave notices: the history a joiner receives on a room
	// without a HistoryBroker, and how far back a client resumes without
	// reading the database. 0 means DefaultWindow.
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

// Stats counts a DB's writes since Open: Written, the frames this node
// committed (a frame two nodes wrote counts on each); Dropped, those it did
// not write (queue full, closed, or failed).
type Stats = durable.Stats

// DB is the history of many rooms in one PostgreSQL database, and this
// node's writer. Open it once per process, give each room the Store of
// Room, and Close it after the rooms.
type DB struct{ db *durable.DB }

// Open creates the tables in pool's database if need be, and starts the
// writer goroutine. The pool stays the host's: Close does not close it.
func Open(ctx context.Context, pool *pgxpool.Pool, opts Options) (*DB, error) {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Nodes starting together would race to create the tables.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('chatroom pgstore schema'))`); err != nil {
			return err
		}
		for _, stmt := range schema {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: create tables: %w", err)
	}
	db, err := durable.Open(backend{pool}, durable.Options{Name: "pgstore", Window: opts.Window,
		WindowBytes: opts.WindowBytes, QueueLen: opts.QueueLen, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	return &DB{db}, nil
}

// Room returns the Store of the room named name on this node, its window
// loaded from the database once every frame this node queued before is
// written. keep bounds what the database keeps of the room: give every
// node the same. Give the Store to one room (chatroom.History.Store).
func (db *DB) Room(ctx context.Context, name string, keep Retention) (chatroom.DatabaseStore, error) {
	return db.db.Room(ctx, name, keep)
}

// Stats returns this node's counts.
func (db *DB) Stats() Stats { return db.db.Stats() }

// Close writes what is queued and stops the writer. Close the rooms first:
// frames appended after Close are not written.
func (db *DB) Close() error { return db.db.Close() }

// schema creates the tables: one row per room, its span and what retention
// removed, and one per frame, keyed by room and ID so that a frame that
// several nodes write is kept once. time_ns is the frame's time in Unix
// nanoseconds, as the room stamped it, so that a frame read back is the
// frame sent. ref_key is chatroom.Message.RefKey, which a room without a
// broker sets: how a room restarted on the database recognises a resend
// of the frame (in a cluster the broker keeps the keys).
var schema = []string{
	`CREATE TABLE IF NOT EXISTS chatroom_rooms (
		name text PRIMARY KEY,
		first_id bigint NOT NULL,
		last_id bigint NOT NULL,
		trimmed_id bigint NOT NULL DEFAULT 0
	)`,
	`CREATE TABLE IF NOT EXISTS chatroom_frames (
		room text NOT NULL,
		id bigint NOT NULL,
		type text NOT NULL,
		time_ns bigint NOT NULL,
		nickname text NOT NULL,
		text text NOT NULL,
		ref_key text NOT NULL DEFAULT '',
		PRIMARY KEY (room, id)
	)`,
	// Tables created before ref_key existed: their frames have none.
	`ALTER TABLE chatroom_frames ADD COLUMN IF NOT EXISTS ref_key text NOT NULL DEFAULT ''`,
}

// backend is durable.Backend in PostgreSQL's SQL.
type backend struct{ pool *pgxpool.Pool }

// frameColumns are the columns query reads.
const frameColumns = `id, type, time_ns, nickname, text, ref_key`

func (b backend) Load(ctx context.Context, room string, window int, notBefore int64) (durable.Loaded, error) {
	var l durable.Loaded
	var first, last, cut int64
	err := b.pool.QueryRow(ctx, `SELECT first_id, last_id, trimmed_id FROM chatroom_rooms WHERE name = $1`, room).Scan(&first, &last, &cut)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return l, nil
	case err != nil:
		return l, err
	}
	l.First, l.Last, l.Trimmed = uint64(first), uint64(last), uint64(cut)
	// One message more than the window holds, so that the window knows
	// that older ones exist and reports a since before them incomplete.
	l.Frames, err = b.query(ctx, `SELECT * FROM (
		(SELECT `+frameColumns+` FROM chatroom_frames WHERE room = $1 AND type IN ('message', 'system') AND time_ns >= $2 ORDER BY id DESC LIMIT $3)
		UNION ALL
		(SELECT `+frameColumns+` FROM chatroom_frames WHERE room = $1 AND type IN ('join', 'leave') AND time_ns >= $2 ORDER BY id DESC LIMIT $4)
	) AS w ORDER BY id`, room, notBefore, window+1, window)
	return l, err
}

func (b backend) Write(ctx context.Context, frames []durable.Frame) error {
	n := len(frames)
	rooms, ids, types, times, nicks, texts, keys := make([]string, n), make([]int64, n), make([]string, n), make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	for i, f := range frames {
		rooms[i], ids[i], types[i], times[i], nicks[i], texts[i], keys[i] = f.Room, int64(f.Msg.ID), string(f.Msg.Type), f.Msg.Time.UnixNano(), f.Msg.Nickname, f.Msg.Text, f.Msg.RefKey
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		// Rows in the order of room and ID, in both statements: two nodes
		// writing the same frames wait for each other, never deadlock.
		if _, err := tx.Exec(ctx, `INSERT INTO chatroom_frames (room, id, type, time_ns, nickname, text, ref_key)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[]) ORDER BY 1, 2
			ON CONFLICT DO NOTHING`, rooms, ids, types, times, nicks, texts, keys); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO chatroom_rooms AS r (name, first_id, last_id)
			SELECT room, min(id), max(id) FROM unnest($1::text[], $2::bigint[]) AS f (room, id) GROUP BY room ORDER BY room
			ON CONFLICT (name) DO UPDATE SET first_id = LEAST(r.first_id, excluded.first_id), last_id = GREATEST(r.last_id, excluded.last_id)`,
			rooms, ids)
		return err
	})
}

func (b backend) Older(ctx context.Context, room string, before uint64, limit int) ([]chatroom.Message, error) {
	return b.query(ctx, `SELECT `+frameColumns+` FROM chatroom_frames WHERE room = $1 AND id < $2 AND type IN ('message', 'system') ORDER BY id DESC LIMIT $3`,
		room, int64(min(before, 1<<63-1)), limit)
}

func (b backend) Newer(ctx context.Context, room string, after uint64, limit int) ([]chatroom.Message, uint64, error) {
	var cut int64
	err := b.pool.QueryRow(ctx, `SELECT trimmed_id FROM chatroom_rooms WHERE name = $1`, room).Scan(&cut)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, err
	}
	msgs, err := b.query(ctx, `SELECT `+frameColumns+` FROM chatroom_frames WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3`,
		room, int64(after), limit)
	return msgs, uint64(cut), err
}

func (b backend) TrimCount(ctx context.Context, room string, keep int) error {
	var cut *int64
	err := b.pool.QueryRow(ctx, `SELECT id FROM chatroom_frames WHERE room = $1 AND type IN ('message', 'system') ORDER BY id DESC LIMIT 1 OFFSET $2`,
		room, keep).Scan(&cut)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return b.trimTo(ctx, room, cut, err)
}

func (b backend) TrimAge(ctx context.Context, room string, cutoff time.Time) error {
	var cut *int64
	err := b.pool.QueryRow(ctx, `SELECT max(id) FROM (SELECT id FROM chatroom_frames WHERE room = $1 AND time_ns < $2 ORDER BY id LIMIT $3) AS old`,
		room, cutoff.UnixNano(), durable.TrimBatch).Scan(&cut)
	return b.trimTo(ctx, room, cut, err)
}

// trimTo deletes room's frames up to cut, and remembers it.
func (b backend) trimTo(ctx context.Context, room string, cut *int64, err error) error {
	if err != nil || cut == nil {
		return err
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM chatroom_frames WHERE room = $1 AND id <= $2`, room, *cut); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE chatroom_rooms SET trimmed_id = GREATEST(trimmed_id, $1) WHERE name = $2`, *cut, room)
		return err
	})
}

// Close implements durable.Backend: the pool is the host's.
func (backend) Close() error { return nil }

// query returns the frames a query of frameColumns selects, in its order.
func (b backend) query(ctx context.Context, q string, args ...any) ([]chatroom.Message, error) {
	rows, err := b.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (chatroom.Message, error) {
		var id, t int64
		var typ string
		var m chatroom.Message
		if err := row.Scan(&id, &typ, &t, &m.Nickname, &m.Text, &m.RefKey); err != nil {
			return m, err
		}
		m.ID, m.Type, m.Time = uint64(id), chatroom.MessageType(typ), time.Unix(0, t).UTC()
		return m, nil
	})
}
