package redisbroker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/internal/serverproc"
)

// waitTimeout bounds every wait for something that should happen.
const waitTimeout = 10 * time.Second

// testRedis is the Redis a test uses: the one REDIS_URL names, or a
// redis-server of its own.
type testRedis struct {
	opts   *redis.Options // for clients: Addr and whatever REDIS_URL says
	prefix string         // unique to the test: every key it makes starts so
	local  *localRedis    // nil with REDIS_URL
}

// newRedis returns the Redis for t. With REDIS_URL set it uses that server,
// and deletes only the keys under the test's prefix afterwards; else it
// starts a redis-server from PATH, skipping the test if there is none (or
// failing it, when CI=true).
func newRedis(t *testing.T) *testRedis {
	t.Helper()
	r := &testRedis{prefix: uniquePrefix(t)}
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("REDIS_URL: %v", err)
		}
		r.opts = opts
		t.Cleanup(func() { r.deletePrefixed(t) })
		return r
	}
	r.local = startLocalRedis(t)
	r.opts = &redis.Options{Addr: r.local.addr()}
	return r
}

// newLocalRedis is newRedis with a redis-server of the test's own, which
// tests need that kill and restart it.
func newLocalRedis(t *testing.T) *testRedis {
	t.Helper()
	local := startLocalRedis(t)
	return &testRedis{opts: &redis.Options{Addr: local.addr()}, prefix: uniquePrefix(t), local: local}
}

func uniquePrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return "chatroomtest-" + hex.EncodeToString(b[:]) + "-" + name
}

// client returns a client with the options the README recommends, closed
// when the test ends. addr, if not empty, replaces the server's address.
func (r *testRedis) client(t *testing.T, addr string) *redis.Client {
	t.Helper()
	o := *r.opts
	if addr != "" {
		o.Addr = addr
	}
	o.DialTimeout = time.Second
	o.ReadTimeout = time.Second
	o.WriteTimeout = time.Second
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	c := redis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// broker returns a broker on a client of its own (a node), under the
// test's prefix, closed when the test ends.
func (r *testRedis) broker(t *testing.T, opts ...Option) *Broker {
	t.Helper()
	return r.brokerOn(t, r.client(t, ""), opts...)
}

func (r *testRedis) brokerOn(t *testing.T, c redis.UniversalClient, opts ...Option) *Broker {
	t.Helper()
	b := New(c, append([]Option{WithKeyPrefix(r.prefix)}, opts...)...)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// flush loses the test's data, as a Redis restart without persistence
// would: FLUSHDB on a server of the test's own, else the test's keys.
func (r *testRedis) flush(t *testing.T) {
	t.Helper()
	if r.local != nil {
		c := r.client(t, "")
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("FLUSHDB: %v", err)
		}
		return
	}
	r.deletePrefixed(t)
}

// deletePrefixed deletes the keys under the test's prefix, never others.
func (r *testRedis) deletePrefixed(t *testing.T) {
	c := redis.NewClient(r.opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// SCAN's cursor ends at 0; the bound only guards against a server
	// that keeps returning a cursor.
	var cursor uint64
	for range 100000 {
		keys, next, err := c.Scan(ctx, cursor, escape(r.prefix)+"*", 1000).Result()
		if err != nil {
			t.Errorf("SCAN: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("DEL: %v", err)
				return
			}
		}
		if cursor = next; cursor == 0 {
			return
		}
	}
}

// localRedis is a redis-server that a test started, on a loopback port.
type localRedis struct {
	t *testing.T
	*serverproc.Redis
}

func startLocalRedis(t *testing.T, args ...string) *localRedis {
	t.Helper()
	r, err := serverproc.StartRedis(waitTimeout, args...)
	switch {
	case errors.Is(err, serverproc.ErrNoRedis) && os.Getenv("CI") == "true":
		t.Fatal("redis-server not found on PATH and REDIS_URL not set, with CI=true: install redis-server")
	case errors.Is(err, serverproc.ErrNoRedis):
		t.Skip("redis-server not found on PATH and REDIS_URL not set: skipping Redis tests")
	case err != nil:
		t.Fatalf("could not start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return &localRedis{t: t, Redis: r}
}

func (s *localRedis) addr() string { return s.Addr() }

// kill kills the server at once, as a crash would, and waits for it.
func (s *localRedis) kill() { s.Kill() }

// pause stops the server's process without ending it (SIGSTOP): its
// connections stay open and what clients send waits, unread, until resume
// (SIGCONT), when the server runs it.
func (s *localRedis) pause() {
	s.t.Helper()
	if err := s.current().Pause(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *localRedis) resume() {
	s.t.Helper()
	if err := s.current().Resume(); err != nil {
		s.t.Fatal(err)
	}
}

// current returns the running process, failing the test if there is none.
func (s *localRedis) current() *serverproc.Process {
	s.t.Helper()
	p := s.Process()
	if p == nil {
		s.t.Fatal("redis-server is not running")
	}
	return p
}

// restart starts the server again on the same port, empty (no
// persistence).
func (s *localRedis) restart() {
	s.t.Helper()
	if err := s.Restart(); err != nil {
		s.t.Fatal(err)
	}
}

// recorder records what a subscription delivers.
type recorder struct {
	ch       chan broker.Publication
	overflow atomic.Bool
}

func newRecorder() *recorder { return &recorder{ch: make(chan broker.Publication, 10000)} }

// deliver is the subscription's deliver function: it copies, never blocks.
func (r *recorder) deliver(p broker.Publication) {
	p.Data = bytes.Clone(p.Data)
	select {
	case r.ch <- p:
	default:
		r.overflow.Store(true)
	}
}

// next returns the next publication, failing t if none comes in time.
func (r *recorder) next(t *testing.T) broker.Publication {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case p := <-r.ch:
		return p
	case <-timer.C:
		if r.overflow.Load() {
			t.Fatal("recorder overflowed")
		}
		t.Fatal("no publication delivered in time")
		return broker.Publication{}
	}
}

// nextData is next's data, as a string.
func (r *recorder) nextData(t *testing.T) string {
	t.Helper()
	return string(r.next(t).Data)
}

// empty reports whether nothing is waiting in r.
func (r *recorder) empty() bool { return len(r.ch) == 0 }

func subscribe(t *testing.T, b *Broker, room string, r *recorder) broker.Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), room, r.deliver)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", room, err)
	}
	return s
}

func publish(t *testing.T, b *Broker, room string, keep bool, data string) {
	t.Helper()
	if err := b.Publish(context.Background(), room, broker.Publication{Keep: keep, Data: []byte(data)}); err != nil {
		t.Fatalf("Publish(%q, %q): %v", room, data, err)
	}
}

// publishUntil publishes data with a counter to room every 50ms, ignoring
// errors (Redis may still be coming back), until r receives one of them,
// and returns what it received. Other publications r receives are skipped.
func publishUntil(t *testing.T, b *Broker, room, data string, r *recorder) string {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(2 * waitTimeout)
	defer deadline.Stop()
	n := 0
	for {
		select {
		case p := <-r.ch:
			if strings.HasPrefix(string(p.Data), data) {
				return string(p.Data)
			}
		case <-tick.C:
			n++
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = b.Publish(ctx, room, broker.Publication{Data: []byte(data + strconv.Itoa(n))})
			cancel()
		case <-deadline.C:
			t.Fatalf("room %q: no publication %q... delivered after %d attempts", room, data, n)
		}
	}
}

// freezeProxy forwards TCP connections to a Redis server until frozen:
// then the connections it has stop carrying anything, both ways, without
// being closed, as when a peer vanishes or the network partitions. New
// connections work, unless frozenAll.
type freezeProxy struct {
	l      net.Listener
	target string

	mu        sync.Mutex
	gen       int // frozen are the connections of a generation < gen
	frozenAll bool
	closed    bool
	conns     []net.Conn
	wg        sync.WaitGroup
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.l.Addr().String() }

// freeze freezes the connections open now.
func (p *freezeProxy) freeze() {
	p.mu.Lock()
	p.gen++
	p.mu.Unlock()
}

// freezeAll freezes every connection, including those to come.
func (p *freezeProxy) freezeAll() {
	p.mu.Lock()
	p.gen++
	p.frozenAll = true
	p.mu.Unlock()
}

func (p *freezeProxy) frozen(gen int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozenAll || gen < p.gen
}

// accept ends when close closes the listener; each connection's
// goroutines end when close closes the connections.
func (p *freezeProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		gen := p.gen
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u, gen)
		go p.pipe(u, c, gen)
	}
}

// pipe copies from src to dst, dropping what it reads once frozen. When
// either side ends, it closes both, which ends the other direction's pipe.
func (p *freezeProxy) pipe(src, dst net.Conn, gen int) {
	defer p.wg.Done()
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen(gen) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezeProxy) close() {
	p.l.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// keyExists reports whether key exists.
func keyExists(t *testing.T, c *redis.Client, key string) bool {
	t.Helper()
	n, err := c.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}

// receiveInOrder receives publishers*n publications "<publisher>:<i>" on
// each recorder, checks that each publisher's arrive in order, and that
// every recorder sees one order. check, if not nil, checks each one more.
func receiveInOrder(t *testing.T, recs []*recorder, publishers, n int, check func(si int, p broker.Publication, i int)) {
	t.Helper()
	seqs := make([][]string, len(recs))
	for si, rec := range recs {
		next := make([]int, publishers)
		for range publishers * n {
			p := rec.next(t)
			seqs[si] = append(seqs[si], string(p.Data))
			var pi, i int
			if _, err := fmt.Sscanf(string(p.Data), "%d:%d", &pi, &i); err != nil || pi < 0 || pi >= publishers {
				t.Fatalf("bad data %q", p.Data)
			}
			if i != next[pi] {
				t.Fatalf("subscriber %d: publisher %d's %d arrived when %d was due", si, pi, i, next[pi])
			}
			next[pi]++
			if check != nil {
				check(si, p, i)
			}
		}
	}
	for si := 1; si < len(seqs); si++ {
		if !slices.Equal(seqs[0], seqs[si]) {
			t.Errorf("subscribers 0 and %d saw different orders", si)
		}
	}
}

// concurrently runs publish(0) to publish(n-1) on goroutines of their own,
// waits for them all, and fails the test with the first error.
func concurrently(t *testing.T, n int, publish func(i int) error) {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- publish(i) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		t.Fatal(first)
	}
}
