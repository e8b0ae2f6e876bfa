package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/seed014c2c51/chatroom/internal/durable/durabletest"
	"github.com/seed014c2c51/chatroom/sqlitestore"
)

// TestStore runs the stores' conformance suite on SQLite files in a
// temporary directory.
func TestStore(t *testing.T) {
	durabletest.Run(t, durabletest.Store{
		Place: func(t *testing.T) string { return filepath.Join(t.TempDir(), "chat.db") },
		Open: func(t *testing.T, path string, opts durabletest.Options) durabletest.DB {
			return open(t, path, sqlitestore.Options{Window: opts.Window, QueueLen: opts.QueueLen})
		},
	})
}

func open(t *testing.T, path string, opts sqlitestore.Options) *sqlitestore.DB {
	t.Helper()
	db, err := sqlitestore.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
