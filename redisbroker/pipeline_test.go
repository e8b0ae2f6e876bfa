package redisbroker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom/broker"
)

// sendBatches sends n batches of perBatch publications to room through
// b.SendBatch, numbered from 0, every kept one of two, without waiting for
// the answers, then waits for them all. between, if not nil, runs after
// the batch of that index is sent; settle, which it may call, waits for the
// answers up to batch j.
func sendBatches(t *testing.T, b *Broker, room string, n, perBatch int, between func(i int, settle func(j int))) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	waits := make([]func() error, 0, n)
	answered := 0
	settle := func(j int) {
		for ; answered <= j && answered < len(waits); answered++ {
			if err := waits[answered](); err != nil {
				t.Errorf("the answer for batch %d to %s: %v", answered, room, err)
			}
		}
	}
	for i := range n {
		ps := make([]broker.Publication, perBatch)
		for j := range ps {
			ps[j] = broker.Publication{Keep: j%2 == 0, Data: []byte(strconv.Itoa(i*perBatch + j))}
		}
		wait, err := b.SendBatch(ctx, room, ps)
		if err != nil {
			t.Errorf("SendBatch %d to %s: %v", i, room, err)
			break
		}
		waits = append(waits, wait)
		if between != nil {
			between(i, settle)
		}
	}
	settle(len(waits))
}

// expectInOrder checks that each recorder receives 0 to n-1, in order,
// and that the kept ones have increasing IDs.
func expectInOrder(t *testing.T, n int, recs ...*recorder) {
	t.Helper()
	for k, rec := range recs {
		var last uint64
		for want := range n {
			p := rec.next(t)
			if diff := cmp.Diff(strconv.Itoa(want), string(p.Data)); diff != "" {
				t.Fatalf("subscriber %d, publication %d (-want +got):\n%s", k, want, diff)
			}
			if p.Keep {
				if p.ID <= last {
					t.Fatalf("subscriber %d, publication %d: ID %d after %d", k, want, p.ID, last)
				}
				last = p.ID
			}
		}
	}
}

// TestSendBatchInOrder: batches in flight at once reach the publisher's own
// subscription and another node's in the order they were sent, and are
// kept in that order.
func TestSendBatchInOrder(t *testing.T) {
	r := newRedis(t)
	pub, other := r.broker(t), r.broker(t)
	recs := []*recorder{newRecorder(), newRecorder()}
	subscribe(t, pub, "room", recs[0])
	subscribe(t, other, "room", recs[1])

	const batches, perBatch = 300, 3
	sendBatches(t, pub, "room", batches, perBatch, nil)
	expectInOrder(t, batches*perBatch, recs...)

	hist, _, err := other.History(t.Context(), "room", 0)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	var got, want []string
	for _, p := range hist {
		got = append(got, string(p.Data))
	}
	for i := batches*perBatch - 1; len(want) < DefaultHistorySize; i-- {
		if i%perBatch%2 == 0 {
			want = append([]string{strconv.Itoa(i)}, want...)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// TestSendBatchScriptFlush: SCRIPT FLUSH while batches are in flight
// loses and reorders none of them, also while other brokers publish
// through the ordinary path, which loads the shared script again at once.
func TestSendBatchScriptFlush(t *testing.T) {
	r := newRedis(t)
	if r.local == nil {
		t.Skip("SCRIPT FLUSH would flush a shared server's scripts (REDIS_URL)")
	}
	pub, other := r.broker(t), r.broker(t)
	recs := []*recorder{newRecorder(), newRecorder()}
	subscribe(t, pub, "room", recs[0])
	subscribe(t, other, "room", recs[1])
	admin := r.client(t, "")

	// The other broker publishes to a room of its own all along, so that
	// the shared script is loaded again between the pipe's batches.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil && i < 100000; i++ {
			_ = other.PublishBatch(ctx, "elsewhere", []broker.Publication{{Keep: true, Data: []byte("x")}})
		}
	})
	const batches, perBatch = 400, 2
	sendBatches(t, pub, "room", batches, perBatch, func(i int, settle func(int)) {
		if i%50 == 25 {
			// Batch i, at least, is in flight; those before are answered,
			// so that no batch meets more than one flush, and a NOSCRIPT
			// is sent again only once (a batch is refused after three).
			settle(i - 1)
			if err := admin.ScriptFlush(t.Context()).Err(); err != nil {
				t.Errorf("SCRIPT FLUSH: %v", err)
			}
		}
	})
	cancel()
	wg.Wait()
	expectInOrder(t, batches*perBatch, recs...)
}

// TestSendBatchRooms: several rooms sending batches at once, each from a
// goroutine of its own, share the connection, and each room's order holds.
func TestSendBatchRooms(t *testing.T) {
	r := newRedis(t)
	pub, other := r.broker(t), r.broker(t)
	const rooms, batches, perBatch = 8, 100, 2
	var recs [rooms][2]*recorder
	for i := range rooms {
		room := "room" + strconv.Itoa(i)
		recs[i] = [2]*recorder{newRecorder(), newRecorder()}
		subscribe(t, pub, room, recs[i][0])
		subscribe(t, other, room, recs[i][1])
	}
	var wg sync.WaitGroup
	for i := range rooms {
		wg.Go(func() { sendBatches(t, pub, "room"+strconv.Itoa(i), batches, perBatch, nil) })
	}
	wg.Wait()
	for i := range rooms {
		expectInOrder(t, batches*perBatch, recs[i][0], recs[i][1])
	}
}

// TestSendBatchClient: with a client that retries, SendBatch publishes
// before it returns, and the order holds as well.
func TestSendBatchClient(t *testing.T) {
	r := newRedis(t)
	o := *r.opts
	o.MaxRetries = 2
	c := redis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	pub := r.brokerOn(t, c)
	rec := newRecorder()
	subscribe(t, pub, "room", rec)
	sendBatches(t, pub, "room", 50, 2, nil)
	expectInOrder(t, 100, rec)
}

// TestSendBatchRedisGone: a Redis that went away refuses the batches sent
// afterwards as unavailable, once the broker knows, and batches flow again
// once it is back.
func TestSendBatchRedisGone(t *testing.T) {
	r := newLocalRedis(t)
	pub := r.broker(t)
	sendBatches(t, pub, "room", 5, 1, nil)
	r.local.kill()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for {
		wait, err := pub.SendBatch(ctx, "room", []broker.Publication{{Keep: true, Data: []byte("x")}})
		if err == nil {
			err = wait()
		}
		if err == nil {
			t.Fatal("SendBatch with Redis killed: no error")
		}
		if errors.Is(err, broker.ErrUnavailable) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("SendBatch with Redis killed: %v, never broker.ErrUnavailable", err)
		}
	}
	r.local.restart()
	rec := newRecorder()
	for {
		// Subscribe confirms once Redis is back.
		_, err := pub.Subscribe(ctx, "room", rec.deliver)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Subscribe after the restart: %v", err)
		}
	}
	sendBatches(t, pub, "room", 5, 1, nil)
	expectInOrder(t, 5, rec)
}

// TestSendBatchRedisHangs: a batch that Redis does not answer within the
// broker's timeout fails, its outcome open (Redis may run it when it
// resumes); the connection is dropped, and once Redis answers again the
// next batches go through on a new one.
func TestSendBatchRedisHangs(t *testing.T) {
	r := newLocalRedis(t)
	pub, other := r.broker(t, WithTimeout(300*time.Millisecond)), r.broker(t)
	rec := newRecorder()
	subscribe(t, other, "room", rec)
	sendBatches(t, pub, "room", 3, 1, nil)
	expectInOrder(t, 3, rec)

	r.local.pause()
	wait, err := pub.SendBatch(t.Context(), "room", []broker.Publication{{Keep: true, Data: []byte("during")}})
	if err != nil {
		r.local.resume()
		t.Fatalf("SendBatch to a Redis that hangs: %v, want an error from wait", err)
	}
	err = wait()
	r.local.resume()
	if err == nil || errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("the answer from a Redis that hangs: %v, want an error without broker.ErrUnavailable", err)
	}
	// Redis runs the batch it had received when it resumes.
	if got := rec.nextData(t); got != "during" {
		t.Fatalf("after the resume: got %q, want the batch Redis received before it hung", got)
	}
	sendBatches(t, pub, "room", 3, 1, nil)
	expectInOrder(t, 3, rec)
}
