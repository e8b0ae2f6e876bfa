package sqlitestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/sqlitestore"
)

// A file written before frames had a ref_key column opens: its frames are
// kept, with no key, and the frames written since keep theirs, which a
// Store opened on the file reads back.
func TestOpenAddsRefKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE rooms (name TEXT PRIMARY KEY, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL, trimmed_id INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`,
		`CREATE TABLE frames (room TEXT NOT NULL, id INTEGER NOT NULL, type TEXT NOT NULL, time INTEGER NOT NULL, nickname TEXT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (room, id)) WITHOUT ROWID`,
		`INSERT INTO rooms VALUES ('lobby', 1, 1, 0)`,
		`INSERT INTO frames VALUES ('lobby', 1, 'message', 0, 'ann', 'old')`,
	} {
		if _, err := old.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	at := time.Unix(1, 0).UTC()
	db := open(t, path, sqlitestore.Options{})
	st, err := db.Room(ctx, "lobby", sqlitestore.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	st.Append(chatroom.Message{Type: chatroom.TypeMessage, ID: 2, Time: at, Nickname: "ann", Text: "new", RefKey: `"nann"k1`})
	if err := st.Flush(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path, sqlitestore.Options{}) // and again: the column is there
	st, err = db.Room(ctx, "lobby", sqlitestore.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := st.Since(0)
	want := []chatroom.Message{
		{Type: chatroom.TypeMessage, ID: 1, Time: time.Unix(0, 0).UTC(), Nickname: "ann", Text: "old"},
		{Type: chatroom.TypeMessage, ID: 2, Time: at, Nickname: "ann", Text: "new", RefKey: `"nann"k1`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
}
