package pgstore_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/pgstore"
)

// fanoutMembers is how many members receive each frame in BenchmarkFanout.
const fanoutMembers = 20

// BenchmarkFanout measures a room's fan-out with its history in memory,
// in PostgreSQL written behind (the default), and in PostgreSQL with
// History.Durable: each iteration broadcasts one frame and waits until all
// fanoutMembers members (WebSocket clients on loopback) have read it, and
// p99-ns is the 99th percentile of that. -count runs each sub-benchmark
// that many times in a row; benchmarks/cmd/compare -scenarios store sets
// the stores side by side under a real load instead:
//
//	go test -run '^$' -bench Fanout -count 3 -benchtime 2000x ./pgstore
func BenchmarkFanout(b *testing.B) {
	for _, bc := range []struct {
		name    string
		pg      bool
		durable bool
	}{
		{"memory", false, false},
		{"pgstore", true, false},
		{"pgstore-durable", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := chatroom.History{}
			if bc.pg {
				db, err := pgstore.Open(context.Background(), benchPool(b), pgstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				st, err := db.Room(context.Background(), "lobby", pgstore.Retention{})
				if err != nil {
					b.Fatal(err)
				}
				h = chatroom.History{Store: st, Durable: bc.durable}
			}
			rm := chatroom.New(chatroom.WithName("lobby"), chatroom.WithEnvelope(), chatroom.WithHistory(h))
			srv := httptest.NewServer(rm)
			defer srv.Close()
			defer rm.Close()
			got := make(chan struct{}, fanoutMembers*16)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			// The readers end once ctx is done: cancel first, then wait.
			// (Deferred the other way round, wg.Wait blocked for ever, and
			// a benchmark has no -timeout to end it.)
			defer func() {
				cancel()
				wg.Wait()
			}()
			for range fanoutMembers {
				conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"?nickname=m", nil)
				if err != nil {
					b.Fatal(err)
				}
				conn.SetReadLimit(-1)
				wg.Go(func() {
					defer conn.CloseNow()
					for {
						_, data, err := conn.Read(ctx)
						if err != nil {
							return
						}
						if strings.Contains(string(data), `"bench"`) {
							got <- struct{}{}
						}
					}
				})
			}
			for rm.Len() < fanoutMembers {
				time.Sleep(time.Millisecond) // the joins, before the clock starts
			}
			msg := chatroom.Message{Text: "bench", Nickname: "bench"}
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if _, err := rm.Broadcast(ctx, msg); err != nil {
					b.Fatal(err)
				}
				for range fanoutMembers {
					<-got
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
		})
	}
}

// benchPool returns a pool on a database of the benchmark's own.
func benchPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	return pool(b, newDatabase(b))
}
