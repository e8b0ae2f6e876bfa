package stores

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/internal/serverproc"
)

// Every store opens empty, keeps a room's frame, and Close undoes Open;
// a durable memory store and an unknown name are refused.
func TestOpen(t *testing.T) {
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			st, err := Open(context.Background(), name, "lobby")
			if errors.Is(err, serverproc.ErrNoPostgres) && os.Getenv("CI") != "true" {
				t.Skip("PostgreSQL not installed: skipping")
			}
			if err != nil {
				t.Fatal(err)
			}
			rm := chatroom.New(chatroom.WithName("lobby"), chatroom.WithEnvelope(), chatroom.WithHistory(st.History))
			if _, err := rm.Broadcast(context.Background(), chatroom.Message{Text: "kept"}); err != nil {
				t.Fatal(err)
			}
			if st.History.Store != nil {
				if msgs, _ := st.History.Store.Since(0); len(msgs) != 1 || msgs[0].Text != "kept" {
					t.Errorf("store holds %+v, want the one frame", msgs)
				}
			}
			_ = rm.Close()
			if err := st.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	for _, name := range []string{"memory-durable", "mysql"} {
		if _, err := Open(context.Background(), name, "lobby"); err == nil {
			t.Errorf("Open(%q) did not fail", name)
		}
	}
}
