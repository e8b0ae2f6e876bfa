package chatroom

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strconv"
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

// BenchmarkBroadcastMetrics is BenchmarkBroadcast with 100 members, with
// metrics off and on (WithMetrics, with counters as cheap as Prometheus's:
// atomics). Compare them interleaved, as BENCHMARKS.md says:
//
//	go test -c -o /tmp/chatroom.test
//	for i in 1 2 3 4 5 6; do for m in off on; do
//		/tmp/chatroom.test -test.run '^$' -test.bench "BroadcastMetrics/metrics=$m\$" -test.benchtime 20000x
//	done; done
func BenchmarkBroadcastMetrics(b *testing.B) {
	b.Run("metrics=off", func(b *testing.B) { benchmarkBroadcast(b, 100) })
	b.Run("metrics=on", func(b *testing.B) { benchmarkBroadcast(b, 100, WithMetrics(&countingMetrics{})) })
}

func benchmarkBroadcast(b *testing.B, members int, opts ...Option) {
	benchmarkBroadcastOf(b, broadcastCase{members: members, msg: benchMessage}, opts...)
}

// broadcastCase is what benchmarkBroadcastOf broadcasts, to whom.
type broadcastCase struct {
	members int
	msg     Message
	// wire, if not nil, counts the bytes the members read; the benchmark
	// reports them per frame delivered, as wire-B/frame.
	wire *atomic.Int64
	// skim makes the members raw TCP clients that read each frame's header
	// and skip its payload, inflating nothing, so that the CPU measured is
	// the server's; they send offer's header lines in the handshake. They
	// count what they read in wire.
	skim  bool
	offer string
}

func benchmarkBroadcastOf(b *testing.B, bc broadcastCase, opts ...Option) {
	members := bc.members
	joined := make(chan struct{}, members)
	// Every member connects from one address: no join limit.
	room := New(append([]Option{WithKeepalive(Off, 0), WithJoinLimit(Off, 0)}, opts...)...)
	room.cfg.joined = func(*Member) { joined <- struct{}{} }
	srv := httptest.NewServer(room)
	defer srv.Close()
	defer room.Close()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	conns := make([]func() error, members) // each reads one frame
	for i := range conns {
		if bc.skim {
			c := dialSkimmer(b, srv.Listener.Addr().String(), bc.offer, bc.wire)
			defer c.Close()
			conns[i] = c.skipFrame
		} else {
			c, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			conns[i] = func() error {
				_, r, err := c.Reader(context.Background())
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
				return err
			}
		}
		<-joined
	}
	if bc.wire != nil {
		bc.wire.Store(0) // the handshakes are not the broadcasts'
	}

	// The readers start before the timer and the room closes after it, so
	// that -benchmem counts what broadcasting allocates, not the clients'
	// goroutines or the members' close handshakes.
	start := make(chan struct{})
	var wg sync.WaitGroup
	read := make([]atomic.Int64, len(conns)) // frames each client has read
	for i, next := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Read without allocating.
			for range b.N {
				if err := next(); err != nil {
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
	cpu := cpuTime()
	close(start)
	for n := range b.N {
		if n%(window/4) == 0 {
			waitForReaders(n)
		}
		if _, err := room.Broadcast(ctx, bc.msg); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
	// The process's CPU time, the clients' included: on a shared machine
	// steadier than ns/op.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	if bc.wire != nil {
		b.ReportMetric(float64(bc.wire.Load())/float64(b.N*members), "wire-B/frame")
	}
}

// BenchmarkDecodeClient measures decoding a client frame with and without a
// ref, in a room with the envelope.
func BenchmarkDecodeClient(b *testing.B) {
	for name, data := range map[string][]byte{
		"plain": []byte(`{"message":"こんにちは, this is a typical chat line of moderate length."}`),
		"ref":   []byte(`{"message":"こんにちは, this is a typical chat line of moderate length.","ref":"b7c1e2f0-1"}`),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := decodeClient(data, clientFields{ref: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSendRef measures one member's messages through a real loopback
// WebSocket, one at a time: without a ref (the echo), and with one (the
// echo and the ack, a ref recorded per message).
func BenchmarkSendRef(b *testing.B) {
	for _, ref := range []bool{false, true} {
		b.Run(fmt.Sprintf("ref=%v", ref), func(b *testing.B) {
			room := New(WithEnvelope(), WithKeepalive(Off, 0), WithPacing(Off, 0))
			srv := httptest.NewServer(room)
			defer srv.Close()
			defer room.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"?nickname=ann", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			frames := 1
			if ref {
				frames = 2
			}
			b.ReportAllocs()
			for n := 0; b.Loop(); n++ {
				msg := `{"message":"hello"}`
				if ref {
					msg = `{"message":"hello","ref":"` + strconv.Itoa(n) + `"}`
				}
				if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
					b.Fatal(err)
				}
				for range frames {
					if _, _, err := c.Read(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
