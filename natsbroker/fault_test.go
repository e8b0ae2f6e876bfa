package natsbroker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// failFast is how long a Publish may take to fail while disconnected: it
// must not wait for the server.
const failFast = 500 * time.Millisecond

// outage stops s, checks that a's Publish fails at once and that
// Subscribe on b still works, then starts the server again on the same port
// with the same store, and waits for both connections to come back.
func outage(t *testing.T, s *server.Server, opts *server.Options, a, b broker.Broker, evA, evB *connEvents) (*server.Server, *recorder) {
	t.Helper()
	p := port(s)
	s.Shutdown()
	s.WaitForShutdown()
	waitFor(t, evA.disconnected, "A's disconnection")
	waitFor(t, evB.disconnected, "B's disconnection")

	start := time.Now()
	err := a.Publish(ctx(t), "room", broker.Publication{Keep: true, Data: []byte("lost")})
	if !errors.Is(err, natsbroker.ErrNotConnected) || !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish while disconnected: %v, want ErrNotConnected and broker.ErrUnavailable", err)
	}
	if d := time.Since(start); d > failFast {
		t.Errorf("Publish took %v to fail", d)
	}
	// Subscribing while the server is away must work, and deliver once it
	// is back.
	rDuring, _ := subscribe(t, b, "room")

	s2 := startServer(t, &server.Options{Port: p, StoreDir: opts.StoreDir, ServerName: opts.ServerName})
	// Cleanups run last first: close the brokers before this server stops,
	// rather than after, which would make them wait for it.
	t.Cleanup(func() {
		for _, b := range []broker.Broker{a, b} {
			_ = b.(interface{ Close() error }).Close()
		}
	})
	waitFor(t, evA.reconnected, "A's reconnection")
	waitFor(t, evB.reconnected, "B's reconnection")
	return s2, rDuring
}

func TestCoreServerRestart(t *testing.T) {
	opts := &server.Options{StoreDir: t.TempDir()}
	s := startServer(t, opts)
	ncA, evA := connect(t, s)
	ncB, evB := connect(t, s)
	a, b := newCore(t, ncA), newCore(t, ncB)
	before, _ := subscribe(t, b, "room")
	publish(t, a, "room", true, "1")
	before.waitData(t, "1")

	_, during := outage(t, s, opts, a, b, evA, evB)
	// The connection sent its subscriptions again before it reported the
	// reconnection; a round trip makes sure the server has them.
	if err := ncB.Flush(); err != nil {
		t.Fatal(err)
	}
	publish(t, a, "room", true, "2")
	if got := datas(before.waitData(t, "2")); len(got) != 2 || got[0] != "1" {
		t.Errorf("subscription from before the outage got %q", got)
	}
	if got := datas(during.waitData(t, "2")); len(got) != 1 {
		t.Errorf("subscription from during the outage got %q", got)
	}
}

func TestJetStreamServerRestart(t *testing.T) {
	opts := &server.Options{ServerName: "js", StoreDir: t.TempDir()}
	s := startServer(t, opts)
	ncA, evA := connect(t, s)
	ncB, evB := connect(t, s)
	cfg := natsbroker.JetStreamConfig{History: 10} // file storage: the stream survives
	a, b := newJS(t, ncA, cfg), newJS(t, ncB, cfg)
	before, _ := subscribe(t, b, "room")
	publish(t, a, "room", true, "1")
	first := before.waitData(t, "1")[0].ID

	_, during := outage(t, s, opts, a, b, evA, evB)
	// No flush needed: the consumers are re-created, and deliver whatever
	// the stream stored after they stopped.
	publish(t, a, "room", true, "2")
	publish(t, a, "room", false, "3")
	got := before.waitData(t, "3")
	if d := datas(got); len(d) != 3 || d[0] != "1" || d[1] != "2" {
		t.Fatalf("subscription from before the outage got %q", d)
	}
	if got[1].ID <= first || !got[1].Keep || got[2].ID != 0 {
		t.Errorf("IDs after restart: %d then %d, %d", first, got[1].ID, got[2].ID)
	}
	if d := datas(during.waitData(t, "3")); len(d) != 2 || d[0] != "2" {
		t.Errorf("subscription from during the outage got %q", d)
	}
	pubs, complete, err := b.History(ctx(t), "room", first)
	if err != nil || !complete || len(pubs) != 1 || string(pubs[0].Data) != "2" {
		t.Errorf("History after restart: %q, %v, %v", datas(pubs), complete, err)
	}
}

// With memory storage a restart loses the stream: the broker creates it
// again, numbering above the old IDs, and subscriptions carry on.
func TestJetStreamServerRestartLosesStream(t *testing.T) {
	opts := &server.Options{ServerName: "js", StoreDir: t.TempDir()}
	s := startServer(t, opts)
	ncA, evA := connect(t, s)
	ncB, evB := connect(t, s)
	cfg := natsbroker.JetStreamConfig{History: 10, Storage: jetstream.MemoryStorage}
	a, b := newJS(t, ncA, cfg), newJS(t, ncB, cfg)
	before, _ := subscribe(t, b, "room")
	publish(t, a, "room", true, "1")
	old := before.waitData(t, "1")[0].ID

	outage(t, s, opts, a, b, evA, evB)
	publish(t, a, "room", true, "2")
	got := before.waitData(t, "2")
	if got[len(got)-1].ID <= old {
		t.Errorf("ID %d after the loss is not above %d", got[len(got)-1].ID, old)
	}
	pubs, complete, err := b.History(ctx(t), "room", old)
	if err != nil || complete || len(pubs) != 1 || string(pubs[0].Data) != "2" {
		t.Errorf("History(old ID) after the loss: %q, complete %v, %v; want [2], false", datas(pubs), complete, err)
	}
}

// A node may start while NATS is down: its broker subscribes, fails to
// publish, and works once the server is up.
func TestStartBeforeServer(t *testing.T) {
	for _, mode := range []string{"Core", "JetStream"} {
		t.Run(mode, func(t *testing.T) {
			p, nc, connected := connectBeforeServer(t)
			var b broker.Broker
			if mode == "Core" {
				b = newCore(t, nc)
			} else {
				b = newJS(t, nc, natsbroker.JetStreamConfig{})
			}
			r, _ := subscribe(t, b, "room")
			if err := b.Publish(ctx(t), "room", broker.Publication{}); !errors.Is(err, natsbroker.ErrNotConnected) {
				t.Errorf("Publish before the server: %v, want ErrNotConnected", err)
			}
			startServer(t, &server.Options{Port: p})
			waitFor(t, connected, "the connection")
			if err := nc.Flush(); err != nil { // the server has the core subscription
				t.Fatal(err)
			}
			// A JetStream subscription creates its consumer on its own
			// goroutine, with no event to wait for: publish until it
			// delivers.
			poll(t, "a delivery", 20*time.Millisecond, func() bool {
				publish(t, b, "room", true, "x")
				return len(r.all()) > 0
			})
		})
	}
}

// TestHungServerPublishOpen stops the server's process (SIGSTOP) while a
// publication is on its way: Publish fails when its context ends, and the
// server delivers the publication when it goes on (SIGCONT), so the error
// must leave the outcome open rather than say that nothing was published.
func TestHungServerPublishOpen(t *testing.T) {
	bin := buildServer(t)
	modes := map[string]func(t *testing.T, nc *nats.Conn) broker.Broker{
		"Core":      func(t *testing.T, nc *nats.Conn) broker.Broker { return newCore(t, nc) },
		"JetStream": func(t *testing.T, nc *nats.Conn) broker.Broker { return newJS(t, nc, natsbroker.JetStreamConfig{}) },
	}
	for name, newBroker := range modes {
		t.Run(name, func(t *testing.T) {
			p := startProcess(t, bin)
			ncA, _ := connectURL(t, p.url())
			ncB, _ := connectURL(t, p.url())
			a, b := newBroker(t, ncA), newBroker(t, ncB)
			rec, _ := subscribe(t, b, "room")
			publish(t, a, "room", true, "before")
			rec.waitData(t, "before")

			p.pause()
			resumed := false
			t.Cleanup(func() {
				if !resumed {
					p.resume()
				}
			})
			c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := a.Publish(c, "room", broker.Publication{Keep: true, Data: []byte("late")})
			cancel()
			if err == nil || errors.Is(err, broker.ErrUnavailable) {
				t.Errorf("Publish to a hung server: %v, want an error that leaves the outcome open", err)
			}
			p.resume()
			resumed = true
			rec.waitData(t, "late")
		})
	}
}

// TestJetStreamWithoutJetStream: a server without JetStream has no stream
// to take a publication, so Publish says that none was taken.
func TestJetStreamWithoutJetStream(t *testing.T) {
	nc, _ := connect(t, startServerWithoutJetStream(t))
	b, err := natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{})
	if err != nil {
		t.Logf("NewJetStream refuses it already: %v", err)
		return
	}
	t.Cleanup(func() { _ = b.Close() })
	err = b.Publish(ctx(t), "room", broker.Publication{Keep: true, Data: []byte("x")})
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish without JetStream: %v, want broker.ErrUnavailable", err)
	}
}
