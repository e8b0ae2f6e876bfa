package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

func TestCommands(t *testing.T) {
	srv := start(t)
	sei := join(srv, "sei")
	ann := join(srv, "ann")
	// ann's message proves to sei that ann has joined.
	sei.Expect(message("ann", "hi, I am ann"))

	// Each command is answered to sei alone, and the answer is all sei
	// hears: the room has error frames, but the hook's chatroom.ErrHandled
	// tells it to send none. An error frame would come between two answers,
	// or between the last one and the messages below.
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
		sei.Send(tt.command)
		sei.Expect(fromBot("sei", tt.answer))
	}
	before := time.Now().UTC().Truncate(time.Second)
	sei.Send("/time")
	got := sei.Next()
	stamp, ok := strings.CutPrefix(got.Text, "server time: ")
	when, err := time.Parse(time.RFC3339, stamp)
	if !ok || err != nil || when.Before(before) || when.After(time.Now()) {
		t.Errorf("/time = %q, want the time", got.Text)
	}
	// The room speaks the envelope: the bot's answers are stamped too.
	if got.Type != chatroom.TypeDirect || got.ID == 0 || got.Time.IsZero() {
		t.Errorf("/time answer %+v: want a direct frame with an id and a time", got)
	}

	// Rewritten commands reach everyone. That they are ann's next frames
	// also shows that none of the commands above reached her.
	sei.Send("/me waves")
	sei.Send("//shrug")
	sei.Send("plain text")
	for _, c := range []*chatroomtest.Client{ann, sei} {
		c.Expect(message("sei", "* sei waves"), message("sei", "/shrug"), message("sei", "plain text"))
	}
	// ann asks too, and is answered alone.
	ann.Send("/who")
	ann.Expect(fromBot("ann", "2 here: sei, ann"))
	ann.Send("bye")
	sei.Expect(message("ann", "bye"))
}

// The error frames the room does send: bad input gets one, and the sender
// stays connected. So the commands' silence above is the hook's doing.
func TestBadInputGetsAnErrorFrame(t *testing.T) {
	srv := start(t)
	sei := join(srv, "sei")
	sei.SendRaw(websocket.MessageText, []byte(`{"message":1}`))
	sei.Expect(chatroom.Message{Type: chatroom.TypeError, Text: `expected {"message": string}`, Code: int(websocket.StatusInvalidFramePayloadData)})
	sei.Send("/echo still here")
	sei.Expect(fromBot("sei", "still here"))
}

func TestAnnounce(t *testing.T) {
	srv := start(t, "-announce", "5ms")
	sei := srv.chat.Connect("sei")
	sei.Expect(greeting("sei"))
	// The bot announces only to a room with members, so after the greeting
	// the next frame is an announcement.
	sei.Expect(chatroom.Message{Type: chatroom.TypeSystem, Nickname: "bot", Text: "psst: type /help to see what I can do"})
}

func TestReservedNickname(t *testing.T) {
	srv := start(t)
	for _, nickname := range []string{"bot", "BOT"} {
		c, resp, err := srv.chat.Dial(nickname)
		if c != nil {
			t.Fatalf("%s joined", nickname)
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %v, want HTTP 400", nickname, err)
		}
	}
}

func TestShutdown(t *testing.T) {
	srv := start(t, "-announce", "1h")
	sei := join(srv, "sei")
	if err := srv.Stop(); err != nil { // SIGINT
		t.Errorf("run = %v, want nil", err)
	}
	sei.ExpectCloseReason(websocket.StatusGoingAway, "room closed")
}

// The server closes idle keep-alive connections after -idle-timeout, while
// a member outlives -read-timeout and -write-timeout: those bound ordinary
// requests, not WebSockets.
func TestTimeouts(t *testing.T) {
	limits := servetest.Short()
	srv := start(t, servetest.Args(limits)...)
	joinedAt := time.Now()
	sei := join(srv, "sei")

	// GET /chat without an upgrade: 426, and the connection is kept.
	t.Log(servetest.ExpectIdleClosed(t, srv.Ready, "/chat", 200, limits.IdleTimeout))

	servetest.ExpectOutlived(t, limits, joinedAt)
	sei.Send("/echo still here")
	sei.Expect(fromBot("sei", "still here"))
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

func greeting(nickname string) chatroom.Message {
	return fromBot(nickname, "welcome, "+nickname+"! type /help to see what I can do")
}

// example is one run of the example on a loopback port.
type example struct {
	*servetest.Server[string]
	// chat connects the kit's clients to the room at /chat. They compare
	// frames without their IDs and times, which the room stamps from its
	// clock.
	chat *chatroomtest.Server
}

// start runs the example with args on 127.0.0.1 and shuts it down when the
// test ends.
func start(t *testing.T, args ...string) *example {
	t.Helper()
	s := servetest.Start(t, run, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	return &example{Server: s, chat: chatroomtest.Remote(t, "ws://"+s.Ready+"/chat", chatroomtest.IgnoreIDAndTime())}
}

// join connects as nickname and returns once the member has joined: the
// greeting comes before the member is in the room, its own message after.
func join(srv *example, nickname string) *chatroomtest.Client {
	c := srv.chat.Connect(nickname)
	c.Expect(greeting(nickname))
	c.Send("hi, I am " + nickname)
	c.Expect(message(nickname, "hi, I am "+nickname))
	return c
}
