package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/broker"
)

// The chaos run's size: ChaosClients clients send ChaosMessages messages
// each, so the backend must keep ChaosClients × ChaosMessages publications
// per room for a resuming client to miss nothing.
const (
	ChaosClients  = 10
	ChaosMessages = 200
)

// chaosWindow is how many messages a client has in flight (sent, not yet
// acknowledged) at most; chaosDrops bounds the connections the proxies cut.
const (
	chaosWindow = 16
	chaosDrops  = 120
	chaosSeed   = 15
)

// RunChaos checks exactly-once delivery end to end over a
// broker.DedupBroker: two nodes, and ChaosClients clients that send
// ChaosMessages messages each, with refs, through TCP proxies that cut
// connections at random (seeded, at most chaosDrops of them), while one
// node is killed once (its room closed at once, its broker connection too)
// and replaced. The clients reconnect to either node, resume with since the
// greatest ID they saw, and send again, with the same ref, every message
// not yet acknowledged. At the end every client's log holds every message
// exactly once, each sender's in order, with one ID per message on every
// client, and every sender holds an ack for each of its messages. It logs
// the counts: sent, resent, acknowledged, deduplicated (resends the rooms
// recognised), delivered.
//
// The backend must keep at least ChaosClients × ChaosMessages publications
// of a room, and Connect must return a broker.DedupBroker (and an io.Closer,
// to kill a node).
func RunChaos(t *testing.T, b Backend) {
	var dedups atomic.Int64
	logger := slog.New(countHandler{msg: "chatroom: resent message acknowledged", n: &dedups})
	total := ChaosClients * ChaosMessages
	newNode := func() *chaosNode {
		br := b.Connect(t)
		if _, ok := br.(broker.DedupBroker); !ok {
			t.Fatalf("RunChaos: %T is no broker.DedupBroker", br)
		}
		room := chatroom.New(chatroom.WithName("chaos"), chatroom.WithBroker(br), chatroom.WithEnvelope(),
			chatroom.WithHistory(chatroom.History{Len: total, Bytes: 4 << 20}), chatroom.WithHeartbeat(Heartbeat),
			chatroom.WithLogger(logger))
		return &chaosNode{br: br, room: room, srv: httptest.NewServer(room)}
	}
	rng := &lockedRand{r: rand.New(rand.NewPCG(chaosSeed, chaosSeed))}
	nodes := [2]*chaosNode{newNode(), newNode()}
	var proxies [2]*chaosProxy
	for i := range proxies {
		proxies[i] = newChaosProxy(t, nodes[i].srv.Listener.Addr().String(), rng)
	}
	t.Cleanup(func() {
		for _, p := range proxies {
			p.close()
		}
		for _, n := range nodes {
			n.kill()
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var acked atomic.Int64
	kill := make(chan struct{})
	var killOnce sync.Once
	run := &chaosRun{ctx: ctx, rng: rng, proxies: proxies[:], total: total, onAck: func() {
		if acked.Add(1) == int64(total/3) {
			killOnce.Do(func() { close(kill) })
		}
	}}
	clients := make([]*chaosClient, ChaosClients)
	var wg sync.WaitGroup
	for i := range clients {
		clients[i] = &chaosClient{run: run, name: "c" + strconv.Itoa(i), acked: map[int]uint64{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i].err = clients[i].loop()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	victims := 0
	select {
	case <-kill:
		// A node dies at once: its members are dropped, its broker
		// connection goes; a new node takes its place behind its proxy.
		k := 0
		if nodes[1].room.Len() > nodes[0].room.Len() {
			k = 1
		}
		victims = nodes[k].room.Len()
		nodes[k].kill()
		nodes[k] = newNode()
		proxies[k].retarget(nodes[k].srv.Listener.Addr().String())
	case <-done:
		t.Error("the clients finished before a third of the messages were acknowledged")
	}
	<-done

	var counts chaosCounts
	counts.deduplicated = int(dedups.Load())
	for _, c := range clients {
		if c.err != nil {
			t.Errorf("%s: %v", c.name, c.err)
		}
		counts.sent += c.sent
		counts.resent += c.resent
		counts.acknowledged += len(c.acked)
		counts.acks += c.acks
		counts.delivered += len(c.log)
		counts.reconnects += c.connects - 1
	}
	counts.dropped = int(proxies[0].drops.Load() + proxies[1].drops.Load())
	t.Logf("chaos: sent %d, resent %d, acknowledged %d (%d acks), deduplicated %d, delivered %d (%d clients × %d); %d connections cut, %d reconnects, one node killed with %d clients",
		counts.sent, counts.resent, counts.acknowledged, counts.acks, counts.deduplicated, counts.delivered, ChaosClients, total, counts.dropped, counts.reconnects, victims)
	if t.Failed() {
		return
	}
	checkChaosLogs(t, clients, total)
	if counts.sent != total || counts.acknowledged != total {
		t.Errorf("sent %d and acknowledged %d messages, want %d", counts.sent, counts.acknowledged, total)
	}
}

type chaosCounts struct {
	sent, resent, acknowledged, acks, deduplicated, delivered, dropped, reconnects int
}

// checkChaosLogs checks that every client's log holds every message once,
// each sender's in order, with the ID every other client saw for it and
// its sender's ack carries.
func checkChaosLogs(t *testing.T, clients []*chaosClient, total int) {
	t.Helper()
	ids := map[string]uint64{} // "sender index" → ID
	for _, c := range clients {
		next := map[string]int{}
		for _, e := range c.log {
			sender, index, ok := strings.Cut(e.Text, " ")
			i, err := strconv.Atoi(index)
			if !ok || err != nil || e.Nickname != sender {
				t.Fatalf("%s: a stranger's message %+v", c.name, e)
			}
			if i != next[sender] {
				t.Fatalf("%s: from %s got message %d, want %d (duplicate, loss or reordering)", c.name, sender, i, next[sender])
			}
			next[sender]++
			if id, seen := ids[e.Text]; seen && id != e.ID {
				t.Fatalf("%s: message %q has ID %d, another client saw %d", c.name, e.Text, e.ID, id)
			}
			ids[e.Text] = e.ID
		}
		if len(c.log) != total {
			t.Errorf("%s: %d messages, want %d", c.name, len(c.log), total)
		}
	}
	for _, c := range clients {
		for i, id := range c.acked {
			if want := ids[c.name+" "+strconv.Itoa(i)]; id != want {
				t.Errorf("%s: ack of message %d has ID %d, the message %d", c.name, i, id, want)
			}
		}
	}
}

// chaosNode is one node: a room with a broker connection of its own,
// behind its own server.
type chaosNode struct {
	br   broker.Broker
	room *chatroom.Room
	srv  *httptest.Server
	once sync.Once
}

// kill closes the node at once, as if its process died.
func (n *chaosNode) kill() {
	n.once.Do(func() {
		_ = n.room.Close()
		n.srv.CloseClientConnections()
		n.srv.Close()
		if c, ok := n.br.(io.Closer); ok {
			_ = c.Close()
		}
	})
}

// chaosRun is what the clients share.
type chaosRun struct {
	ctx     context.Context
	rng     *lockedRand
	proxies []*chaosProxy
	total   int
	onAck   func()
}

// chaosClient is one sender, across its connections.
type chaosClient struct {
	run  *chaosRun
	name string
	err  error

	next    int            // the next message to send for the first time
	pending []int          // sent and not acknowledged, in order
	acked   map[int]uint64 // acknowledged, with the ID the ack gave
	log     []chatroom.Message
	lastID  uint64

	sent, resent, acks, connects int
}

// errEnded is a connection's end, after which the client connects again.
var errEnded = errors.New("connection ended")

// loop connects, and connects again, until the client has sent and had
// acknowledged every message, and received every message.
func (c *chaosClient) loop() error {
	for attempt := 0; ; attempt++ {
		if attempt > 10000 {
			return errors.New("no connection after 10000 attempts")
		}
		err := c.connection()
		switch {
		case err == nil:
			return nil
		case c.run.ctx.Err() != nil:
			return fmt.Errorf("%w, with %d sent, %d pending, %d acknowledged, %d received", c.run.ctx.Err(), c.next, len(c.pending), len(c.acked), len(c.log))
		case !errors.Is(err, errEnded):
			return err
		}
	}
}

func (c *chaosClient) complete() bool {
	return c.next == ChaosMessages && len(c.pending) == 0 && len(c.log) == c.run.total
}

// connection runs one connection: it resumes, sends again what is pending,
// then goes on sending. It returns nil once the client is complete, an
// error wrapping errEnded when the connection ended, or the protocol fault
// it saw.
func (c *chaosClient) connection() error {
	ctx := c.run.ctx
	p := c.run.proxies[c.run.rng.IntN(len(c.run.proxies))]
	url := fmt.Sprintf("ws://%s/?nickname=%s&since=%d", p.addr(), c.name, c.lastID)
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("%w: dial: %w", errEnded, err)
	}
	defer conn.CloseNow()
	c.connects++
	frames := make(chan chatroom.Message, chaosWindow)
	readErr := make(chan error, 1)
	go func() {
		defer close(frames)
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			var m chatroom.Message
			if err := json.Unmarshal(data, &m); err != nil {
				readErr <- fmt.Errorf("frame %s: %w", data, err)
				return
			}
			frames <- m
		}
	}()
	defer func() {
		conn.CloseNow()
		for range frames { // until the reader has stopped
		}
	}()
	send := func(i int) error {
		data, _ := json.Marshal(map[string]string{"message": c.name + " " + strconv.Itoa(i), "ref": strconv.Itoa(i)})
		if err := conn.Write(ctx, websocket.MessageText, data); err != nil {
			return fmt.Errorf("%w: write: %w", errEnded, err)
		}
		return nil
	}
	for _, i := range c.pending {
		if err := send(i); err != nil {
			return err
		}
		c.resent++
	}
	for !c.complete() {
		if c.next < ChaosMessages && len(c.pending) < chaosWindow {
			if err := send(c.next); err != nil {
				return err
			}
			c.pending = append(c.pending, c.next)
			c.next++
			c.sent++
			continue
		}
		m, ok := <-frames
		if !ok {
			err := <-readErr
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.StatusGoingAway || ctx.Err() != nil {
				return fmt.Errorf("connection closed: %w", err)
			}
			return fmt.Errorf("%w: read: %w", errEnded, err)
		}
		if err := c.receive(m); err != nil {
			return err
		}
	}
	return conn.Close(websocket.StatusNormalClosure, "")
}

// receive takes one frame in.
func (c *chaosClient) receive(m chatroom.Message) error {
	switch m.Type {
	case chatroom.TypeMessage:
		if m.ID <= c.lastID {
			return fmt.Errorf("message %+v after ID %d: a duplicate or a step back", m, c.lastID)
		}
		c.lastID = m.ID
		c.log = append(c.log, m)
	case chatroom.TypeAck:
		c.acks++
		i, err := strconv.Atoi(m.Ref)
		if err != nil {
			return fmt.Errorf("ack of a ref never sent: %+v", m)
		}
		at := -1
		for j, p := range c.pending {
			if p == i {
				at = j
			}
		}
		if at < 0 {
			return nil // a second ack of a message sent twice on the connection
		}
		c.pending = append(c.pending[:at], c.pending[at+1:]...)
		if _, twice := c.acked[i]; !twice {
			c.acked[i] = m.ID
			c.run.onAck()
		}
	default:
		return fmt.Errorf("unexpected frame %+v", m)
	}
	return nil
}

// chaosProxy forwards TCP connections to a node, and cuts some of them
// after a random number of bytes from the node.
type chaosProxy struct {
	l      net.Listener
	rng    *lockedRand
	target atomic.Pointer[string]
	drops  atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newChaosProxy(t *testing.T, target string, rng *lockedRand) *chaosProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosProxy{l: l, rng: rng, conns: map[net.Conn]bool{}}
	p.target.Store(&target)
	p.wg.Add(1)
	go p.accept()
	return p
}

func (p *chaosProxy) addr() string { return p.l.Addr().String() }

// retarget sends new connections to another node.
func (p *chaosProxy) retarget(addr string) { p.target.Store(&addr) }

func (p *chaosProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", *p.target.Load())
		if err != nil {
			_ = client.Close() // the node is dead: the client tries again
			continue
		}
		if !p.track(client, server) {
			return
		}
		// Cut after 4 to 64 KiB from the node, while cuts are left.
		budget := int64(-1)
		if p.drops.Load() < chaosDrops {
			budget = int64(4<<10 + p.rng.IntN(60<<10))
		}
		p.wg.Add(2)
		go p.pipe(client, server, -1)
		go p.pipe(server, client, budget)
	}
}

// track records a pair of connections, unless the proxy is closed.
func (p *chaosProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

// pipe copies src to dst, at most budget bytes if it is not negative,
// then closes both.
func (p *chaosProxy) pipe(src, dst net.Conn, budget int64) {
	defer p.wg.Done()
	if budget < 0 {
		_, _ = io.Copy(dst, src)
	} else if n, _ := io.CopyN(dst, src, budget); n == budget && p.drops.Add(1) > chaosDrops {
		// Over the bound (a race of cuts): go on uncut.
		_, _ = io.Copy(dst, src)
	}
	_ = src.Close()
	_ = dst.Close()
}

func (p *chaosProxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// lockedRand is a seeded random source that goroutines share.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// countHandler counts the log records with one message, and drops all.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelDebug }

func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}

func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }
