package natsbroker_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

var (
	_ broker.HistoryBroker  = (*natsbroker.JetStreamBroker)(nil)
	_ broker.DedupBroker    = (*natsbroker.JetStreamBroker)(nil)
	_ broker.PresenceBroker = (*natsbroker.JetStreamBroker)(nil)
)

// jsPair starts a server and returns two JetStream brokers on it, each with
// a connection of its own, as two nodes would have.
func jsPair(t *testing.T, cfg natsbroker.JetStreamConfig) (*server.Server, *natsbroker.JetStreamBroker, *natsbroker.JetStreamBroker) {
	t.Helper()
	s := startServer(t, nil)
	ncA, _ := connect(t, s)
	ncB, _ := connect(t, s)
	return s, newJS(t, ncA, cfg), newJS(t, ncB, cfg)
}

func TestJetStreamPublishSubscribe(t *testing.T) {
	start := uint64(time.Now().UnixMilli())
	_, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	ra, _ := subscribe(t, a, "lobby")
	rb, _ := subscribe(t, b, "lobby")
	publish(t, a, "lobby", true, "kept")
	publish(t, a, "lobby", false, "live")
	publish(t, b, "lobby", true, "kept too")
	for name, r := range map[string]*recorder{"a": ra, "b": rb} {
		got := r.wait(t, 3)
		if d := datas(got); !slices.Equal(d, []string{"kept", "live", "kept too"}) {
			t.Fatalf("node %s got %q", name, d)
		}
		// IDs come from the clock in milliseconds, and increase.
		if got[0].ID < start || !got[0].Keep || got[1].ID != 0 || got[1].Keep || got[2].ID <= got[0].ID || !got[2].Keep {
			t.Errorf("node %s got %+v", name, got)
		}
	}
	if ra.all()[0].ID != rb.all()[0].ID {
		t.Error("nodes disagree on an ID")
	}
}

func TestJetStreamSeveralSubscriptionsToOneRoom(t *testing.T) {
	_, a, b := jsPair(t, natsbroker.JetStreamConfig{})
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

// Kept and live publications of one publisher keep their order, and kept
// ones arrive in the order of their IDs.
func TestJetStreamPublisherOrder(t *testing.T) {
	_, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	local, _ := subscribe(t, a, "room")
	remote, _ := subscribe(t, b, "room")
	const n = 1000
	for i := range n {
		publish(t, a, "room", i%2 == 0, strconv.Itoa(i))
	}
	for who, r := range map[string]*recorder{"local": local, "remote": remote} {
		got := r.wait(t, n)
		checkSequence(t, who, got, "", n)
		checkIDs(t, who, got)
	}
}

// checkIDs checks that kept publications have increasing IDs and live ones
// none.
func checkIDs(t *testing.T, who string, pubs []broker.Publication) {
	t.Helper()
	var last uint64
	for i, p := range pubs {
		switch {
		case p.Keep && p.ID <= last:
			t.Fatalf("%s: publication %d has ID %d after %d", who, i, p.ID, last)
		case !p.Keep && p.ID != 0:
			t.Fatalf("%s: live publication %d has ID %d", who, i, p.ID)
		}
		if p.Keep {
			last = p.ID
		}
	}
}

func TestJetStreamRoomIsolation(t *testing.T) {
	_, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	testRoomIsolation(t, a, b)
}

func TestJetStreamUnsubscribe(t *testing.T) {
	_, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	testUnsubscribe(t, a, b)
}

func TestJetStreamUnsubscribeWaitsForDelivery(t *testing.T) {
	_, a, _ := jsPair(t, natsbroker.JetStreamConfig{})
	testUnsubscribeWaits(t, a)
}

func TestJetStreamClose(t *testing.T) {
	s, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	subscribe(t, a, "other")
	testClose(t, a, b, a.Close)
	c := ctx(t)
	if _, _, err := a.History(c, "room", 0); !isClosed(err) {
		t.Errorf("History after Close: %v", err)
	}
	if err := a.SetPresence(c, "room", "n", []string{"x"}, time.Second); !isClosed(err) {
		t.Errorf("SetPresence after Close: %v", err)
	}
	if _, err := a.Presence(c, "room"); !isClosed(err) {
		t.Errorf("Presence after Close: %v", err)
	}
	// Close deleted a's consumers; b's one is left.
	if n := consumers(t, s); n != 1 {
		t.Errorf("%d consumers left, want b's 1", n)
	}
}

func isClosed(err error) bool { return errors.Is(err, broker.ErrClosed) }

// consumers counts the consumers of the stream CHATROOM on s.
func consumers(t *testing.T, s *server.Server) int {
	t.Helper()
	nc, _ := connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx(t), "CHATROOM")
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Consumers
}

// A publication the stream accepts after Subscribe returned is delivered,
// with no round trip or wait in between.
func TestJetStreamSubscribeThenPublish(t *testing.T) {
	_, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	for i := range 20 {
		room := "room" + strconv.Itoa(i)
		r, _ := subscribe(t, b, room)
		publish(t, a, room, i%2 == 0, "x")
		r.waitData(t, "x")
	}
}

func TestNilDeliver(t *testing.T) {
	s := startServer(t, nil)
	nc, _ := connect(t, s)
	for _, b := range []broker.Broker{newCore(t, nc), newJS(t, nc, natsbroker.JetStreamConfig{})} {
		if sub, err := b.Subscribe(ctx(t), "room", nil); err == nil || sub != nil {
			t.Errorf("%T accepted a nil deliver", b)
		}
	}
}

// History gives the answers broker.Memory gives, IDs aside, for
// every after that matters: 0, each ID published, the ID after the last,
// and an ID from before the room's numbering.
// With a backlog, the stream holds more than History+1 publications per
// room; without one (-1), exactly that; with 2, part of the time more.
func TestJetStreamHistoryMatchesMemoryBroker(t *testing.T) {
	for _, backlog := range []int{0, -1, 2} {
		t.Run("backlog"+strconv.Itoa(backlog), func(t *testing.T) { testHistoryMatchesMemoryBroker(t, backlog) })
	}
}

func testHistoryMatchesMemoryBroker(t *testing.T, backlog int) {
	const keep = 3
	mem := broker.NewMemory(keep)
	_, js, _ := jsPair(t, natsbroker.JetStreamConfig{History: keep, Backlog: backlog})
	memRec, _ := subscribe(t, mem, "room")
	jsRec, _ := subscribe(t, js, "room")

	var memIDs, jsIDs []uint64
	check := func(step string) {
		t.Helper()
		type after struct {
			name    string
			mem, js uint64
		}
		afters := []after{{name: "0"}, {name: "old", mem: 1, js: 1}}
		for i := range memIDs {
			afters = append(afters, after{name: "id" + strconv.Itoa(i), mem: memIDs[i], js: jsIDs[i]})
		}
		if n := len(memIDs); n > 0 {
			afters = append(afters, after{name: "last+1", mem: memIDs[n-1] + 1, js: jsIDs[n-1] + 1})
		}
		for _, a := range afters {
			mp, mc, err := mem.History(ctx(t), "room", a.mem)
			if err != nil {
				t.Fatal(err)
			}
			jp, jc, err := js.History(ctx(t), "room", a.js)
			if err != nil {
				t.Fatal(err)
			}
			if mc != jc || !slices.Equal(datas(mp), datas(jp)) {
				t.Errorf("%s, after %s: memory %q, %v; JetStream %q, %v", step, a.name, datas(mp), mc, datas(jp), jc)
			}
			for i, p := range jp {
				if !p.Keep || i > 0 && p.ID <= jp[i-1].ID {
					t.Errorf("%s, after %s: publication %+v", step, a.name, p)
				}
			}
		}
	}
	check("empty room")
	for k := range 2*keep + 2 {
		d := strconv.Itoa(k)
		for _, b := range []broker.Broker{mem, js} {
			publish(t, b, "room", true, d)
			publish(t, b, "room", false, "live "+d)
			publish(t, b, "other", true, "other "+d)
		}
		memIDs = append(memIDs, memRec.waitData(t, d)[2*k].ID)
		jsIDs = append(jsIDs, jsRec.waitData(t, d)[2*k].ID)
		check("after " + d)
	}
}

// An ID of another room is foreign, even between the room's own.
func TestJetStreamHistoryForeignID(t *testing.T) {
	_, b, _ := jsPair(t, natsbroker.JetStreamConfig{History: 10})
	r, _ := subscribe(t, b, "other")
	publish(t, b, "room", true, "1")
	publish(t, b, "other", true, "x")
	publish(t, b, "room", true, "2")
	foreign := r.waitData(t, "x")[0].ID
	pubs, complete, err := b.History(ctx(t), "room", foreign)
	if err != nil || complete || !slices.Equal(datas(pubs), []string{"1", "2"}) {
		t.Errorf("History(foreign) = %q, %v, %v; want [1 2], false", datas(pubs), complete, err)
	}
}

// A stream deleted by hand is created again, numbering above the old IDs,
// which History then treats as foreign; subscriptions carry on.
func TestJetStreamStreamLost(t *testing.T) {
	s, a, b := jsPair(t, natsbroker.JetStreamConfig{History: 10})
	r, _ := subscribe(t, b, "room")
	publish(t, a, "room", true, "1")
	old := r.waitData(t, "1")[0].ID

	nc, _ := connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx(t), "CHATROOM"); err != nil {
		t.Fatal(err)
	}
	publish(t, a, "room", true, "2")
	got := r.waitData(t, "2")
	if id := got[len(got)-1].ID; id <= old {
		t.Errorf("ID %d of the new stream is not above %d", id, old)
	}
	pubs, complete, err := a.History(ctx(t), "room", old)
	if err != nil || complete || !slices.Equal(datas(pubs), []string{"2"}) {
		t.Errorf("History(old) = %q, %v, %v; want [2], false", datas(pubs), complete, err)
	}
}

// Once the stream exists, its configuration wins: an operator may change
// how much it keeps.
func TestJetStreamExistingStream(t *testing.T) {
	s := startServer(t, nil)
	nc, _ := connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: "APP_CHAT", Subjects: []string{"app.chat.room.>"}, MaxMsgsPerSubject: 3, AllowMsgTTL: true, AllowDirect: true}
	if _, err := js.CreateStream(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	b := newJS(t, nc, natsbroker.JetStreamConfig{History: 100}, natsbroker.WithPrefix("app.chat"))
	for i := range 5 {
		publish(t, b, "room", true, strconv.Itoa(i))
	}
	pubs, complete, err := b.History(ctx(t), "room", 0)
	if err != nil || complete || !slices.Equal(datas(pubs), []string{"3", "4"}) {
		t.Errorf("History = %q, %v, %v; want [3 4], false", datas(pubs), complete, err)
	}

	// A stream the broker cannot work with is refused, saying why.
	cfg = jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad.room.>"}, MaxMsgsPerSubject: 3}
	if _, err := js.CreateStream(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	bad := newJS(t, nc, natsbroker.JetStreamConfig{}, natsbroker.WithPrefix("bad"))
	if err := bad.Publish(ctx(t), "room", broker.Publication{}); err == nil || !strings.Contains(err.Error(), "AllowMsgTTL") {
		t.Errorf("Publish with a stream without TTLs: %v", err)
	}
}

func TestJetStreamPresence(t *testing.T) {
	_, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	c := ctx(t)
	if got, err := a.Presence(c, "room"); err != nil || len(got) != 0 {
		t.Fatalf("Presence of an empty room: %v, %v", got, err)
	}
	set := func(br *natsbroker.JetStreamBroker, room, node string, ttl time.Duration, nicks ...string) {
		t.Helper()
		if err := br.SetPresence(c, room, node, nicks, ttl); err != nil {
			t.Fatal(err)
		}
	}
	set(a, "room", "short", time.Second, "ann", "bob")
	set(b, "room", "node.with.dots", time.Minute, "cy")
	set(b, "room", "", time.Minute, "dee")
	set(b, "room", "gone", time.Minute, "eve")
	set(b, "room.b", "other", time.Minute, "fay")
	set(b, "room", "gone", time.Minute)
	want := map[string][]string{"short": {"ann", "bob"}, "node.with.dots": {"cy"}, "": {"dee"}}
	for _, br := range []*natsbroker.JetStreamBroker{a, b} {
		got, err := br.Presence(c, "room")
		if err != nil || !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("Presence = %v, %v; want %v", got, err, want)
		}
	}
	// A record is replaced, not added to.
	set(a, "room", "short", time.Second, "ann")
	// The short record expires; there is no event for it.
	delete(want, "short")
	poll(t, "the short record to expire", 100*time.Millisecond, func() bool {
		got, err := b.Presence(c, "room")
		if err != nil {
			t.Fatal(err)
		}
		if s := got["short"]; s != nil && !slices.Equal(s, []string{"ann"}) {
			t.Fatalf("Presence = %v while the record expires", got)
		}
		return maps.EqualFunc(got, want, slices.Equal)
	})
}

// The stream, the bucket and the subjects follow the prefix.
func TestJetStreamNames(t *testing.T) {
	s := startServer(t, nil)
	nc, _ := connect(t, s)
	b := newJS(t, nc, natsbroker.JetStreamConfig{}, natsbroker.WithPrefix("my-app.chat"))
	r := newRecorder()
	sub, err := nc.Subscribe(">", func(m *nats.Msg) {
		if strings.HasPrefix(m.Subject, "my-app.") {
			r.deliver(broker.Publication{Data: []byte(m.Subject)})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	publish(t, b, "a.b", true, "x")
	if err := b.SetPresence(ctx(t), "a.b", "n", []string{"x"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(ctx(t), "MY-APP_CHAT"); err != nil {
		t.Errorf("stream: %v", err)
	}
	if _, err := js.KeyValue(ctx(t), "MY-APP_CHAT_PRESENCE"); err != nil {
		t.Errorf("bucket: %v", err)
	}
	// "a.b" in base64url is YS5i.
	r.waitData(t, "my-app.chat.room.rYS5i.kept")
}

// A subscription whose consumer disappears (an operator deleted it, or the
// server lost it) makes another, which resumes after the last publication
// delivered: nothing published meanwhile is lost.
func TestJetStreamConsumerLost(t *testing.T) {
	s, a, b := jsPair(t, natsbroker.JetStreamConfig{})
	r, _ := subscribe(t, b, "room")
	publish(t, a, "room", true, "1")
	r.waitData(t, "1")

	nc, _ := connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx(t), "CHATROOM")
	if err != nil {
		t.Fatal(err)
	}
	names := stream.ConsumerNames(ctx(t))
	var deleted int
	for name := range names.Name() {
		if err := js.DeleteConsumer(ctx(t), "CHATROOM", name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if names.Err() != nil || deleted != 1 {
		t.Fatalf("deleted %d consumers: %v", deleted, names.Err())
	}
	publish(t, a, "room", false, "2")
	publish(t, a, "room", true, "3")
	if got := datas(r.waitData(t, "3")); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("got %q, want [1 2 3]", got)
	}
}
