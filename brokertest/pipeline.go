package brokertest

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// testPipeline checks a broker.PipelineBroker's promise: batches sent one
// after the other without waiting for the broker's answers reach every
// subscriber, on this connection and another, in the order they were sent.
func testPipeline(t *testing.T, b Backend) {
	pub := b.Connect(t)
	pb, ok := pub.(broker.PipelineBroker)
	if !ok {
		closeBroker(pub)
		t.Skip("not a broker.PipelineBroker")
	}
	other := b.Connect(t)
	t.Cleanup(func() { closeBroker(pub); closeBroker(other) })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	const batches, perBatch = 200, 3
	total := batches * perBatch
	var received []chan string
	for _, br := range []broker.Broker{pub, other} {
		ch := make(chan string, total)
		sub, err := br.Subscribe(ctx, "pipeline", func(p broker.Publication) { ch <- string(p.Data) })
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		received = append(received, ch)
	}
	var waits []func() error
	for i := range batches {
		ps := make([]broker.Publication, perBatch)
		for j := range ps {
			ps[j] = broker.Publication{Keep: j%2 == 0, Data: []byte(strconv.Itoa(i*perBatch + j))}
		}
		wait, err := pb.SendBatch(ctx, "pipeline", ps)
		if err != nil {
			t.Fatalf("SendBatch %d: %v", i, err)
		}
		waits = append(waits, wait)
	}
	for i, wait := range waits {
		if err := wait(); err != nil {
			t.Fatalf("the answer for batch %d: %v", i, err)
		}
	}
	for k, ch := range received {
		for want := range total {
			select {
			case got := <-ch:
				if got != strconv.Itoa(want) {
					t.Fatalf("subscriber %d: got publication %s, want %d (reordered, lost or duplicated)", k, got, want)
				}
			case <-ctx.Done():
				t.Fatalf("subscriber %d: publication %d did not arrive", k, want)
			}
		}
	}
}

func closeBroker(b broker.Broker) {
	if c, ok := b.(io.Closer); ok {
		_ = c.Close()
	}
}
