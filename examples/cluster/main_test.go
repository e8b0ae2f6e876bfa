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
)

const testTimeout = 20 * time.Second

// startCluster runs the example on free loopback ports and returns the
// nodes' addresses; it stops when the test ends.
func startCluster(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addrs", "127.0.0.1:0,127.0.0.1:0"}, io.Discard, ready) }()
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
