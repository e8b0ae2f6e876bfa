package main

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

const testTimeout = 20 * time.Second

// startCluster runs the example on free loopback ports, with args, and
// returns the nodes' addresses; it stops when the test ends.
func startCluster(t *testing.T, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	args = append([]string{"-addrs", "127.0.0.1:0,127.0.0.1:0"}, args...)
	go func() { done <- run(ctx, args, io.Discard, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case addrs := <-ready:
		return addrs
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("the cluster did not start")
	}
	return nil
}

type client struct {
	t    *testing.T
	conn *websocket.Conn
	ctx  context.Context
}

func dial(t *testing.T, addr, room, nickname, since string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	u := "ws://" + addr + "/rooms/" + room + "/chat?nickname=" + nickname
	if since != "" {
		u += "&since=" + since
	}
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &client{t: t, conn: conn, ctx: ctx}
}

func (c *client) send(text string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"message": text})
	if err := c.conn.Write(c.ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next frame of one of the given types, skipping others.
func (c *client) next(types ...chatroom.MessageType) chatroom.Message {
	c.t.Helper()
	for {
		_, data, err := c.conn.Read(c.ctx)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		var m chatroom.Message
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("frame %s: %v", data, err)
		}
		for _, typ := range types {
			if m.Type == typ {
				return m
			}
		}
	}
}

// A message crosses from one node to the other, presence spans both, and
// a client that leaves one node and comes back on the other resumes where
// it was.
func TestMessageCrossesNodes(t *testing.T) {
	addrs := startCluster(t)
	ann := dial(t, addrs[0], "lobby", "ann", "")
	bob := dial(t, addrs[1], "lobby", "bob", "")
	// ann, on node 1, learns that bob joined on node 2.
	for m := ann.next(chatroom.TypeJoin); m.Nickname != "bob"; m = ann.next(chatroom.TypeJoin) {
	}

	ann.send("hello from node 1")
	got := bob.next(chatroom.TypeMessage)
	if got.Nickname != "ann" || got.Text != "hello from node 1" {
		t.Fatalf("bob, on node 2, got %+v", got)
	}
	last := got.ID
	_ = bob.conn.Close(websocket.StatusNormalClosure, "")

	ann.send("while bob was away")
	bob = dial(t, addrs[0], "lobby", "bob", strconv.FormatUint(last, 10))
	got = bob.next(chatroom.TypeMessage, chatroom.TypeTruncated)
	if got.Type != chatroom.TypeMessage || got.Text != "while bob was away" {
		t.Fatalf("bob, resuming on node 1, got %+v, want what he missed", got)
	}
}

// Every node closes idle keep-alive connections after -idle-timeout, while
// members outlive -read-timeout and -write-timeout: those bound ordinary
// requests, not WebSockets.
func TestTimeouts(t *testing.T) {
	limits := servetest.Short()
	addrs := startCluster(t, servetest.Args(limits)...)
	joinedAt := time.Now()
	ann := dial(t, addrs[0], "lobby", "ann", "")
	bob := dial(t, addrs[1], "lobby", "bob", "")
	for m := ann.next(chatroom.TypeJoin); m.Nickname != "bob"; m = ann.next(chatroom.TypeJoin) {
	}

	for _, addr := range addrs {
		t.Log(addr, servetest.ExpectIdleClosed(t, addr, "/", 200, limits.IdleTimeout))
	}

	servetest.ExpectOutlived(t, limits, joinedAt)
	ann.send("still here")
	if got := bob.next(chatroom.TypeMessage); got.Nickname != "ann" || got.Text != "still here" {
		t.Fatalf("bob got %+v", got)
	}
	bob.send("me too")
	// ann sees the room's order: her own message, then bob's answer to it.
	for _, want := range []chatroom.Message{{Nickname: "ann", Text: "still here"}, {Nickname: "bob", Text: "me too"}} {
		if got := ann.next(chatroom.TypeMessage); got.Nickname != want.Nickname || got.Text != want.Text {
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
