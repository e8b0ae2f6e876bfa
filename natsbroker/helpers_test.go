package natsbroker_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// waitTimeout bounds every wait of the tests for something to happen.
const waitTimeout = 15 * time.Second

// startServer starts an in-process NATS server on loopback with JetStream,
// from opts (which may be nil); port and store directory default to a free
// port and a temporary directory. It is shut down when the test ends.
func startServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	o := server.Options{}
	if opts != nil {
		o = *opts
	}
	o.Host = "127.0.0.1"
	if o.Port == 0 {
		o.Port = -1
	}
	o.JetStream = true
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	return runServer(t, &o)
}

// startServerWithoutJetStream starts an in-process NATS server on a free
// loopback port, without JetStream, shut down when the test ends.
func startServerWithoutJetStream(t testing.TB) *server.Server {
	t.Helper()
	return runServer(t, &server.Options{Host: "127.0.0.1", Port: -1})
}

// runServer starts an in-process server from o, without its log and
// signal handlers, waits until it is ready, and shuts it down when the
// test ends.
func runServer(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	o.NoLog, o.NoSigs = true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(waitTimeout) {
		s.Shutdown()
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func port(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }

// connEvents records a connection's disconnections and reconnections.
type connEvents struct {
	disconnected chan struct{}
	reconnected  chan struct{}
}

// connect connects to s with ConnectOptions, reconnecting quickly, and
// closes the connection when the test ends.
func connect(t testing.TB, s *server.Server, extra ...nats.Option) (*nats.Conn, *connEvents) {
	t.Helper()
	return connectURL(t, s.ClientURL(), extra...)
}

// connectURL is connect to the server at url.
func connectURL(t testing.TB, url string, extra ...nats.Option) (*nats.Conn, *connEvents) {
	t.Helper()
	ev := &connEvents{disconnected: make(chan struct{}, 1), reconnected: make(chan struct{}, 1)}
	opts := append(natsbroker.ConnectOptions(),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { signal(ev.disconnected) }),
		nats.ReconnectHandler(func(*nats.Conn) { signal(ev.reconnected) }),
		// Servers stopping under the tests' feet is expected.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	)
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, ev
}

// connectBeforeServer connects to a free loopback port, where no server
// is yet, with ConnectOptions (which retry a failed connect), and returns
// the port, the connection, closed when the test ends, and a channel
// signalled when it connects.
func connectBeforeServer(t *testing.T) (int, *nats.Conn, <-chan struct{}) {
	t.Helper()
	p := freePort(t)
	connected := make(chan struct{}, 1)
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", p), append(natsbroker.ConnectOptions(),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ConnectHandler(func(*nats.Conn) { signal(connected) }),
	)...)
	if err != nil {
		t.Fatalf("connect with RetryOnFailedConnect: %v", err)
	}
	t.Cleanup(nc.Close)
	return p, nc, connected
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// waitFor waits, at most waitTimeout, for a signal on ch.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func newCore(t testing.TB, nc *nats.Conn, opts ...natsbroker.Option) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newJS(t testing.TB, nc *nats.Conn, cfg natsbroker.JetStreamConfig, opts ...natsbroker.Option) *natsbroker.JetStreamBroker {
	t.Helper()
	b, err := natsbroker.NewJetStream(nc, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// recorder collects what a subscription delivers.
type recorder struct {
	mu     sync.Mutex
	pubs   []broker.Publication
	notify chan struct{} // signalled after each delivery

	busy atomic.Int32 // deliveries in progress, to catch concurrent ones
	bad  atomic.Int32 // concurrent deliveries seen
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) deliver(p broker.Publication) {
	if r.busy.Add(1) != 1 {
		r.bad.Add(1)
	}
	defer r.busy.Add(-1)
	p.Data = bytes.Clone(p.Data) // deliver must not keep it
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
	signal(r.notify)
}

func (r *recorder) all() []broker.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pubs)
}

// wait waits until the recorder holds n publications, and returns them.
func (r *recorder) wait(t testing.TB, n int) []broker.Publication {
	t.Helper()
	return r.waitUntil(t, fmt.Sprintf("%d publications", n), func(pubs []broker.Publication) bool { return len(pubs) >= n })
}

// waitData waits until the recorder holds a publication with data d.
func (r *recorder) waitData(t testing.TB, d string) []broker.Publication {
	t.Helper()
	return r.waitUntil(t, fmt.Sprintf("publication %q", d), func(pubs []broker.Publication) bool {
		return slices.ContainsFunc(pubs, func(p broker.Publication) bool { return string(p.Data) == d })
	})
}

func (r *recorder) waitUntil(t testing.TB, what string, done func([]broker.Publication) bool) []broker.Publication {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	// Each round follows a delivery; no test makes a million.
	for range 1 << 20 {
		if pubs := r.all(); done(pubs) {
			if r.bad.Load() != 0 {
				t.Error("deliver was called concurrently")
			}
			return pubs
		}
		select {
		case <-r.notify:
		case <-timer.C:
			t.Fatalf("timed out waiting for %s; have %d: %s", what, len(r.all()), datas(r.all()))
		}
	}
	t.Fatalf("too many deliveries waiting for %s", what)
	return nil
}

func datas(pubs []broker.Publication) []string {
	out := make([]string, len(pubs))
	for i, p := range pubs {
		out[i] = string(p.Data)
	}
	return out
}

func subscribe(t testing.TB, b broker.Broker, room string) (*recorder, broker.Subscription) {
	t.Helper()
	r := newRecorder()
	s, err := b.Subscribe(ctx(t), room, r.deliver)
	if err != nil {
		t.Fatalf("subscribe %q: %v", room, err)
	}
	return r, s
}

func publish(t testing.TB, b broker.Broker, room string, keep bool, data string) {
	t.Helper()
	if err := b.Publish(ctx(t), room, broker.Publication{Keep: keep, Data: []byte(data)}); err != nil {
		t.Fatalf("publish %q to %q: %v", data, room, err)
	}
}

// poll checks cond every interval until it holds, failing the test after
// waitTimeout. Only for what has no event to wait on.
func poll(t testing.TB, what string, interval time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for range int(waitTimeout/interval) + 1 {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(interval)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// ctx is a context for one call: bounded, and ended with the test.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}
