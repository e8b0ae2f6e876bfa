package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	neturl "net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/seed014c2c51/chatroom/internal/serverproc"
	"github.com/seed014c2c51/chatroom/pgstore"
)

// waitTimeout bounds every wait for something that should happen.
const waitTimeout = 20 * time.Second

// server is the PostgreSQL server the tests share, started by the first
// that needs it: with PGSTORE_URL, that server; else one of their own, in
// a temporary directory, on a free loopback port. Each test has a
// database of its own on it.
var server struct {
	once sync.Once
	pg   *serverproc.Postgres
	base string // connection string of the database "postgres", with PGSTORE_URL
	err  error
}

func TestMain(m *testing.M) {
	if helperEnv() {
		nodeHelper()
		return
	}
	code := m.Run()
	if server.pg != nil {
		_ = server.pg.Close()
	}
	os.Exit(code)
}

// newDatabase creates a database of the test's own and returns its
// connection string. Without PostgreSQL it skips the test, or fails it
// with CI=true.
func newDatabase(t testing.TB) string {
	t.Helper()
	server.once.Do(func() {
		if url := os.Getenv("PGSTORE_URL"); url != "" {
			server.base = url
			return
		}
		// fsync off: the tests kill nodes, never the server.
		server.pg, server.err = serverproc.StartPostgres(waitTimeout, "fsync=off", "max_connections=200")
	})
	switch {
	case errors.Is(server.err, serverproc.ErrNoPostgres) && os.Getenv("CI") != "true":
		t.Skip("PostgreSQL not installed (initdb, postgres) and PGSTORE_URL not set: skipping")
	case server.err != nil:
		t.Fatalf("PostgreSQL: %v", server.err)
	}
	base := server.base
	if server.pg != nil {
		base = server.pg.URL("postgres")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	admin := pool(t, base)
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	return dbURL(t, base, name)
}

// dbURL returns the connection string url with the database name.
func dbURL(t testing.TB, base, name string) string {
	t.Helper()
	u, err := neturl.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// pool returns a pool on url, closed when the test ends.
func pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// open opens a DB on url, closed when the test ends.
func open(t *testing.T, url string, opts pgstore.Options) *pgstore.DB {
	t.Helper()
	db, err := pgstore.Open(context.Background(), pool(t, url), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// stored is a frame as the database holds it.
type stored struct {
	ID   uint64
	Type string
	Text string
}

// rows returns what the database at url holds of room, by ID.
func rows(t *testing.T, url, room string) []stored {
	t.Helper()
	p := pool(t, url)
	rs, err := p.Query(context.Background(), `SELECT id, type, text FROM chatroom_frames WHERE room = $1 ORDER BY id`, room)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []stored
	for rs.Next() {
		var s stored
		var id int64
		if err := rs.Scan(&id, &s.Type, &s.Text); err != nil {
			t.Fatal(err)
		}
		s.ID = uint64(id)
		out = append(out, s)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
