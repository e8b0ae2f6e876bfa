package chatroomtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// shout is a message hook under test: it upper-cases every message.
func shout(_ context.Context, _ *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
	msg.Text = strings.ToUpper(msg.Text)
	return msg, nil
}

// A test of a message hook. In a test, the function given to Run is the
// test's body and t is its *testing.T; examples have none, so they use Run.
func Example() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.OnMessage(shout))
		srv := chatroomtest.NewServer(t, room)
		ann := srv.Connect("ann")
		bob := srv.Connect("bob") // Connect returns once bob has joined

		ann.Send("hello")
		ann.Expect(chatroom.Message{Nickname: "ann", Text: "HELLO"})
		bob.Expect(chatroom.Message{Nickname: "ann", Text: "HELLO"})

		ann.Send("bye")
		got := bob.Next() // for checks of your own
		fmt.Printf("%s: %s\n", got.Nickname, got.Text)
	})
	// Output: ann: BYE
}

// Envelope frames carry an ID and a time; IgnoreIDAndTime leaves them out of
// the comparison.
func ExampleIgnoreIDAndTime() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.WithPresence())
		srv := chatroomtest.NewServer(t, room, chatroomtest.IgnoreIDAndTime())

		ann := srv.Connect("ann")
		ann.Expect(
			chatroom.Message{Type: chatroom.TypeMembers, Members: []string{"ann"}},
			chatroom.Message{Type: chatroom.TypeJoin, Nickname: "ann"},
		)
		bob := srv.Connect("bob")
		bob.Expect(
			chatroom.Message{Type: chatroom.TypeMembers, Members: []string{"ann", "bob"}},
			chatroom.Message{Type: chatroom.TypeJoin, Nickname: "bob"},
		)
		ann.Expect(chatroom.Message{Type: chatroom.TypeJoin, Nickname: "bob"})
		fmt.Println(room.Nicknames())
	})
	// Output: [ann bob]
}

// With a fixed clock (chatroom.WithClock), IDs and times are reproducible:
// a room created at T numbers its frames from an ID that T and its name
// decide, in steps of 1024.
func ExampleClient_Expect() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		epoch := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
		room := chatroom.New(chatroom.WithEnvelope(), chatroom.WithClock(func() time.Time { return epoch }))
		srv := chatroomtest.NewServer(t, room)
		ann := srv.Connect("ann")

		ann.Send("hi")
		first := ann.Next().ID
		ann.Send("again")
		ann.Expect(chatroom.Message{Type: chatroom.TypeMessage, ID: first + 1024, Time: epoch, Nickname: "ann", Text: "again"})
		ann.Send("once more")
		fmt.Println(ann.NextRaw())
	})
	// Output: {"type":"message","id":1838510899203877,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","message":"once more"}
}

// Bad input closes the sender; a join hook's refusal closes the joiner.
func ExampleClient_ExpectClose() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.OnJoin(func(_ context.Context, m *chatroom.Member) error {
			if m.Nickname() == "mallory" {
				return errors.New("banned")
			}
			return nil
		}))
		srv := chatroomtest.NewServer(t, room)

		ann := srv.Connect("ann")
		ann.SendRaw(websocket.MessageText, []byte("{not JSON"))
		closed := ann.ExpectCloseReason(websocket.StatusInvalidFramePayloadData, "invalid JSON")

		mallory := srv.Connect("mallory")
		refused := mallory.ExpectClose(websocket.StatusPolicyViolation)
		fmt.Println(closed, refused)
	})
	// Output: true true
}

// To check that a message was not delivered, make a later one arrive and
// check that it comes next. Sync makes sure the room has handled the message
// first; no test waits out a timeout.
func ExampleClient_Sync() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.OnMessage(func(_ context.Context, _ *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
			if strings.Contains(msg.Text, "spam") {
				return msg, errors.New("spam")
			}
			return msg, nil
		}))
		srv := chatroomtest.NewServer(t, room)
		ann := srv.Connect("ann")
		bob := srv.Connect("bob")

		ann.Send("cheap spam")
		ann.Sync() // the hook has dropped it
		marker := chatroom.Message{Nickname: "test", Text: "marker"}
		if _, err := room.Broadcast(context.Background(), marker); err != nil {
			t.Fatalf("Broadcast: %v", err)
		}
		if bob.Expect(marker) && ann.Expect(marker) {
			fmt.Println("no spam")
		}
	})
	// Output: no spam
}

// A Registry takes the room's name from the path: Mount serves it at a
// pattern, and clients connect with Path.
func ExampleMount() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		reg := chatroom.NewRegistry()
		srv := chatroomtest.NewServer(t, chatroomtest.Mount("/rooms/{room}/chat", reg))
		ann := srv.Connect("ann", chatroomtest.Path("/rooms/lobby/chat"))
		bob := srv.Connect("bob", chatroomtest.Path("/rooms/attic/chat"))

		ann.Send("anyone?")
		ann.Expect(chatroom.Message{Nickname: "ann", Text: "anyone?"})
		bob.Send("just me")
		bob.Expect(chatroom.Message{Nickname: "bob", Text: "just me"})
		fmt.Println(reg.Rooms())
	})
	// Output: [{attic 1} {lobby 1}]
}

// An authenticator reads a header; Header sets it for one client.
func ExampleHeader() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.WithAuthenticator(func(r *http.Request) (chatroom.Identity, error) {
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				return chatroom.Identity{}, errors.New("bad token")
			}
			return chatroom.Identity{ID: "u1", Nickname: "sei"}, nil
		}))
		srv := chatroomtest.NewServer(t, room)

		sei := srv.Connect("", chatroomtest.Header("Authorization", "Bearer s3cret"))
		eve := srv.Connect("eve")
		eve.ExpectCloseReason(chatroom.StatusUnauthorized, "Unauthorized")

		sei.Send("hi")
		got := sei.Next()
		fmt.Printf("%s: %s\n", got.Nickname, got.Text)
	})
	// Output: sei: hi
}

// A client resumes a room's history with the since query parameter.
func ExampleQuery() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.WithHistory(chatroom.History{Len: 10}), chatroom.WithEnvelope())
		srv := chatroomtest.NewServer(t, room)
		ann := srv.Connect("ann")
		ann.Send("one")
		seen := ann.Next()
		ann.Send("two")
		ann.Next()

		bob := srv.Connect("bob", chatroomtest.Query("since", strconv.FormatUint(seen.ID, 10)))
		fmt.Println(bob.Next().Text)
	})
	// Output: two
}

// Dial returns the HTTP response of a request refused before the upgrade.
func ExampleServer_Dial() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		srv := chatroomtest.NewServer(t, chatroom.New())
		_, resp, err := srv.Dial("a\u0007b")
		if err == nil {
			t.Fatalf("Dial succeeded")
		}
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	})
	// Output: 400 chatroom: invalid nickname: contains control character U+0007
}

// Close shuts the room down and waits for its leave hooks, so a test can
// check what they did. The test's cleanup does the same.
func ExampleServer_Close() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		var mu sync.Mutex
		var left []string
		room := chatroom.New(chatroom.OnLeave(func(_ context.Context, m *chatroom.Member, reason error) {
			mu.Lock()
			defer mu.Unlock()
			left = append(left, fmt.Sprintf("%s (room closed: %t)", m.Nickname(), errors.Is(reason, chatroom.ErrRoomClosed)))
		}))
		srv := chatroomtest.NewServer(t, room)
		ann := srv.Connect("ann")

		srv.Close()
		ann.ExpectCloseReason(websocket.StatusGoingAway, "room closed")
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(left)
	})
	// Output: [ann (room closed: true)]
}

// A host tests its own server, with its routes and middleware, as it runs in
// production: Remote connects to it. The kit does not see the host's
// handler return, so each client first hears its own message, which proves
// it has joined.
func ExampleRemote() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New()
		t.Cleanup(func() { _ = room.Close() }) // registered first: runs last
		mux := http.NewServeMux()
		mux.Handle("GET /chat", room)
		host := httptest.NewServer(mux) // or the host's own http.Server, on a loopback port
		t.Cleanup(host.Close)

		srv := chatroomtest.Remote(t, host.URL+"/chat")
		ann := srv.Connect("ann")
		ann.Send("hi")
		ann.Expect(chatroom.Message{Nickname: "ann", Text: "hi"}) // ann has joined
		bob := srv.Connect("bob")
		bob.Send("hello")
		bob.Expect(chatroom.Message{Nickname: "bob", Text: "hello"})
		ann.Expect(chatroom.Message{Nickname: "bob", Text: "hello"})
		fmt.Println(room.Nicknames())
	})
	// Output: [ann bob]
}

// A frame whose place the test cannot know: a join notice among others.
// NextFunc skips to it.
func ExampleClient_NextFunc() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.WithPresence())
		srv := chatroomtest.NewServer(t, room, chatroomtest.IgnoreIDAndTime())
		ann := srv.Connect("ann") // receives the member list and her own join first
		srv.Connect("bob")

		got := ann.NextFunc(func(m chatroom.Message) bool {
			return m.Type == chatroom.TypeJoin && m.Nickname == "bob"
		})
		fmt.Println(got.Type, got.Nickname)
	})
	// Output: join bob
}

// Run reports failures to its writer and whether the function passed.
func ExampleRun() {
	passed := chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		srv := chatroomtest.NewServer(t, chatroom.New())
		ann := srv.Connect("ann")
		ann.SendRaw(websocket.MessageBinary, []byte{1, 2, 3})
		ann.ExpectClose(websocket.StatusPolicyViolation) // wrong: it is 1003
	})
	fmt.Println("passed:", passed)
	// Output:
	// chatroomtest: client "ann": ExpectClose: the connection was closed with status 1003 (StatusUnsupportedData) "binary messages are not supported"; want close status 1008 (StatusPolicyViolation)
	// passed: false
}
