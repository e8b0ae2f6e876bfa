package natsbroker_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

var (
	_ broker.BatchBroker = (*natsbroker.Broker)(nil)
	_ broker.BatchBroker = (*natsbroker.JetStreamBroker)(nil)
)

// publishBatches publishes n publications in batches of 1 to 16, every
// other one kept, as checkSequence expects.
func publishBatches(t *testing.T, b broker.BatchBroker, room string, n int) {
	t.Helper()
	for i, size := 0, 1; i < n; size = size%16 + 1 {
		var ps []broker.Publication
		for ; len(ps) < size && i < n; i++ {
			ps = append(ps, broker.Publication{Keep: i%2 == 0, Data: []byte(strconv.Itoa(i))})
		}
		if err := b.PublishBatch(ctx(t), room, ps); err != nil {
			t.Fatalf("PublishBatch: %v", err)
		}
	}
}

func TestCorePublishBatchOrder(t *testing.T) {
	s := startServer(t, nil)
	ncA, _ := connect(t, s)
	ncB, _ := connect(t, s)
	a, b := newCore(t, ncA), newCore(t, ncB)
	local, _ := subscribe(t, a, "room")
	remote, _ := subscribe(t, b, "room")
	const n = 1000
	publishBatches(t, a, "room", n)
	checkSequence(t, "local", local.wait(t, n), "", n)
	checkSequence(t, "remote", remote.wait(t, n), "", n)
}

func TestJetStreamPublishBatchOrder(t *testing.T) {
	_, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	local, _ := subscribe(t, a, "room")
	remote, _ := subscribe(t, b, "room")
	const n = 1000
	publishBatches(t, a, "room", n)
	for who, r := range map[string]*recorder{"local": local, "remote": remote} {
		got := r.wait(t, n)
		checkSequence(t, who, got, "", n)
		checkIDs(t, who, got)
	}
	pubs, _, err := b.History(ctx(t), "room", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != natsbroker.DefaultHistory || string(pubs[len(pubs)-1].Data) != strconv.Itoa(n-2) {
		t.Errorf("History = %q, want the last %d kept publications", datas(pubs), natsbroker.DefaultHistory)
	}
}

// A batch finds a lost stream again, as Publish does.
func TestJetStreamPublishBatchStreamLost(t *testing.T) {
	s, a, b := jsPair(t, natsbroker.JetStreamConfig{History: 10})
	r, _ := subscribe(t, b, "room")
	publish(t, a, "room", true, "0")
	r.waitData(t, "0")

	nc, _ := connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx(t), "CHATROOM"); err != nil {
		t.Fatal(err)
	}
	ps := []broker.Publication{{Keep: true, Data: []byte("1")}, {Data: []byte("2")}}
	if err := a.PublishBatch(ctx(t), "room", ps); err != nil {
		t.Fatalf("PublishBatch after the stream was deleted: %v", err)
	}
	r.waitData(t, "2")
}

func TestPublishBatchAfterClose(t *testing.T) {
	s := startServer(t, nil)
	nc, _ := connect(t, s)
	core := newCore(t, nc)
	jsb := newJS(t, nc, natsbroker.JetStreamConfig{})
	for name, b := range map[string]interface {
		broker.BatchBroker
		Close() error
	}{"core": core, "jetstream": jsb} {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		err := b.PublishBatch(ctx(t), "room", []broker.Publication{{Data: []byte("x")}})
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s: PublishBatch after Close: %v", name, err)
		}
	}
}
