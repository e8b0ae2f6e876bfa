package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

func TestPublishSubscribeAcrossNodes(t *testing.T) {
	r := newRedis(t)
	n1, n2 := r.broker(t), r.broker(t)
	rec1, rec2 := newRecorder(), newRecorder()
	subscribe(t, n1, "lobby", rec1)
	subscribe(t, n2, "lobby", rec2)

	publish(t, n1, "lobby", false, "hello")
	for i, rec := range []*recorder{rec1, rec2} {
		p := rec.next(t)
		if string(p.Data) != "hello" || p.ID != 0 || p.Keep {
			t.Errorf("node %d got %+v, want hello with ID 0, not kept", i+1, p)
		}
	}
	publish(t, n2, "lobby", true, "kept")
	var ids []uint64
	for i, rec := range []*recorder{rec1, rec2} {
		p := rec.next(t)
		if string(p.Data) != "kept" || p.ID == 0 || !p.Keep {
			t.Errorf("node %d got %+v, want kept with an ID", i+1, p)
		}
		ids = append(ids, p.ID)
	}
	if ids[0] != ids[1] {
		t.Errorf("the nodes got IDs %d and %d for one publication", ids[0], ids[1])
	}
}

func TestPublishLeavesDataAlone(t *testing.T) {
	r := newRedis(t)
	b := r.broker(t)
	for _, keep := range []bool{false, true} {
		data := []byte("unchanged")
		if err := b.Publish(context.Background(), "r", broker.Publication{Keep: keep, Data: data}); err != nil {
			t.Fatal(err)
		}
		if string(data) != "unchanged" {
			t.Errorf("keep=%v: Publish changed Data to %q", keep, data)
		}
	}
}

func TestEmptyAndBinaryData(t *testing.T) {
	r := newRedis(t)
	b := r.broker(t)
	rec := newRecorder()
	subscribe(t, b, "bin", rec)
	bin := string([]byte{0, 1, 2, 0xff, '\n', 0})
	for _, keep := range []bool{false, true} {
		publish(t, b, "bin", keep, "")
		publish(t, b, "bin", keep, bin)
		if got := rec.nextData(t); got != "" {
			t.Errorf("keep=%v: got %q, want empty", keep, got)
		}
		if got := rec.nextData(t); got != bin {
			t.Errorf("keep=%v: got %q, want %q", keep, got, bin)
		}
	}
}

func TestSeveralSubscriptionsPerRoom(t *testing.T) {
	r := newRedis(t)
	n1, n2 := r.broker(t), r.broker(t)
	recs := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	var subs []broker.Subscription
	for _, rec := range recs {
		subs = append(subs, subscribe(t, n1, "room", rec))
	}
	publish(t, n2, "room", true, "one")
	for i, rec := range recs {
		if got := rec.nextData(t); got != "one" {
			t.Errorf("subscription %d got %q, want one", i, got)
		}
	}

	if err := subs[0].Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	publish(t, n2, "room", false, "two")
	for i, rec := range recs[1:] {
		if got := rec.nextData(t); got != "two" {
			t.Errorf("subscription %d got %q, want two", i+1, got)
		}
	}
	// The reader delivered "two" to the others, so it would have to the
	// first by now.
	if !recs[0].empty() {
		t.Errorf("unsubscribed subscription got %q", recs[0].nextData(t))
	}

	// With every subscription gone, Redis is unsubscribed; subscribing
	// again subscribes it again.
	for _, s := range subs[1:] {
		if err := s.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}
	again := newRecorder()
	subscribe(t, n1, "room", again)
	publish(t, n2, "room", false, "three")
	if got := again.nextData(t); got != "three" {
		t.Errorf("new subscription got %q, want three", got)
	}
	for i, rec := range recs {
		if !rec.empty() {
			t.Errorf("unsubscribed subscription %d got %q", i, rec.nextData(t))
		}
	}
}

// TestOrder publishes from two nodes at once, kept and not kept mixed:
// every subscriber must see each publisher's publications in its order,
// all subscribers the same order, and the kept ones in the order of their
// IDs.
func TestOrder(t *testing.T) {
	r := newRedis(t)
	pubs := []*Broker{r.broker(t), r.broker(t)}
	subs := []*Broker{pubs[0], r.broker(t)}
	recs := []*recorder{newRecorder(), newRecorder()}
	for i, b := range subs {
		subscribe(t, b, "order", recs[i])
	}
	const n = 1000
	concurrently(t, len(pubs), func(pi int) error {
		for i := range n {
			p := broker.Publication{Keep: i%3 != 0, Data: fmt.Appendf(nil, "%d:%d", pi, i)}
			if err := pubs[pi].Publish(context.Background(), "order", p); err != nil {
				return err
			}
		}
		return nil
	})
	lastIDs := make([]uint64, len(recs))
	receiveInOrder(t, recs, len(pubs), n, func(si int, p broker.Publication, i int) {
		if p.Keep != (i%3 != 0) || p.Keep != (p.ID != 0) {
			t.Fatalf("subscriber %d: %q has Keep %v, ID %d", si, p.Data, p.Keep, p.ID)
		}
		if p.Keep {
			if p.ID <= lastIDs[si] {
				t.Fatalf("subscriber %d: kept ID %d after %d", si, p.ID, lastIDs[si])
			}
			lastIDs[si] = p.ID
		}
	})
}

// TestIsolation checks that rooms, whatever their names, and brokers with
// different prefixes do not see each other's publications.
func TestIsolation(t *testing.T) {
	r := newRedis(t)
	sub, pub := r.broker(t), r.broker(t)
	rooms := []string{"a", "a}", "{a}", "}", "{", "%", "%7D", "a:b", "", "日本語", "Ῥόδος", "e\u0301", "a-b_c.d~e"}
	recs := make([]*recorder, len(rooms))
	for i, room := range rooms {
		recs[i] = newRecorder()
		subscribe(t, sub, room, recs[i])
	}
	for _, room := range rooms {
		publish(t, pub, room, true, "to "+room)
	}
	for _, room := range rooms {
		publish(t, pub, room, false, "end")
	}
	// One connection carries every room of sub, in the order Redis
	// published: a stray publication would come before "end".
	for i, room := range rooms {
		if got := recs[i].nextData(t); got != "to "+room {
			t.Errorf("room %q got %q first", room, got)
		}
		if got := recs[i].nextData(t); got != "end" {
			t.Errorf("room %q got %q second", room, got)
		}
	}

	other := New(r.client(t, ""), WithKeyPrefix(r.prefix+"-other"))
	defer other.Close()
	rec := newRecorder()
	subscribe(t, other, "a", rec)
	publish(t, pub, "a", true, "default prefix")
	if err := other.Publish(context.Background(), "a", broker.Publication{Data: []byte("end")}); err != nil {
		t.Fatal(err)
	}
	if got := rec.nextData(t); got != "end" {
		t.Errorf("another prefix got %q", got)
	}
	h, _, err := other.History(context.Background(), "a", 0)
	if err != nil || len(h) != 0 {
		t.Errorf("another prefix's History = %v, %v; want nothing", h, err)
	}
}

// TestSubscribeConfirmed checks that a publication made as soon as
// Subscribe has returned reaches the subscription, including when the room
// was just unsubscribed, and when many subscribe at once.
func TestSubscribeConfirmed(t *testing.T) {
	r := newRedis(t)
	sub, pub := r.broker(t), r.broker(t)
	for i := range 50 {
		room := "fresh" + strconv.Itoa(i)
		rec := newRecorder()
		subscribe(t, sub, room, rec)
		publish(t, pub, room, false, "x")
		if got := rec.nextData(t); got != "x" {
			t.Fatalf("got %q", got)
		}
	}
	for i := range 20 {
		old := subscribe(t, sub, "flap", newRecorder())
		if err := old.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		s := subscribe(t, sub, "flap", rec)
		publish(t, pub, "flap", false, strconv.Itoa(i))
		if got := rec.nextData(t); got != strconv.Itoa(i) {
			t.Fatalf("got %q, want %d", got, i)
		}
		if err := s.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	const n = 40
	recs := make([]*recorder, n)
	errs := make(chan error, n)
	for i := range n {
		recs[i] = newRecorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := "many" + strconv.Itoa(i%8)
			if _, err := sub.Subscribe(context.Background(), room, recs[i].deliver); err != nil {
				errs <- err
				return
			}
			if err := pub.Publish(context.Background(), room, broker.Publication{Data: []byte(strconv.Itoa(i))}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, rec := range recs {
		// Each gets its own publication, perhaps after others published
		// to its room later in Subscribe order but sooner in time.
		want := strconv.Itoa(i)
		for range n {
			if rec.nextData(t) == want {
				break
			}
		}
	}
}

// TestUnsubscribeStopsDelivery unsubscribes while publications stream in:
// deliver must not run once Unsubscribe has returned.
func TestUnsubscribeStopsDelivery(t *testing.T) {
	r := newRedis(t)
	sub, pub := r.broker(t), r.broker(t)
	var unsubscribed, late atomic.Bool
	got := make(chan struct{}, 10000)
	s, err := sub.Subscribe(context.Background(), "stream", func(p broker.Publication) {
		if unsubscribed.Load() {
			late.Store(true)
		}
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	witness := newRecorder()
	subscribe(t, sub, "stream", witness)

	stop := make(chan struct{})
	published := make(chan error, 1)
	go func() {
		for i := range 100000 {
			select {
			case <-stop:
				published <- nil
				return
			default:
			}
			if err := pub.Publish(context.Background(), "stream", broker.Publication{Data: []byte(strconv.Itoa(i))}); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for range 20 {
		select {
		case <-got:
		case <-timer.C:
			t.Fatal("nothing delivered")
		}
	}
	if err := s.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	unsubscribed.Store(true)
	// Once the witness has received what was published after Unsubscribe
	// returned, a late delivery would have happened.
	marker := "after unsubscribe"
	publish(t, pub, "stream", false, marker)
	for range 100000 {
		if witness.nextData(t) == marker {
			break
		}
	}
	close(stop)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if late.Load() {
		t.Error("deliver was called after Unsubscribe returned")
	}
	if err := s.Unsubscribe(); err != nil {
		t.Errorf("second Unsubscribe: %v", err)
	}
}

func TestSubscribeArguments(t *testing.T) {
	r := newRedis(t)
	b := r.broker(t)
	if _, err := b.Subscribe(context.Background(), "r", nil); err == nil {
		t.Error("Subscribe with nil deliver succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Subscribe(ctx, "r", newRecorder().deliver); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a cancelled context: %v, want context.Canceled", err)
	}
	if err := b.Publish(ctx, "r", broker.Publication{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestClose(t *testing.T) {
	r := newRedis(t)
	c := r.client(t, "")
	b := r.brokerOn(t, c)
	pub := r.broker(t)
	var closed, late atomic.Bool
	s, err := b.Subscribe(context.Background(), "r", func(broker.Publication) {
		if closed.Load() {
			late.Store(true)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, "r", true, "before")

	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-timer.C:
		t.Fatal("Close did not return")
	}
	closed.Store(true)

	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s after Close: %v, want broker.ErrClosed", what, err)
		}
	}
	check("Publish", b.Publish(ctx, "r", broker.Publication{Keep: true}))
	if err := b.Publish(ctx, "r", broker.Publication{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish after Close: %v, want broker.ErrUnavailable", err)
	}
	_, err = b.Subscribe(ctx, "r", func(broker.Publication) {})
	check("Subscribe", err)
	_, _, err = b.History(ctx, "r", 0)
	check("History", err)
	check("SetPresence", b.SetPresence(ctx, "r", "n", []string{"a"}, time.Second))
	_, err = b.Presence(ctx, "r")
	check("Presence", err)
	if err := s.Unsubscribe(); err != nil {
		t.Errorf("Unsubscribe after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The client is the host's: still open.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("client after Close: %v", err)
	}
	// Close has waited for the reader to exit, so nothing more is
	// delivered, whatever is published.
	rec := newRecorder()
	subscribe(t, pub, "r", rec)
	publish(t, pub, "r", false, "after")
	rec.next(t)
	if late.Load() {
		t.Error("deliver was called after Close returned")
	}
}

// TestCloseUnused closes a broker that never subscribed.
func TestCloseUnused(t *testing.T) {
	r := newRedis(t)
	b := New(r.client(t, ""))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
