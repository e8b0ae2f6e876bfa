package main

import (
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

// testTimeout bounds each wait of a test: a frame crosses nodes through
// the embedded NATS server, which is slow to start under the race detector.
const testTimeout = 20 * time.Second

// startCluster runs the example with two nodes on free loopback ports, with
// args, and returns the nodes' addresses and a kit server for each node, to
// connect clients to it; it stops when the test ends.
func startCluster(t *testing.T, args ...string) ([]string, []*chatroomtest.Server) {
	t.Helper()
	s := servetest.Start(t, run, append([]string{"-addrs", "127.0.0.1:0,127.0.0.1:0"}, args...)...)
	nodes := make([]*chatroomtest.Server, len(s.Ready))
	for i, addr := range s.Ready {
		nodes[i] = chatroomtest.Remote(t, "ws://"+addr, chatroomtest.Timeout(testTimeout))
	}
	return s.Ready, nodes
}

// join connects nickname to room on a node, resuming after since if it is
// not empty.
func join(node *chatroomtest.Server, room, nickname, since string) *chatroomtest.Client {
	opts := []chatroomtest.Option{chatroomtest.Path("/rooms/" + room + "/chat")}
	if since != "" {
		opts = append(opts, chatroomtest.Query("since", since))
	}
	return node.Connect(nickname, opts...)
}

// joinOf matches the join notice of nickname. Presence travels between
// nodes on its own, so its frames come in no order a test can know.
func joinOf(nickname string) func(chatroom.Message) bool {
	return func(m chatroom.Message) bool { return m.Type == chatroom.TypeJoin && m.Nickname == nickname }
}

// messageOrTruncated matches a message, or the notice that some are gone.
func messageOrTruncated(m chatroom.Message) bool {
	return m.Type == chatroom.TypeMessage || m.Type == chatroom.TypeTruncated
}

func isMessage(m chatroom.Message) bool { return m.Type == chatroom.TypeMessage }

// A message crosses from one node to the other, presence spans both, and
// a client that leaves one node and comes back on the other resumes where
// it was.
func TestMessageCrossesNodes(t *testing.T) {
	_, nodes := startCluster(t)
	ann := join(nodes[0], "lobby", "ann", "")
	bob := join(nodes[1], "lobby", "bob", "")
	// ann, on node 1, learns that bob joined on node 2.
	ann.NextFunc(joinOf("bob"))

	ann.Send("hello from node 1")
	got := bob.NextFunc(isMessage)
	if got.Nickname != "ann" || got.Text != "hello from node 1" {
		t.Fatalf("bob, on node 2, got %+v", got)
	}
	last := got.ID
	bob.Close()

	ann.Send("while bob was away")
	bob = join(nodes[0], "lobby", "bob", strconv.FormatUint(last, 10))
	got = bob.NextFunc(messageOrTruncated)
	if got.Type != chatroom.TypeMessage || got.Text != "while bob was away" {
		t.Fatalf("bob, resuming on node 1, got %+v, want what he missed", got)
	}
}

// Every node closes idle keep-alive connections after -idle-timeout, while
// members outlive -read-timeout and -write-timeout: those bound ordinary
// requests, not WebSockets.
func TestTimeouts(t *testing.T) {
	limits := servetest.Short()
	addrs, nodes := startCluster(t, servetest.Args(limits)...)
	joinedAt := time.Now()
	ann := join(nodes[0], "lobby", "ann", "")
	bob := join(nodes[1], "lobby", "bob", "")
	ann.NextFunc(joinOf("bob"))

	for _, addr := range addrs {
		t.Log(addr, servetest.ExpectIdleClosed(t, addr, "/", 200, limits.IdleTimeout))
	}

	servetest.ExpectOutlived(t, limits, joinedAt)
	ann.Send("still here")
	if got := bob.NextFunc(isMessage); got.Nickname != "ann" || got.Text != "still here" {
		t.Fatalf("bob got %+v", got)
	}
	bob.Send("me too")
	// ann sees the room's order: her own message, then bob's answer to it.
	for _, want := range []chatroom.Message{{Nickname: "ann", Text: "still here"}, {Nickname: "bob", Text: "me too"}} {
		if got := ann.NextFunc(isMessage); got.Nickname != want.Nickname || got.Text != want.Text {
			t.Fatalf("ann got %+v, want %s: %s", got, want.Nickname, want.Text)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-history", "0"}, {"-idle-timeout", "0s"}, {"-max-header-bytes", "0"}} {
		if err := run(t.Context(), args, io.Discard, nil); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}
