package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

func TestCommands(t *testing.T) {
	srv := start(t)
	sei := join(t, srv, "sei")
	ann := join(t, srv, "ann")
	// ann's message proves to sei that ann has joined.
	sei.expect(message("ann", "hi, I am ann"))

	// Each command is answered to sei alone.
	for _, tt := range []struct{ command, answer string }{
		{"/who", "2 here: sei, ann"},
		{"/WHO", "2 here: sei, ann"},
		{"/echo  hello,   bot ", "hello,   bot"},
		{"/echo", "usage: /echo <text>"},
		{"/me", "usage: /me <action>"},
		{"/help", help},
		{"/dance", "unknown command /dance; try /help"},
		{"/", "unknown command /; try /help"},
	} {
		sei.say(tt.command)
		sei.expect(fromBot("sei", tt.answer))
	}
	before := time.Now().UTC().Truncate(time.Second)
	sei.say("/time")
	got := sei.read()
	stamp, ok := strings.CutPrefix(got.Text, "server time: ")
	when, err := time.Parse(time.RFC3339, stamp)
	if !ok || err != nil || when.Before(before) || when.After(time.Now()) {
		t.Errorf("/time = %q, want the time", got.Text)
	}

	// Rewritten commands reach everyone. That they are ann's next frames
	// also shows that none of the commands above reached her.
	sei.say("/me waves")
	sei.say("//shrug")
	sei.say("plain text")
	for _, c := range []*client{ann, sei} {
		c.expect(message("sei", "* sei waves"))
		c.expect(message("sei", "/shrug"))
		c.expect(message("sei", "plain text"))
	}
	// ann asks too, and is answered alone.
	ann.say("/who")
	ann.expect(fromBot("ann", "2 here: sei, ann"))
	ann.say("bye")
	sei.expect(message("ann", "bye"))
}

func TestAnnounce(t *testing.T) {
	srv := start(t, "-announce", "5ms")
	sei := dial(t, srv, "sei")
	sei.expect(fromBot("sei", "welcome, sei! type /help to see what I can do"))
	// The bot announces only to a room with members, so after the greeting
	// the next frame is an announcement.
	sei.expect(chatroom.Message{Type: chatroom.TypeSystem, Nickname: "bot", Text: "psst: type /help to see what I can do"})
}

func TestReservedNickname(t *testing.T) {
	srv := start(t)
	for _, nickname := range []string{"bot", "BOT"} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, resp, err := websocket.Dial(ctx, "ws://"+srv.addr+"/chat?nickname="+nickname, nil)
		cancel()
		if err == nil {
			c.CloseNow()
			t.Fatalf("%s joined", nickname)
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %v, want HTTP 400", nickname, err)
		}
	}
}

func TestShutdown(t *testing.T) {
	srv := start(t, "-announce", "1h")
	sei := join(t, srv, "sei")
	srv.stop() // SIGINT
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, frame, err := sei.conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Errorf("read = %q, %v; want close status 1001", frame, err)
	}
	if err := srv.wait(); err != nil {
		t.Errorf("run = %v, want nil", err)
	}
}

// The server closes idle keep-alive connections after -idle-timeout, while
// a member outlives -read-timeout and -write-timeout: those bound ordinary
// requests, not WebSockets.
func TestTimeouts(t *testing.T) {
	limits := servetest.Short()
	srv := start(t, servetest.Args(limits)...)
	joinedAt := time.Now()
	sei := join(t, srv, "sei")

	// GET /chat without an upgrade: 426, and the connection is kept.
	t.Log(servetest.ExpectIdleClosed(t, srv.addr, "/chat", 200, limits.IdleTimeout))

	servetest.ExpectOutlived(t, limits, joinedAt)
	sei.say("/echo still here")
	sei.expect(fromBot("sei", "still here"))
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-announce", "-1s"}, {"-write-timeout", "0s"}} {
		if err := run(t.Context(), args, io.Discard, nil); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}

// message is a member's message as the room broadcasts it.
func message(nickname, text string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeMessage, Nickname: nickname, Text: text}
}

// fromBot is the bot's private answer to a member.
func fromBot(to, text string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeDirect, Nickname: "bot", To: to, Text: text}
}

// server is the example running on a loopback port.
type server struct {
	addr string
	stop context.CancelFunc // SIGINT
	done chan error
	once sync.Once
	err  error
}

// start runs the example with args on 127.0.0.1 and shuts it down when the
// test ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	s := &server{stop: stop, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { s.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard, ready) }()
	select {
	case s.addr = <-ready:
	case err := <-s.done:
		stop()
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		if err := s.wait(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

// wait stops the server and returns what run returned.
func (s *server) wait() error {
	s.once.Do(func() {
		s.stop()
		s.err = <-s.done
	})
	return s.err
}

// client is a member's connection.
type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, srv *server, nickname string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+srv.addr+"/chat?nickname="+nickname, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &client{t: t, conn: conn}
}

// join connects as nickname and returns once the member has joined: the
// greeting comes before the member is in the room, its own message after.
func join(t *testing.T, srv *server, nickname string) *client {
	t.Helper()
	c := dial(t, srv, nickname)
	c.expect(fromBot(nickname, "welcome, "+nickname+"! type /help to see what I can do"))
	c.say("hi, I am " + nickname)
	c.expect(message(nickname, "hi, I am "+nickname))
	return c
}

func (c *client) say(text string) {
	c.t.Helper()
	frame, err := json.Marshal(map[string]string{"message": text})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, decoded, without its id and time once it has
// checked that they are there.
func (c *client) read() chatroom.Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	_, frame, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var msg chatroom.Message
	if err := json.Unmarshal(frame, &msg); err != nil {
		c.t.Fatalf("frame %s: %v", frame, err)
	}
	if msg.ID == 0 || msg.Time.IsZero() {
		c.t.Errorf("frame %s: no id or time", frame)
	}
	msg.ID, msg.Time = 0, time.Time{}
	return msg
}

func (c *client) expect(want chatroom.Message) {
	c.t.Helper()
	if diff := cmp.Diff(want, c.read()); diff != "" {
		c.t.Errorf("frame (-want +got):\n%s", diff)
	}
}
