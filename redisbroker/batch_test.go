package redisbroker

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/seed014c2c51/chatroom/broker"
)

var _ broker.BatchBroker = (*Broker)(nil)

// TestPublishBatch checks that a batch arrives whole and in order, its kept
// publications numbered in order, live ones with ID 0, and that History
// keeps what a batch dropped apart from what it kept, as it does for
// publications published one by one.
func TestPublishBatch(t *testing.T) {
	r := newRedis(t)
	pub := r.broker(t, WithHistorySize(4))
	sub := r.broker(t, WithHistorySize(4))
	rec := newRecorder()
	subscribe(t, sub, "b", rec)

	var ps []broker.Publication
	for i := range 10 {
		ps = append(ps, broker.Publication{Keep: i%5 != 0, Data: []byte(strconv.Itoa(i))})
	}
	if err := pub.PublishBatch(context.Background(), "b", ps); err != nil {
		t.Fatal(err)
	}
	var kept []uint64
	for i := range ps {
		p := rec.next(t)
		if string(p.Data) != strconv.Itoa(i) || p.Keep != ps[i].Keep || p.Keep != (p.ID != 0) {
			t.Fatalf("publication %d arrived as %q, Keep %v, ID %d", i, p.Data, p.Keep, p.ID)
		}
		if p.Keep {
			if len(kept) > 0 && p.ID <= kept[len(kept)-1] {
				t.Fatalf("kept ID %d after %d", p.ID, kept[len(kept)-1])
			}
			kept = append(kept, p.ID)
		}
	}
	// 8 kept, 4 in the log: the 4th was the last dropped.
	if got, complete := history(t, sub, "b", 0); !slices.Equal(got, kept[4:]) || complete {
		t.Errorf("History(0) = %v, %v; want %v, false", got, complete, kept[4:])
	}
	if got, complete := history(t, sub, "b", kept[3]); !slices.Equal(got, kept[4:]) || !complete {
		t.Errorf("History(last dropped) = %v, %v; want %v, true", got, complete, kept[4:])
	}
	if got, complete := history(t, sub, "b", kept[2]); !slices.Equal(got, kept[4:]) || complete {
		t.Errorf("History(dropped) = %v, %v; want %v, false", got, complete, kept[4:])
	}

	// Only live publications: delivered, nothing numbered or kept.
	if err := pub.PublishBatch(context.Background(), "b", []broker.Publication{{Data: []byte("x")}, {Data: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"x", "y"} {
		if p := rec.next(t); string(p.Data) != want || p.ID != 0 || p.Keep {
			t.Fatalf("got %+v, want live %q", p, want)
		}
	}
	if got, _ := history(t, sub, "b", 0); !slices.Equal(got, kept[4:]) {
		t.Errorf("live batch changed History: %v", got)
	}
	if err := pub.PublishBatch(context.Background(), "b", nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

// TestPublishBatchOrder publishes batches from two brokers at once: each
// publisher's order holds for every subscriber, and all see one order.
func TestPublishBatchOrder(t *testing.T) {
	r := newRedis(t)
	pubs := []*Broker{r.broker(t), r.broker(t)}
	recs := []*recorder{newRecorder(), newRecorder()}
	subscribe(t, pubs[0], "o", recs[0])
	subscribe(t, r.broker(t), "o", recs[1])
	const n = 1000
	concurrently(t, len(pubs), func(pi int) error {
		for i, size := 0, 1; i < n; size = size%64 + 1 {
			var ps []broker.Publication
			for ; len(ps) < size && i < n; i++ {
				ps = append(ps, broker.Publication{Keep: i%3 != 0, Data: fmt.Appendf(nil, "%d:%d", pi, i)})
			}
			if err := pubs[pi].PublishBatch(context.Background(), "o", ps); err != nil {
				return err
			}
		}
		return nil
	})
	receiveInOrder(t, recs, len(pubs), n, nil)
}
