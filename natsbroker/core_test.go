package natsbroker_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

var _ broker.PipelineBroker = (*natsbroker.Broker)(nil)

// A plain Broker must not look like a HistoryBroker or a PresenceBroker to
// the room, which tells them apart by type.
func TestCoreIsPlainBroker(t *testing.T) {
	var b broker.Broker = &natsbroker.Broker{}
	if _, ok := b.(broker.HistoryBroker); ok {
		t.Error("Broker is a HistoryBroker")
	}
	if _, ok := b.(broker.PresenceBroker); ok {
		t.Error("Broker is a PresenceBroker")
	}
}

func TestNewRejects(t *testing.T) {
	s := startServer(t, nil)
	nc, _ := connect(t, s)
	if _, err := natsbroker.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	for _, p := range []string{"", ".", "a.", ".a", "a..b", "a*", "a.>", "a b", "é"} {
		if _, err := natsbroker.New(nc, natsbroker.WithPrefix(p)); err == nil {
			t.Errorf("WithPrefix(%q) accepted", p)
		}
	}
	for _, p := range []string{"a", "app-1.chat_2", "A.B.C"} {
		if _, err := natsbroker.New(nc, natsbroker.WithPrefix(p)); err != nil {
			t.Errorf("WithPrefix(%q): %v", p, err)
		}
	}
}

func TestCorePublishSubscribe(t *testing.T) {
	s := startServer(t, nil)
	ncA, _ := connect(t, s)
	ncB, _ := connect(t, s)
	a, b := newCore(t, ncA), newCore(t, ncB)
	ra, _ := subscribe(t, a, "lobby")
	rb, _ := subscribe(t, b, "lobby")

	publish(t, a, "lobby", true, "from a")
	publish(t, b, "lobby", false, "from b")
	for name, r := range map[string]*recorder{"a": ra, "b": rb} {
		got := r.wait(t, 2)
		slices.SortFunc(got, func(x, y broker.Publication) int { return slices.Compare(x.Data, y.Data) })
		want := []broker.Publication{{Keep: true, Data: []byte("from a")}, {Data: []byte("from b")}}
		for i := range want {
			if got[i].ID != 0 || got[i].Keep != want[i].Keep || string(got[i].Data) != string(want[i].Data) {
				t.Errorf("node %s got %+v, want %+v", name, got[i], want[i])
			}
		}
	}
}

func TestCoreSeveralSubscriptionsToOneRoom(t *testing.T) {
	s := startServer(t, nil)
	ncA, _ := connect(t, s)
	ncB, _ := connect(t, s)
	a, b := newCore(t, ncA), newCore(t, ncB)
	var recs []*recorder
	for range 3 {
		r, _ := subscribe(t, a, "room")
		recs = append(recs, r)
	}
	r, _ := subscribe(t, b, "room")
	recs = append(recs, r)
	const n = 50
	for i := range n {
		publish(t, b, "room", i%2 == 0, strconv.Itoa(i))
	}
	for j, r := range recs {
		checkSequence(t, fmt.Sprintf("subscription %d", j), r.wait(t, n), "", n)
	}
}

// checkSequence checks that pubs are exactly the publications prefix0 ...
// prefix<n-1>, in that order, even ones kept.
func checkSequence(t *testing.T, who string, pubs []broker.Publication, prefix string, n int) {
	t.Helper()
	if len(pubs) != n {
		t.Fatalf("%s: got %d publications, want %d", who, len(pubs), n)
	}
	for i, p := range pubs {
		if string(p.Data) != prefix+strconv.Itoa(i) || p.Keep != (i%2 == 0) {
			t.Fatalf("%s: publication %d is %q (keep %v), want %q (keep %v)", who, i, p.Data, p.Keep, prefix+strconv.Itoa(i), i%2 == 0)
		}
	}
}

func TestCorePublisherOrder(t *testing.T) {
	s := startServer(t, nil)
	ncA, _ := connect(t, s)
	ncB, _ := connect(t, s)
	a, b := newCore(t, ncA), newCore(t, ncB)
	local, _ := subscribe(t, a, "room")
	remote, _ := subscribe(t, b, "room")
	const n = 1000
	for i := range n {
		publish(t, a, "room", i%2 == 0, strconv.Itoa(i))
	}
	checkSequence(t, "local", local.wait(t, n), "", n)
	checkSequence(t, "remote", remote.wait(t, n), "", n)
}

// rooms are names that must not collide once encoded: dots (the subject
// separator), wildcards, the empty name, and other scripts.
var rooms = []string{"", "a", "A", "a.b", "a.b.c", "a.", ".a", "a*", ">", "*", "ça-va_~", "日本語", "a b", "r", "ra"}

func TestCoreRoomIsolation(t *testing.T) {
	s := startServer(t, nil)
	ncA, _ := connect(t, s)
	ncB, _ := connect(t, s)
	a, b := newCore(t, ncA), newCore(t, ncB)
	testRoomIsolation(t, a, b)
}

func testRoomIsolation(t *testing.T, a, b broker.Broker) {
	recs := make(map[string]*recorder)
	for _, room := range rooms {
		recs[room], _ = subscribe(t, b, room)
	}
	for _, room := range rooms {
		publish(t, a, room, true, "to "+room)
	}
	// Publications of one publisher arrive in order: once each room has
	// its fence, anything else sent to it would have arrived.
	for _, room := range rooms {
		publish(t, a, room, false, "fence")
	}
	for _, room := range rooms {
		got := datas(recs[room].wait(t, 2))
		if want := []string{"to " + room, "fence"}; !slices.Equal(got, want) {
			t.Errorf("room %q got %q, want %q", room, got, want)
		}
	}
}

func TestCoreUnsubscribe(t *testing.T) {
	s := startServer(t, nil)
	ncA, _ := connect(t, s)
	ncB, _ := connect(t, s)
	a, b := newCore(t, ncA), newCore(t, ncB)
	testUnsubscribe(t, a, b)
}

// testUnsubscribe unsubscribes while publications flow, and checks that
// deliver is not called once Unsubscribe has returned.
func testUnsubscribe(t *testing.T, a, b broker.Broker) {
	var unsubscribed, late atomic.Bool
	r := newRecorder()
	sub, err := b.Subscribe(ctx(t), "room", func(p broker.Publication) {
		if unsubscribed.Load() {
			late.Store(true)
		}
		r.deliver(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	witness, _ := subscribe(t, b, "room")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	pctx := ctx(t)
	wg.Go(func() {
		for i := range 100000 {
			select {
			case <-stop:
				return
			default:
			}
			if err := a.Publish(pctx, "room", broker.Publication{Data: []byte(strconv.Itoa(i))}); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	})
	r.wait(t, 20)
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	unsubscribed.Store(true)
	close(stop)
	wg.Wait()
	if err := sub.Unsubscribe(); err != nil {
		t.Errorf("second Unsubscribe: %v", err)
	}
	publish(t, a, "room", false, "fence")
	witness.waitData(t, "fence")
	if late.Load() {
		t.Error("deliver called after Unsubscribe returned")
	}
	if slices.Contains(datas(r.all()), "fence") {
		t.Error("unsubscribed subscription got the fence")
	}
}

func TestCoreUnsubscribeWaitsForDelivery(t *testing.T) {
	s := startServer(t, nil)
	nc, _ := connect(t, s)
	testUnsubscribeWaits(t, newCore(t, nc))
}

// testUnsubscribeWaits checks that Unsubscribe returns only once a delivery
// in progress has returned.
func testUnsubscribeWaits(t *testing.T, b broker.Broker) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sub, err := b.Subscribe(ctx(t), "room", func(broker.Publication) {
		once.Do(func() {
			close(entered)
			<-release
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, "room", true, "x")
	waitFor(t, entered, "delivery")
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		if err := sub.Unsubscribe(); err != nil {
			t.Error(err)
		}
	}()
	// Only a bounded wait can show that something does not happen.
	select {
	case <-returned:
		t.Error("Unsubscribe returned during a delivery")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	waitFor(t, returned, "Unsubscribe")
}

func TestCoreClose(t *testing.T) {
	s := startServer(t, nil)
	ncA, _ := connect(t, s)
	ncB, _ := connect(t, s)
	a, b := newCore(t, ncA), newCore(t, ncB)
	testClose(t, a, b, a.Close)
	if !ncA.IsConnected() {
		t.Error("Close closed the host's connection")
	}
}

// testClose closes a (with closeA) and checks that its subscriptions end
// and its calls fail with broker.ErrClosed; b keeps working.
func testClose(t *testing.T, a, b broker.Broker, closeA func() error) {
	ra, sub := subscribe(t, a, "room")
	rb, _ := subscribe(t, b, "room")
	publish(t, b, "room", true, "before")
	ra.waitData(t, "before")
	if err := closeA(); err != nil {
		t.Fatal(err)
	}
	if err := closeA(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := a.Publish(ctx(t), "room", broker.Publication{}); !errors.Is(err, broker.ErrClosed) || !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish after Close: %v, want broker.ErrClosed, which is broker.ErrUnavailable", err)
	}
	if _, err := a.Subscribe(ctx(t), "room", func(broker.Publication) {}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Errorf("Unsubscribe after Close: %v", err)
	}
	publish(t, b, "room", true, "after")
	rb.waitData(t, "after")
	if got := datas(ra.all()); !slices.Equal(got, []string{"before"}) {
		t.Errorf("closed broker delivered %q", got)
	}
}
