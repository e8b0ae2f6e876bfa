// Package brokertest checks a broker.Broker the way rooms use it: three
// nodes, each a Room behind its own httptest server with its own
// connection to one backend, and real WebSocket clients on every node. The
// NATS and Redis adapters run it against real servers; MemoryBackend runs
// it within one process.
//
//	func TestCluster(t *testing.T) {
//		brokertest.RunCluster(t, func(t *testing.T) brokertest.Backend {
//			srv := startServer(t)
//			return brokertest.Backend{
//				Connect: func(t *testing.T) broker.Broker { return connect(t, srv) },
//				Stop:    srv.Kill,
//				Start:   srv.Start,
//				Pause:   srv.SIGSTOP,
//				Resume:  srv.SIGCONT,
//			}
//		})
//	}
package brokertest

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// A Backend is one broker server (or cluster of servers) that nodes connect
// to.
type Backend struct {
	// Connect returns a broker for one node: a connection of its own to the
	// backend. It must implement io.Closer when DeadNode is run; Close
	// stands for the node's process dying. RunCluster closes it at the end
	// of the test otherwise.
	Connect func(t *testing.T) broker.Broker
	// Stop stops the backend, as a crash or a restart would, and Start
	// starts it again where it was. Both nil skips the outage tests.
	Stop, Start func(t *testing.T)
	// Pause makes the backend hang without closing its connections, as a
	// server that stops being scheduled does (SIGSTOP): calls get no
	// answer, and what they sent stays unread. Resume lets it go on
	// (SIGCONT): it then runs what it had been sent, even what its callers
	// gave up waiting for. Both nil skips the Hang test.
	Pause, Resume func(t *testing.T)
}

// Heartbeat is the rooms' heartbeat in the tests (chatroom.WithHeartbeat),
// short so that a dead node's members leave within a test's patience.
const Heartbeat = 100 * time.Millisecond

// RunCluster runs the cluster semantics against the backend newBackend
// starts, one new backend per subtest:
//
//   - Delivery: a message sent on any node reaches every member of the room
//     on every node exactly once, each sender's messages in order; rooms
//     stay isolated; direct messages cross nodes.
//   - Resend: a message with a ref is acknowledged with its ID; a resend
//     of it by the same sender is acknowledged with that ID and delivered
//     nowhere again, and so is a direct message's, through another node on
//     a broker.DedupBroker, through the same node on another broker.
//   - Presence: the member list and join and leave notices span the nodes;
//     a node whose broker connection dies has its members leave the others'
//     presence within four heartbeats.
//   - History (broker.HistoryBroker only): a joiner on any node receives
//     the room's history, and a client that resumes on another node with
//     ?since= receives exactly what it missed.
//   - Store: a Store with a HistoryBroker is refused by chatroom.New; with a
//     plain broker each node's Store is written with every frame the node
//     delivers, and gives that node's joiners its history.
//   - LateRoom: a room created on a node after the broker has numbered many
//     of its frames gives IDs that a client resumes from, on any node, six
//     times over, without a spurious truncated notice, a duplicate or a
//     loss.
//   - Outage (Backend.Stop and Start): while the backend is down, members on
//     one node still reach each other; other nodes do not receive those
//     messages, ever; after the restart messages cross nodes again, without
//     any node or client doing anything. OutageIDs: every client's frame
//     IDs keep increasing through it, none reused, and a client that left
//     during the outage resumes after it with no duplicate and no loss.
//   - Hang (Backend.Pause and Resume): messages sent while the backend
//     hangs for longer than a room waits for it are delivered, if at all,
//     by every node in one order with the same IDs, the sender's node
//     included; a later resume has no duplicate.
//   - Pipeline (broker.PipelineBroker only): batches sent without waiting
//     for the broker's answers reach every subscriber in the order sent.
func RunCluster(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Run("Delivery", func(t *testing.T) { testDelivery(t, newBackend(t)) })
	t.Run("DirectMessages", func(t *testing.T) { testDirect(t, newBackend(t)) })
	t.Run("Resend", func(t *testing.T) { testResend(t, newBackend(t)) })
	t.Run("Presence", func(t *testing.T) { testPresence(t, newBackend(t)) })
	t.Run("DeadNode", func(t *testing.T) { testDeadNode(t, newBackend(t)) })
	t.Run("History", func(t *testing.T) { testHistory(t, newBackend(t)) })
	t.Run("Store", func(t *testing.T) { testStore(t, newBackend(t)) })
	t.Run("LateRoom", func(t *testing.T) { testLateRoom(t, newBackend(t)) })
	t.Run("Outage", func(t *testing.T) { testOutage(t, newBackend(t)) })
	t.Run("OutageIDs", func(t *testing.T) { testOutageIDs(t, newBackend(t)) })
	t.Run("Hang", func(t *testing.T) { testHang(t, newBackend(t)) })
	t.Run("Pipeline", func(t *testing.T) { testPipeline(t, newBackend(t)) })
}

// node is one process of the cluster: a Registry behind its own server.
type node struct {
	name    string
	broker  broker.Broker
	rooms   *chatroom.Registry
	server  *chatroomtest.Server
	timeout time.Duration
}

func startNode(t *testing.T, b Backend, name string, opts ...chatroom.Option) *node {
	t.Helper()
	return startNodeOn(t, b.Connect(t), name, opts...)
}

// startNodeOn starts a node on br, which it closes when the test ends.
func startNodeOn(t *testing.T, br broker.Broker, name string, opts ...chatroom.Option) *node {
	t.Helper()
	opts = append([]chatroom.Option{chatroom.WithBroker(br), chatroom.WithHeartbeat(Heartbeat)}, opts...)
	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option { return opts }))
	mux := http.NewServeMux()
	mux.Handle("/rooms/{room}/chat", rooms)
	n := &node{name: name, broker: br, rooms: rooms, timeout: 10 * time.Second}
	n.server = chatroomtest.NewServer(t, mux, chatroomtest.Timeout(n.timeout))
	t.Cleanup(func() {
		if c, ok := br.(io.Closer); ok {
			_ = c.Close()
		}
	})
	return n
}

func startNodes(t *testing.T, b Backend, opts ...chatroom.Option) []*node {
	t.Helper()
	return []*node{startNode(t, b, "node1", opts...), startNode(t, b, "node2", opts...), startNode(t, b, "node3", opts...)}
}

// connect joins nickname to room on n.
func (n *node) connect(room, nickname string, opts ...chatroomtest.Option) *chatroomtest.Client {
	opts = append([]chatroomtest.Option{chatroomtest.Path("/rooms/" + room + "/chat")}, opts...)
	return n.server.Connect(nickname, opts...)
}

// keepHistory is the room option that keeps n frames of history, in the
// room or in a HistoryBroker.
func keepHistory(n int) chatroom.Option {
	return chatroom.WithHistory(chatroom.History{Len: n})
}

// storeHistory is the room option that keeps the history in s.
func storeHistory(s chatroom.Store) chatroom.Option {
	return chatroom.WithHistory(chatroom.History{Store: s})
}

func testDelivery(t *testing.T, b Backend) {
	nodes := startNodes(t, b)
	const perSender = 50
	var clients []*chatroomtest.Client
	for _, n := range nodes {
		for j := range 2 {
			clients = append(clients, n.connect("lobby", fmt.Sprintf("%s-%d", n.name, j)))
		}
	}
	// A member of another room on every node: it must receive nothing of
	// the lobby's.
	var others []*chatroomtest.Client
	for _, n := range nodes {
		others = append(others, n.connect("other", "other-"+n.name))
	}

	// The clients take turns, so that the nodes' publications interleave
	// at the broker; each client's messages go in order.
	for i := range perSender {
		for _, c := range clients {
			c.Send(strconv.Itoa(i))
		}
	}

	// Every client receives every message exactly once, each sender's in
	// order: the next number expected from each sender.
	for _, c := range clients {
		next := map[string]int{}
		for range len(clients) * perSender {
			m := c.Next()
			want := next[m.Nickname]
			if got, err := strconv.Atoi(m.Text); err != nil || got != want {
				t.Fatalf("%s: from %s got %q, want %d (duplicate, loss or reordering)", c.Nickname(), m.Nickname, m.Text, want)
			}
			next[m.Nickname]++
		}
		for _, s := range clients {
			if next[s.Nickname()] != perSender {
				t.Errorf("%s: got %d messages from %s, want %d", c.Nickname(), next[s.Nickname()], s.Nickname(), perSender)
			}
		}
	}
	// Isolation: each other-room member receives its own message first,
	// not the lobby's. A marker sent after the lobby's traffic proves it.
	for _, o := range others {
		o.Send("marker")
	}
	for _, o := range others {
		for range len(others) {
			if m := o.Next(); m.Text != "marker" {
				t.Errorf("%s received %q from %s: rooms are not isolated", o.Nickname(), m.Text, m.Nickname)
			}
		}
	}
	// Nothing more arrived for the lobby: a final message from node3 is
	// the next frame everywhere.
	clients[len(clients)-1].Send("last")
	for _, c := range clients {
		if m := c.Next(); m.Text != "last" {
			t.Errorf("%s: got %q after all the messages, want %q", c.Nickname(), m.Text, "last")
		}
	}
}

func testDirect(t *testing.T, b Backend) {
	nodes := startNodes(t, b, chatroom.WithDirectMessages())
	ann := nodes[0].connect("lobby", "ann", chatroomtest.IgnoreIDAndTime())
	bob := nodes[1].connect("lobby", "bob", chatroomtest.IgnoreIDAndTime())
	carl := nodes[2].connect("lobby", "carl", chatroomtest.IgnoreIDAndTime())
	// Each node learns of the others' members from their heartbeats or
	// notices; wait until ann's node knows bob.
	waitFor(t, nodes[0].timeout, "ann's node to see bob", func() bool {
		r, ok := nodes[0].rooms.Room("lobby")
		return ok && slices.Contains(r.Nicknames(), "bob")
	})
	ann.SendTo("bob", "psst")
	want := chatroom.Message{Type: chatroom.TypeDirect, Nickname: "ann", To: "bob", Text: "psst"}
	bob.Expect(want)
	ann.Expect(want)
	carl.Send("public")
	pub := chatroom.Message{Type: chatroom.TypeMessage, Nickname: "carl", Text: "public"}
	carl.Expect(pub) // and not the direct message before it
	bob.Expect(pub)
	ann.Expect(pub)
}

// presence is what a client knows of the room's members from the member
// list and the notices it received.
type presence map[string]bool

// apply updates p with m and reports whether m was a presence frame.
func (p presence) apply(m chatroom.Message) bool {
	switch m.Type {
	case chatroom.TypeMembers:
		clear(p)
		for _, n := range m.Members {
			p[n] = true
		}
	case chatroom.TypeJoin:
		p[m.Nickname] = true
	case chatroom.TypeLeave:
		delete(p, m.Nickname)
	default:
		return false
	}
	return true
}

func (p presence) list() []string {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// awaitPresence reads c's frames until what c knows of the members is
// want, and fails the test if a frame other than a presence frame comes
// first or the client's timeout passes.
func awaitPresence(t *testing.T, c *chatroomtest.Client, p presence, want ...string) {
	t.Helper()
	sort.Strings(want)
	for !slices.Equal(p.list(), want) {
		m := c.Next()
		if !p.apply(m) {
			t.Fatalf("%s: got %+v while waiting for members %v (has %v)", c.Nickname(), m, want, p.list())
		}
	}
}

func testPresence(t *testing.T, b Backend) {
	nodes := startNodes(t, b, chatroom.WithPresence())
	annP, bobP, carlP := presence{}, presence{}, presence{}
	ann := nodes[0].connect("lobby", "ann")
	awaitPresence(t, ann, annP, "ann")
	bob := nodes[1].connect("lobby", "bob")
	awaitPresence(t, bob, bobP, "ann", "bob")
	awaitPresence(t, ann, annP, "ann", "bob")
	carl := nodes[2].connect("lobby", "carl")
	awaitPresence(t, carl, carlP, "ann", "bob", "carl")
	awaitPresence(t, ann, annP, "ann", "bob", "carl")
	awaitPresence(t, bob, bobP, "ann", "bob", "carl")

	// Room.Nicknames agrees on every node.
	for _, n := range nodes {
		waitFor(t, n.timeout, n.name+"'s Nicknames", func() bool {
			r, ok := n.rooms.Room("lobby")
			if !ok {
				return false
			}
			got := slices.Clone(r.Nicknames())
			sort.Strings(got)
			return slices.Equal(got, []string{"ann", "bob", "carl"})
		})
	}

	bob.Close()
	awaitPresence(t, ann, annP, "ann", "carl")
	awaitPresence(t, carl, carlP, "ann", "carl")

	// A chat message now is the next frame: no stray notice before it.
	ann.Send("hi")
	for _, c := range []*chatroomtest.Client{ann, carl} {
		if m := c.Next(); m.Type != chatroom.TypeMessage || m.Text != "hi" {
			t.Errorf("%s: got %+v, want ann's message", c.Nickname(), m)
		}
	}
}

func testDeadNode(t *testing.T, b Backend) {
	nodes := startNodes(t, b, chatroom.WithPresence())
	annP := presence{}
	ann := nodes[0].connect("lobby", "ann")
	awaitPresence(t, ann, annP, "ann")
	zed := nodes[2].connect("lobby", "zed")
	awaitPresence(t, ann, annP, "ann", "zed")
	_ = zed

	closer, ok := nodes[2].broker.(io.Closer)
	if !ok {
		t.Skip("the backend's brokers are not io.Closers: cannot kill a node")
	}
	// The node dies: its broker connection goes, and with it its
	// heartbeats. Its member stays connected to it, so no leave notice is
	// published: only the expiry tells the others.
	died := time.Now()
	if err := closer.Close(); err != nil {
		t.Fatalf("closing node3's broker: %v", err)
	}
	awaitPresence(t, ann, annP, "ann")
	took := time.Since(died)
	t.Logf("a dead node's member left the others' presence after %v (heartbeat %v; documented bound 4 heartbeats)", took.Round(time.Millisecond), Heartbeat)
	// The bound is documented as four heartbeats; a loaded machine (the
	// race detector, two cores) may add scheduling delay, not a whole
	// order of magnitude.
	if took > 20*Heartbeat {
		t.Errorf("a dead node's member left after %v, far beyond 4 heartbeats of %v", took, Heartbeat)
	}
}
