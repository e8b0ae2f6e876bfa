package pgstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/internal/durable/durabletest"
	"github.com/seed014c2c51/chatroom/internal/serverproc"
	"github.com/seed014c2c51/chatroom/pgstore"
	"github.com/seed014c2c51/chatroom/redisbroker"
)

// historySize is the broker's history in these tests: all they send, so
// that the broker's history and the database can be compared whole.
const historySize = 10000

// testRedis is a redis-server of the test's own, without persistence, that
// the test can kill and start again, empty, on the same port.
type testRedis struct {
	t *testing.T
	*serverproc.Redis
}

func startRedis(t *testing.T) *testRedis {
	t.Helper()
	r, err := serverproc.StartRedis(waitTimeout)
	switch {
	case errors.Is(err, serverproc.ErrNoRedis) && os.Getenv("CI") != "true":
		t.Skip("redis-server not found on PATH: skipping")
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return &testRedis{t: t, Redis: r}
}

func (r *testRedis) addr() string { return r.Addr() }

// restart kills the server and starts it again, empty.
func (r *testRedis) restart() {
	r.t.Helper()
	if err := r.Restart(); err != nil {
		r.t.Fatal(err)
	}
}

// newBroker returns a broker of a client of its own (a node's).
func newBroker(addr string) (*redisbroker.Broker, *redis.Client) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second,
		WriteTimeout: time.Second, ContextTimeoutEnabled: true, MaxRetries: -1})
	return redisbroker.New(c, redisbroker.WithHistorySize(historySize)), c
}

// node is one node of a cluster: a room on a broker of its own, its history
// in the shared database through a DB of its own.
type node struct {
	room  *chatroom.Room
	store chatroom.DatabaseStore
	srv   *chatroomtest.Server
	b     *redisbroker.Broker
}

func startNode(t *testing.T, redisAddr, url string) *node {
	t.Helper()
	b, c := newBroker(redisAddr)
	t.Cleanup(func() { _ = b.Close(); _ = c.Close() })
	st, err := open(t, url, pgstore.Options{}).Room(context.Background(), "lobby", pgstore.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	rm := chatroom.New(chatroom.WithName("lobby"), chatroom.WithEnvelope(), chatroom.WithBroker(b),
		chatroom.WithHistory(chatroom.History{Store: st}))
	return &node{room: rm, store: st, b: b, srv: chatroomtest.NewServer(t, rm, chatroomtest.IgnoreIDAndTime())}
}

// brokerFrames returns the broker's history of the room as the database
// should hold it: the room's IDs (the broker's times 1024) and texts.
func brokerFrames(t *testing.T, b *redisbroker.Broker) []stored {
	t.Helper()
	pubs, _, err := b.History(context.Background(), "lobby", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for _, p := range pubs {
		text, ok := wireText(p)
		if !ok {
			t.Fatalf("undecodable publication %q", p.Data)
		}
		out = append(out, stored{ID: p.ID * 1024, Type: "message", Text: text})
	}
	return out
}

// wireText digs the text out of a room's publication. Its form is the
// room's own; the test only needs the text, which is unique.
func wireText(p broker.Publication) (string, bool) {
	s := string(p.Data)
	i := strings.Index(s, `"message":"`)
	if i < 0 {
		return "", false
	}
	s = s[i+len(`"message":"`):]
	j := strings.IndexByte(s, '"')
	return s[:j], j >= 0
}

// Two nodes: every frame is in the database once, with the broker's ID,
// whichever node sent it; a client scrolls back and resumes on either.
func TestClusterWritesOnce(t *testing.T) {
	url := newDatabase(t)
	r := startRedis(t)
	a, b := startNode(t, r.addr(), url), startNode(t, r.addr(), url)
	ann, bob := a.srv.Connect("ann"), b.srv.Connect("bob")
	var ids []uint64
	for i := range 20 {
		c := ann
		if i%2 == 1 {
			c = bob
		}
		c.Send(fmt.Sprint("m", i))
		m := ann.Next()
		if bm := bob.Next(); bm.ID != m.ID {
			t.Fatalf("ann saw ID %d, bob %d", m.ID, bm.ID)
		}
		ids = append(ids, m.ID)
	}
	for _, n := range []*node{a, b} {
		if err := n.store.Flush(context.Background(), ids[19]); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(brokerFrames(t, a.b), rows(t, url, "lobby")); diff != "" {
		t.Errorf("broker's history (-) and database (+) differ:\n%s", diff)
	}
	msgs, more := durabletest.History(t, bob, ids[10], 5)
	if diff := cmp.Diff([]string{"m5", "m6", "m7", "m8", "m9"}, durabletest.Texts(msgs)); diff != "" || !more {
		t.Errorf("scrollback on node b (-want +got):\n%s more %v", diff, more)
	}
}

// The node helper is this test binary run again with these variables set:
// a node with a member of its own (so that it is subscribed and writes),
// which broadcasts and prints "sent <i>" once each Broadcast has returned,
// until it is killed (or nodeLimit).
const (
	nodeRedis = "PGSTORE_NODE_REDIS"
	nodeDB    = "PGSTORE_NODE_DB"
	nodeLimit = 100000
)

func helperEnv() bool { return os.Getenv(nodeRedis) != "" }

func nodeHelper() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	p, err := pgxpool.New(ctx, os.Getenv(nodeDB))
	if err != nil {
		fail(err)
	}
	db, err := pgstore.Open(ctx, p, pgstore.Options{})
	if err != nil {
		fail(err)
	}
	st, err := db.Room(ctx, "lobby", pgstore.Retention{})
	if err != nil {
		fail(err)
	}
	b, _ := newBroker(os.Getenv(nodeRedis))
	rm := chatroom.New(chatroom.WithName("lobby"), chatroom.WithEnvelope(), chatroom.WithBroker(b), chatroom.WithHistory(chatroom.History{Store: st}))
	srv := httptest.NewServer(rm)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"?nickname=helper", nil)
	if err != nil {
		fail(err)
	}
	go func() {
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
		}
	}()
	for rm.Len() == 0 {
		time.Sleep(time.Millisecond) // a member of its own, in another process's test: no event to wait on
	}
	for i := range nodeLimit {
		if _, err := rm.Broadcast(ctx, chatroom.Message{Text: fmt.Sprint("k", i)}); err != nil {
			fail(err)
		}
		fmt.Println("sent", i)
	}
}

// A node is killed (SIGKILL) in the middle of its stream: every frame the
// broker kept is in the database, written by the node that lived, and the
// two agree exactly.
func TestNodeKilled(t *testing.T) {
	url := newDatabase(t)
	r := startRedis(t)
	b := startNode(t, r.addr(), url)
	bob := b.srv.Connect("bob")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeRedis+"="+r.addr(), nodeDB+"="+url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for sent := 0; sent < 200 && lines.Scan(); {
		if strings.HasPrefix(lines.Text(), "sent ") {
			sent++
		} else {
			t.Logf("node: %s", lines.Text())
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	want := brokerFrames(t, b.b)
	if len(want) == 0 {
		t.Fatal("the broker kept no frame")
	}
	t.Logf("the broker kept %d frames of the node's 200 Broadcasts and more", len(want))
	last := want[len(want)-1].ID
	for i := 0; i < historySize; i++ {
		if m := bob.Next(); m.ID >= last {
			break
		}
	}
	if err := b.store.Flush(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, rows(t, url, "lobby")); diff != "" {
		t.Errorf("broker's history (-) and database (+) differ after the node's death:\n%s", diff)
	}
}

// Redis restarts, empty, between writes: the database keeps what came
// before, the frames nodes delivered on their own during the outage are not
// the cluster's and are not written, what came after is written with the
// broker's new IDs, and a node that joins writes what the broker has and
// the database lacks. A client resuming from before the restart gets it
// all from the database and the broker, with no truncated notice.
func TestBrokerRestart(t *testing.T) {
	url := newDatabase(t)
	r := startRedis(t)
	a, b := startNode(t, r.addr(), url), startNode(t, r.addr(), url)
	ann, bob := a.srv.Connect("ann"), b.srv.Connect("bob")
	var before []stored
	for i := range 5 {
		ann.Send(fmt.Sprint("before", i))
		m := bob.Next()
		before = append(before, stored{ID: m.ID, Type: "message", Text: m.Text})
		ann.Next()
	}

	r.restart()
	// Until both nodes have subscribed again, a frame from node a every
	// 10ms (at most 1000), until one reaches bob.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := range 1000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_, _ = a.room.Broadcast(context.Background(), chatroom.Message{Text: fmt.Sprint("again", i)})
		}
	}()
	bob.NextFunc(func(m chatroom.Message) bool { return strings.HasPrefix(m.Text, "again") })
	close(stop)
	<-done
	for i := range 5 {
		ann.Send(fmt.Sprint("after", i))
		for m := bob.Next(); m.Text != fmt.Sprint("after", i); m = bob.Next() {
		}
	}
	// A node that joins fills in what the broker kept and no node wrote
	// (the again frames the broker took before the nodes subscribed).
	c := startNode(t, r.addr(), url)
	carl := c.srv.Connect("carl", chatroomtest.Query("since", strconv.FormatUint(before[0].ID, 10)))
	want := append(before, brokerFrames(t, a.b)...)
	var got []stored
	for range len(want) - 1 {
		m := carl.Next()
		got = append(got, stored{ID: m.ID, Type: string(m.Type), Text: m.Text})
	}
	if diff := cmp.Diff(want[1:], got); diff != "" {
		t.Errorf("resumed from before the restart (-want +got):\n%s", diff)
	}
	for _, n := range []*node{a, b, c} {
		if err := n.store.Flush(context.Background(), want[len(want)-1].ID); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(want, rows(t, url, "lobby")); diff != "" {
		t.Errorf("frames before the restart and the broker's history (-) and database (+) differ:\n%s", diff)
	}
}
