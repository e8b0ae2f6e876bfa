package pgstore_test

import (
	"testing"

	"github.com/seed014c2c51/chatroom/internal/durable/durabletest"
	"github.com/seed014c2c51/chatroom/pgstore"
)

// TestStore runs the stores' conformance suite on databases of its own on
// a real PostgreSQL server.
func TestStore(t *testing.T) {
	durabletest.Run(t, durabletest.Store{
		Place: func(t *testing.T) string { return newDatabase(t) },
		Open: func(t *testing.T, url string, opts durabletest.Options) durabletest.DB {
			return open(t, url, pgstore.Options{Window: opts.Window, QueueLen: opts.QueueLen})
		},
	})
}
