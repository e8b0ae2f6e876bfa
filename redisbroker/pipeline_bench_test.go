package redisbroker

import (
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// BenchmarkPacedHop measures the hop of a room's publications through
// Redis under a paced load, one publication a millisecond: from the moment
// a publication is queued to its delivery to another broker's
// subscription. in-flight=8 hands each publication to SendBatch at once,
// with up to 8 batches waiting for Redis's answer, as a room does with a
// broker.PipelineBroker; in-flight=1 publishes what queued while the
// previous batch was in flight in one PublishBatch, as a room does with a
// broker.BatchBroker. Each op is one publication: ns/op is the pacing, the
// figures are p50-µs and p99-µs. The machine's other work shows in them:
// compare the two within one run.
//
//	go test -run '^$' -bench PacedHop -benchtime 3000x
func BenchmarkPacedHop(b *testing.B) {
	r := newRedis(b)
	for _, inFlight := range []int{8, 1} {
		b.Run("in-flight="+strconv.Itoa(inFlight), func(b *testing.B) {
			pub, other := r.broker(b), r.broker(b)
			delivered := make(chan time.Duration, b.N+1)
			// Publications carry the time they were queued; a warm-up
			// publication, before the timer, has none.
			start := time.Now()
			_, err := other.Subscribe(b.Context(), "room", func(p broker.Publication) {
				if len(p.Data) == 8 {
					delivered <- time.Since(start) - time.Duration(binary.BigEndian.Uint64(p.Data))
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := pub.PublishBatch(b.Context(), "room", []broker.Publication{{Data: []byte("warm")}}); err != nil {
				b.Fatal(err)
			}
			send := sendPipelined
			if inFlight == 1 {
				send = sendOneAtATime
			}
			b.ResetTimer()
			send(b, pub, start)
			hops := make([]time.Duration, 0, b.N)
			timeout := time.After(waitTimeout)
			for len(hops) < b.N {
				select {
				case d := <-delivered:
					hops = append(hops, d)
				case <-timeout:
					b.Fatalf("%d of %d publications delivered", len(hops), b.N)
				}
			}
			b.StopTimer()
			slices.Sort(hops)
			b.ReportMetric(float64(hops[len(hops)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(hops[len(hops)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// pace calls f for each of b.N publications, one a millisecond, with the
// publication stamped with its time since start.
func pace(b *testing.B, start time.Time, f func(p broker.Publication)) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for range b.N {
		<-tick.C
		data := binary.BigEndian.AppendUint64(nil, uint64(time.Since(start)))
		f(broker.Publication{Keep: true, Data: data})
	}
}

// sendPipelined hands each publication to SendBatch at once, with up to 8
// waiting for their answers, taken in order on a second goroutine.
func sendPipelined(b *testing.B, pub *Broker, start time.Time) {
	waits := make(chan func() error, 8)
	var wg sync.WaitGroup
	wg.Go(func() {
		for wait := range waits {
			if err := wait(); err != nil {
				b.Error(err)
			}
		}
	})
	pace(b, start, func(p broker.Publication) {
		wait, err := pub.SendBatch(b.Context(), "room", []broker.Publication{p})
		if err != nil {
			b.Fatal(err)
		}
		waits <- wait
	})
	close(waits)
	wg.Wait()
}

// sendOneAtATime queues the publications for a goroutine that publishes
// what is queued in one PublishBatch, one batch at a time.
func sendOneAtATime(b *testing.B, pub *Broker, start time.Time) {
	var mu sync.Mutex
	var queue []broker.Publication
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		stopping := false
		for {
			mu.Lock()
			batch := queue
			queue = nil
			mu.Unlock()
			if len(batch) > 0 {
				if err := pub.PublishBatch(b.Context(), "room", batch); err != nil {
					b.Error(err)
				}
				continue
			}
			if stopping {
				return
			}
			select {
			case <-wake:
			case <-ctx.Done():
				stopping = true // one more look at the queue: pace is done
			}
		}
	})
	pace(b, start, func(p broker.Publication) {
		mu.Lock()
		queue = append(queue, p)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	cancel()
	wg.Wait()
}
