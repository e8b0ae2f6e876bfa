package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/sqlitestore"
)

// BenchmarkBroadcast measures a room's Broadcast with its history in
// memory, in SQLite written behind, and in SQLite with History.Durable
// (one Broadcast at a time, so every frame waits for its own commit, and
// from 8 goroutines, whose frames share commits).
func BenchmarkBroadcast(b *testing.B) {
	for _, bc := range []struct {
		name     string
		sqlite   bool
		durable  bool
		parallel bool
	}{
		{"memory", false, false, false},
		{"sqlite", true, false, false},
		{"sqlite-durable", true, true, false},
		{"sqlite-durable-8", true, true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := chatroom.History{}
			if bc.sqlite {
				db, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), "chat.db"), sqlitestore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				st, err := db.Room(context.Background(), "lobby", sqlitestore.Retention{})
				if err != nil {
					b.Fatal(err)
				}
				h = chatroom.History{Store: st, Durable: bc.durable}
			}
			rm := chatroom.New(chatroom.WithEnvelope(), chatroom.WithHistory(h))
			defer rm.Close()
			msg := chatroom.Message{Nickname: "bench", Text: "a message of some forty bytes, say this"}
			if bc.parallel {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := rm.Broadcast(context.Background(), msg); err != nil {
							b.Error(err)
							return
						}
					}
				})
				return
			}
			for b.Loop() {
				if _, err := rm.Broadcast(context.Background(), msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
