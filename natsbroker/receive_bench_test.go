package natsbroker_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/internal/cputime"
)

// BenchmarkReceive measures what a node's broker client spends on each
// publication it receives on core NATS, one at a time per room, as a
// node receives the other nodes' heartbeats: 1,000 rooms subscribed on
// one connection, publications of a heartbeat digest's size sent round
// robin over them from another connection, against a nats-server process
// (its CPU is not counted). The sender's own CPU is measured in a round to
// 1,000 rooms nobody subscribes, the two rounds alternating, and
// subtracted: receive-µs/pub is the subscriber's, send-µs/pub the
// sender's; sub-heap-B/room and sub-stack-B/room are what subscribing
// cost per room. In bursts, the subscriber reads many publications per system
// call; paced at 20,000/s, what a node of the 1M example in docs/cluster.md
// receives in heartbeats, they arrive a few at a time, as heartbeats do.
//
//	cd natsbroker && go test -run '^$' -bench Receive -benchtime 1x -count 3 .
func BenchmarkReceive(b *testing.B) {
	for _, rate := range []int{0, 20000} {
		name := "burst"
		if rate > 0 {
			name = "paced-" + strconv.Itoa(rate) + "/s"
		}
		b.Run(name, func(b *testing.B) { benchmarkReceive(b, rate) })
	}
}

// benchmarkReceive is BenchmarkReceive at a rate of publications per
// second, or as fast as they go with 0.
func benchmarkReceive(b *testing.B, rate int) {
	const (
		rooms    = 1000
		perRound = 20000
	)
	p := startProcess(b, buildServer(b))
	pubNC, _ := connectURL(b, p.url())
	subNC, _ := connectURL(b, p.url())
	pub, sub := newCore(b, pubNC), newCore(b, subNC)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var got, target atomic.Int64
	target.Store(-1)
	done := make(chan struct{}, 1)
	heap0, stack0 := memory()
	for i := range rooms {
		s, err := sub.Subscribe(ctx, "room"+strconv.Itoa(i), func(broker.Publication) {
			if got.Add(1) == target.Load() {
				done <- struct{}{}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = s.Unsubscribe() }()
	}
	heap1, stack1 := memory()
	// About a digest heartbeat's size (cluster_wire.go): a node's ID, a
	// count and a hash.
	beat := []broker.Publication{{Data: []byte(`{"node":"8f3a0c9e1b2d4f67","snapshot":true,"count":10,"hash":"5f1d3a9c0b7e2a44"}`)}}
	send := func(prefix string) {
		var wait func() error
		start := time.Now()
		for i := range perRound {
			if rate > 0 {
				// A pace, not a wait for an event: publication i is due
				// i/rate seconds after the first.
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
			}
			var err error
			if wait, err = pub.SendBatch(ctx, prefix+strconv.Itoa(i%rooms), beat); err != nil {
				b.Fatal(err)
			}
		}
		if err := wait(); err != nil { // the last round trip: the server has them all
			b.Fatal(err)
		}
	}
	var sending, both time.Duration
	for b.Loop() {
		start := cputime.Process()
		send("nobody")
		sending += cputime.Process() - start

		target.Store(got.Load() + perRound)
		start = cputime.Process()
		send("room")
		select {
		case <-done:
		case <-ctx.Done():
			b.Fatalf("received %d of %d", got.Load()-(target.Load()-perRound), perRound)
		}
		both += cputime.Process() - start
	}
	pubs := float64(b.N * perRound)
	b.ReportMetric(float64((both-sending).Nanoseconds())/1e3/pubs, "receive-µs/pub")
	b.ReportMetric(float64(sending.Nanoseconds())/1e3/pubs, "send-µs/pub")
	// What a subscribed room costs the node's broker client: nats.go gives
	// each subscription a goroutine of its own.
	b.ReportMetric(float64(heap1-heap0)/rooms, "sub-heap-B/room")
	b.ReportMetric(float64(stack1-stack0)/rooms, "sub-stack-B/room")
}

// memory returns the live heap, after a full collection, and the
// goroutines' stacks, in bytes.
func memory() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.StackInuse)
}
