package chatroom

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
)

var benchMessage = Message{Nickname: "sei", Text: "こんにちは, this is a typical chat line of moderate length."}

func BenchmarkEncode(b *testing.B) {
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf = benchMessage.appendJSON(buf[:0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(benchMessage); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeInbound(b *testing.B) {
	data := []byte(`{"message":"こんにちは, this is a typical chat line of moderate length."}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := decodeInbound(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcast measures fan-out through real loopback WebSockets: one
// op is one Broadcast delivered to every member, and deliveries/s counts
// frames received by all members together.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			benchmarkBroadcast(b, n)
		})
	}
}

func benchmarkBroadcast(b *testing.B, members int) {
	joined := make(chan struct{}, members)
	// Every member connects from one address: no join limit.
	room := New(WithKeepalive(Off, 0), WithJoinLimit(Off, 0))
	room.cfg.joined = func(*Member) { joined <- struct{}{} }
	srv := httptest.NewServer(room)
	defer srv.Close()
	defer room.Close()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	conns := make([]*websocket.Conn, members)
	for i := range conns {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		conns[i] = c
		<-joined
	}

	// The readers start before the timer and the room closes after it, so
	// that -benchmem counts what broadcasting allocates, not the clients'
	// goroutines or the members' close handshakes.
	start := make(chan struct{})
	var wg sync.WaitGroup
	read := make([]atomic.Int64, len(conns)) // frames each client has read
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Read without allocating.
			for range b.N {
				_, r, err := c.Reader(context.Background())
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
				if err != nil {
					b.Error(err)
					return
				}
				read[i].Add(1)
			}
		}()
	}
	// Broadcast never waits for readers, so a loop of b.N broadcasts would
	// overrun the members' queues and have them cut as too slow. The loop
	// keeps at most window broadcasts ahead of the slowest client.
	const window = 1024
	waitForReaders := func(sent int) {
		for i := range read {
			for read[i].Load() < int64(sent-window) {
				if ctx.Err() != nil {
					b.Fatal("readers stopped keeping up")
				}
				runtime.Gosched()
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	close(start)
	for n := range b.N {
		if n%(window/4) == 0 {
			waitForReaders(n)
		}
		if _, err := room.Broadcast(ctx, benchMessage); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
}
