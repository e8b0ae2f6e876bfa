// Package stores opens the history a benchmarked chatroom room keeps, so
// that the load tools can set the stores side by side: in the room's
// memory, in SQLite (sqlitestore) and in PostgreSQL (pgstore), each
// written behind (the default) or with History.Durable.
//
// Every store begins empty: SQLite in a file of a new temporary directory,
// PostgreSQL a server of its own (internal/serverproc.StartPostgres: a new
// data directory, a free loopback port, fsync and synchronous commit on, as
// a user would run it), stopped and removed by Close.
package stores

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/internal/serverproc"
	"github.com/seed014c2c51/chatroom/pgstore"
	"github.com/seed014c2c51/chatroom/sqlitestore"
)

// Names lists the stores Open knows: "memory" is chatroom's MemoryStore
// (WithHistory's default); a "-durable" suffix sets History.Durable.
var Names = []string{"memory", "sqlite", "sqlite-durable", "pg", "pg-durable"}

// startTimeout bounds PostgreSQL's start.
const startTimeout = 30 * time.Second

// Store is an opened history for one room.
type Store struct {
	// History is what the room is given, with WithHistory.
	History chatroom.History
	closers []func() error // run in reverse order by Close
}

// Open opens the store name (one of Names) for the room called room.
func Open(ctx context.Context, name, room string) (_ *Store, err error) {
	kind, durable := strings.CutSuffix(name, "-durable")
	s := &Store{}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("store %s: %w", name, err), s.Close())
		}
	}()
	var st chatroom.Store
	switch kind {
	case "memory":
		if durable {
			return nil, errors.New("History.Durable is for a Store that writes behind")
		}
	case "sqlite":
		dir, err := os.MkdirTemp("", "chatbench-sqlite-")
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() error { return os.RemoveAll(dir) })
		db, err := sqlitestore.Open(ctx, filepath.Join(dir, "chat.db"), sqlitestore.Options{})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, db.Close)
		if st, err = db.Room(ctx, room, sqlitestore.Retention{}); err != nil {
			return nil, err
		}
	case "pg":
		pg, err := serverproc.StartPostgres(startTimeout)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, pg.Close)
		pool, err := pgxpool.New(ctx, pg.URL("postgres"))
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() error { pool.Close(); return nil })
		db, err := pgstore.Open(ctx, pool, pgstore.Options{})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, db.Close)
		if st, err = db.Room(ctx, room, pgstore.Retention{}); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown store (have %v)", Names)
	}
	s.History = chatroom.History{Store: st, Durable: durable}
	return s, nil
}

// Close closes the store and removes what Open made: call it once the room
// is closed.
func (s *Store) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}
