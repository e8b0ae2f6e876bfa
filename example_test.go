package chatroom_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// chat dials url, sends each text as {"message": text} and prints the next
// replies frames it receives.
func chat(url string, replies int, texts ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer conn.CloseNow()
	for _, text := range texts {
		if err := conn.Write(ctx, websocket.MessageText, []byte(`{"message":"`+text+`"}`)); err != nil {
			fmt.Println("write:", err)
			return
		}
	}
	for range replies {
		_, frame, err := conn.Read(ctx)
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		fmt.Println(string(frame))
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

func wsURL(srv *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + path
}

// A room is an http.Handler: mount it at /chat, as in the original protocol.
func Example() {
	room := chatroom.New()
	defer room.Close()

	mux := http.NewServeMux()
	mux.Handle("/chat", room)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	chat(wsURL(srv, "/chat?nickname=sei"), 1, "hello")
	chat(wsURL(srv, "/chat"), 1, "who am I?")
	// Output:
	// {"nickname":"sei","message":"hello"}
	// {"nickname":"unknown_127.0.0.1","message":"who am I?"}
}

// Rooms mount under any prefix, next to the application's other routes, and
// several rooms in one process share nothing.
func Example_mux() {
	lobby, support := chatroom.New(), chatroom.New()
	defer lobby.Close()
	defer support.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.Handle("/api/v1/rooms/lobby/ws", lobby)
	mux.Handle("/api/v1/rooms/support/ws", support)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	chat(wsURL(srv, "/api/v1/rooms/lobby/ws?nickname=sei"), 1, "hi lobby")
	chat(wsURL(srv, "/api/v1/rooms/support/ws?nickname=kai"), 1, "help!")
	// Output:
	// {"nickname":"sei","message":"hi lobby"}
	// {"nickname":"kai","message":"help!"}
}

// A message hook rewrites messages, or refuses them with an error. A refused
// message is dropped; the sender stays connected.
func ExampleOnMessage() {
	room := chatroom.New(chatroom.OnMessage(func(ctx context.Context, from *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
		if strings.Contains(msg.Text, "spam") {
			return msg, errors.New("no spam, please")
		}
		msg.Text = strings.ReplaceAll(msg.Text, "darn", "d**n")
		return msg, nil
	}))
	defer room.Close()
	srv := httptest.NewServer(room)
	defer srv.Close()

	chat(wsURL(srv, "/?nickname=sei"), 1, "buy spam now", "darn, it works")
	// Output:
	// {"nickname":"sei","message":"d**n, it works"}
}

// Broadcast sends a message from the server, for bots and announcements. A
// join hook may greet a member alone with Member.Send.
func ExampleRoom_Broadcast() {
	room := chatroom.New(chatroom.OnJoin(func(ctx context.Context, m *chatroom.Member) error {
		return m.Send(ctx, chatroom.Message{Nickname: "bot", Text: "welcome, " + m.Nickname()})
	}))
	defer room.Close()
	srv := httptest.NewServer(room)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL(srv, "/?nickname=sei"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.CloseNow()
	_, greeting, _ := conn.Read(ctx) // the greeting also proves sei has joined
	fmt.Println(string(greeting))

	room.Broadcast(ctx, chatroom.Message{Nickname: "bot", Text: "maintenance at 10:00"})
	_, frame, _ := conn.Read(ctx)
	fmt.Println(string(frame))
	// Output:
	// {"nickname":"bot","message":"welcome, sei"}
	// {"nickname":"bot","message":"maintenance at 10:00"}
}

// Shutdown closes every member with status 1001 and waits for them. Call it
// after http.Server.Shutdown, which does not track WebSocket connections.
func ExampleRoom_Shutdown() {
	room := chatroom.New(chatroom.OnLeave(func(ctx context.Context, m *chatroom.Member, reason error) {
		fmt.Println(m.Nickname(), "left:", errors.Is(reason, chatroom.ErrRoomClosed))
	}))
	srv := httptest.NewServer(room)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL(srv, "/?nickname=sei"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.CloseNow()
	conn.Write(ctx, websocket.MessageText, []byte(`{"message":"last words"}`))
	_, frame, _ := conn.Read(ctx) // sei is a member once its echo arrives
	fmt.Println(string(frame))

	closed := make(chan websocket.StatusCode)
	go func() {
		_, _, err := conn.Read(ctx)
		closed <- websocket.CloseStatus(err)
	}()
	if err := room.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("client sees:", <-closed)
	// Output:
	// {"nickname":"sei","message":"last words"}
	// sei left: true
	// client sees: StatusGoingAway
}

// peer is an example client: it connects, sends raw frames and prints what
// it receives.
type peer struct {
	conn *websocket.Conn
	ctx  context.Context
}

func connect(ctx context.Context, url string) *peer {
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		fmt.Println("dial:", err)
		return nil
	}
	return &peer{conn: conn, ctx: ctx}
}

func (p *peer) send(frame string) {
	if err := p.conn.Write(p.ctx, websocket.MessageText, []byte(frame)); err != nil {
		fmt.Println("write:", err)
	}
}

// print prints the next n frames, or how the connection ended.
func (p *peer) print(n int) {
	for range n {
		_, frame, err := p.conn.Read(p.ctx)
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			fmt.Println("closed:", int(ce.Code), ce.Reason)
			return
		}
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		fmt.Println(string(frame))
	}
}

// stopped is the clock of the examples, so that their output is the same
// every time.
func stopped() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }

// A Registry serves many rooms from one handler, named by the {room}
// wildcard of the route. Rooms come and go with their members and share
// nothing.
func ExampleRegistry() {
	rooms := chatroom.NewRegistry(chatroom.WithMaxRooms(100))
	defer rooms.Close()
	mux := http.NewServeMux()
	mux.Handle("/rooms/{room}/chat", rooms)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ann := connect(ctx, wsURL(srv, "/rooms/go/chat?nickname=ann"))
	bob := connect(ctx, wsURL(srv, "/rooms/rust/chat?nickname=bob"))
	ann.send(`{"message":"generics!"}`)
	bob.send(`{"message":"borrowck!"}`)
	ann.print(1)
	bob.print(1)
	fmt.Println(rooms.Rooms())
	// Output:
	// {"nickname":"ann","message":"generics!"}
	// {"nickname":"bob","message":"borrowck!"}
	// [{go 1} {rust 1}]
}

// Each room of a Registry gets the options WithRoomOptions returns for its
// name: here every room has a small size limit, and one room shouts.
func ExampleWithRoomOptions() {
	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(name string) []chatroom.Option {
		opts := []chatroom.Option{chatroom.WithMaxMessageSize(1 << 10)}
		if name == "shouting" {
			opts = append(opts, chatroom.OnMessage(func(_ context.Context, _ *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
				msg.Text = strings.ToUpper(msg.Text)
				return msg, nil
			}))
		}
		return opts
	}))
	defer rooms.Close()
	mux := http.NewServeMux()
	mux.Handle("/rooms/{room}/chat", rooms)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	chat(wsURL(srv, "/rooms/shouting/chat?nickname=ann"), 1, "hi")
	chat(wsURL(srv, "/rooms/lobby/chat?nickname=bob"), 1, "hi")
	// Output:
	// {"nickname":"ann","message":"HI"}
	// {"nickname":"bob","message":"hi"}
}

// A leave hook learns why a member left, and with which close status:
// here the client's own.
func ExampleLeaveError() {
	left := make(chan string, 1)
	room := chatroom.New(chatroom.OnLeave(func(_ context.Context, m *chatroom.Member, reason error) {
		var le chatroom.LeaveError
		if errors.As(reason, &le) {
			left <- fmt.Sprintf("%s left by itself: %v, with %d %q", m.Nickname(), errors.Is(reason, chatroom.ErrClientClosed), int(le.Code), le.Reason)
		}
	}))
	defer room.Close()
	srv := httptest.NewServer(room)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sei := connect(ctx, wsURL(srv, "/?nickname=sei"))
	sei.send(`{"message":"brb"}`)
	sei.print(1) // sei is a member once its echo arrives
	sei.conn.Close(4000, "lunch")
	fmt.Println(<-left)
	// Output:
	// {"nickname":"sei","message":"brb"}
	// sei left by itself: true, with 4000 "lunch"
}

// Options are checked in New: one out of range, or two that contradict
// each other, make it panic with a message that names the option. Off
// turns off what a room does by default.
func ExampleOption() {
	chatroom.New(chatroom.WithPacing(chatroom.Off, 0)) // no pacing
	defer func() { fmt.Println(recover()) }()
	chatroom.New(chatroom.WithPacing(chatroom.Off, 50))
	// Output:
	// chatroom: WithPacing: burst 50 without a rate
}

// An authenticator names the client from its token, so ?nickname cannot
// impersonate anyone. A refused client is closed with 4001 "Unauthorized",
// which browser code can read.
func ExampleWithAuthenticator() {
	users := map[string]string{"s3cr3t": "sei"} // token → user
	room := chatroom.New(chatroom.WithAuthenticator(func(r *http.Request) (chatroom.Identity, error) {
		user, ok := users[r.URL.Query().Get("token")]
		if !ok {
			return chatroom.Identity{}, errors.New("bad token")
		}
		return chatroom.Identity{ID: user}, nil
	}))
	defer room.Close()
	srv := httptest.NewServer(room)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mallory := connect(ctx, wsURL(srv, "/?token=guess&nickname=sei"))
	mallory.print(1)
	sei := connect(ctx, wsURL(srv, "/?token=s3cr3t&nickname=admin"))
	sei.send(`{"message":"it's really me"}`)
	sei.print(1)
	// Output:
	// closed: 4001 Unauthorized
	// {"nickname":"sei","message":"it's really me"}
}

// With presence, a joiner first receives who is there, then everyone hears
// of each join and leave. Every frame has a type, an id and a time.
func ExampleWithPresence() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.WithPresence(), chatroom.WithClock(stopped))
		srv := chatroomtest.NewServer(t, room)
		ann := srv.Connect("ann")
		fmt.Println(ann.NextRaw())
		fmt.Println(ann.NextRaw())
		sei := srv.Connect("sei")
		fmt.Println(sei.NextRaw())
		fmt.Println(sei.NextRaw())
		sei.Close()
		fmt.Println(ann.NextRaw())
		fmt.Println(ann.NextRaw())
	})
	// Output:
	// {"type":"members","id":1838510899200805,"time":"2026-11-23T08:00:00.000Z","members":["ann"]}
	// {"type":"join","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","nickname":"ann"}
	// {"type":"members","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","members":["ann","sei"]}
	// {"type":"join","id":1838510899202853,"time":"2026-11-23T08:00:00.000Z","nickname":"sei"}
	// {"type":"join","id":1838510899202853,"time":"2026-11-23T08:00:00.000Z","nickname":"sei"}
	// {"type":"leave","id":1838510899203877,"time":"2026-11-23T08:00:00.000Z","nickname":"sei"}
}

// A direct message reaches the recipient and the sender only; a message to
// someone absent is answered with an error frame.
func ExampleWithDirectMessages() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.WithDirectMessages(), chatroom.WithClock(stopped))
		srv := chatroomtest.NewServer(t, room)
		bob := srv.Connect("bob") // Connect returns once bob has joined
		ann := srv.Connect("ann")
		ann.SendTo("bob", "lunch?")
		ann.SendTo("nobody", "hello?")
		fmt.Println(ann.NextRaw())
		fmt.Println(ann.NextRaw())
		fmt.Println(bob.NextRaw())
	})
	// Output:
	// {"type":"direct","id":1838510899200805,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","to":"bob","message":"lunch?"}
	// {"type":"error","id":1838510899200805,"time":"2026-11-23T08:00:00.000Z","message":"no such member: nobody","code":4404}
	// {"type":"direct","id":1838510899200805,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","to":"bob","message":"lunch?"}
}

// With history a joiner receives the last messages first, and a client that
// comes back with ?since= and the last id it saw receives exactly what it
// missed.
func ExampleWithHistory() {
	room := chatroom.New(chatroom.WithHistory(chatroom.History{Len: 50}), chatroom.WithEnvelope(), chatroom.WithClock(stopped))
	defer room.Close()
	srv := httptest.NewServer(room)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ann := connect(ctx, wsURL(srv, "/?nickname=ann"))
	for _, text := range []string{"one", "two", "three"} {
		ann.send(`{"message":"` + text + `"}`)
	}
	ann.print(3)
	// sei saw "one" (id …001) before its train entered a tunnel.
	sei := connect(ctx, wsURL(srv, "/?nickname=sei&since=1838510899201829"))
	sei.print(2)
	// Output:
	// {"type":"message","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","message":"one"}
	// {"type":"message","id":1838510899202853,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","message":"two"}
	// {"type":"message","id":1838510899203877,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","message":"three"}
	// {"type":"message","id":1838510899202853,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","message":"two"}
	// {"type":"message","id":1838510899203877,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","message":"three"}
}

// SendTo reaches every connection of one nickname, as the tutorial's
// send_personal_message, and nobody else.
func ExampleRoom_SendTo() {
	room := chatroom.New()
	defer room.Close()
	srv := httptest.NewServer(room)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sei := connect(ctx, wsURL(srv, "/?nickname=sei"))
	sei.send(`{"message":"order #42 please"}`)
	sei.print(1) // the echo: sei has joined
	if _, err := room.SendTo(ctx, "sei", chatroom.Message{Nickname: "shop", Text: "#42 shipped"}); err != nil {
		fmt.Println(err)
	}
	sei.print(1)
	if _, err := room.SendTo(ctx, "kai", chatroom.Message{Text: "?"}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"nickname":"sei","message":"order #42 please"}
	// {"nickname":"shop","message":"#42 shipped"}
	// chatroom: no such member
}

// WithExcludeSender spares senders their own echo, as the tutorial's
// broadcast_to_room(exclude=…). Notices still reach everyone, the joiner
// included, which tells a client it has joined.
func ExampleWithExcludeSender() {
	room := chatroom.New(chatroom.WithExcludeSender(), chatroom.WithNotices(), chatroom.WithClock(stopped))
	defer room.Close()
	srv := httptest.NewServer(room)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ann := connect(ctx, wsURL(srv, "/?nickname=ann"))
	ann.print(1)
	sei := connect(ctx, wsURL(srv, "/?nickname=sei"))
	sei.print(1)
	sei.send(`{"message":"hi"}`)
	ann.print(2)
	ann.send(`{"message":"hey"}`)
	sei.print(1) // "hey", not sei's own "hi"
	// Output:
	// {"type":"join","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","nickname":"ann"}
	// {"type":"join","id":1838510899202853,"time":"2026-11-23T08:00:00.000Z","nickname":"sei"}
	// {"type":"join","id":1838510899202853,"time":"2026-11-23T08:00:00.000Z","nickname":"sei"}
	// {"type":"message","id":1838510899203877,"time":"2026-11-23T08:00:00.000Z","nickname":"sei","message":"hi"}
	// {"type":"message","id":1838510899204901,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","message":"hey"}
}

// With error frames, bad input is answered and the member stays. With
// unique nicknames, a second "sei" is refused with 4009.
func ExampleWithErrorFrames() {
	room := chatroom.New(chatroom.WithErrorFrames(), chatroom.WithUniqueNicknames(), chatroom.WithClock(stopped))
	defer room.Close()
	srv := httptest.NewServer(room)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sei := connect(ctx, wsURL(srv, "/?nickname=sei"))
	sei.send(`{"msg":"oops"}`)
	sei.send(`{"message":"better"}`)
	sei.print(2)
	impostor := connect(ctx, wsURL(srv, "/?nickname=sei"))
	impostor.print(1)
	// Output:
	// {"type":"error","id":1838510899200805,"time":"2026-11-23T08:00:00.000Z","message":"expected {\"message\": string}","code":1007}
	// {"type":"message","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","nickname":"sei","message":"better"}
	// closed: 4009 nickname taken
}

// Hosts test their hooks with package chatroomtest, as net/http/httptest
// tests handlers: a room on a loopback server, named clients, and go-cmp
// diffs on mismatch. In a test, the function given to Run is the test's body
// and t its *testing.T.
func Example_testing() {
	noShouting := chatroom.OnMessage(func(_ context.Context, _ *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
		msg.Text = strings.ToLower(msg.Text)
		return msg, nil
	})
	ok := chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		srv := chatroomtest.NewServer(t, chatroom.New(noShouting))
		ann, bob := srv.Connect("ann"), srv.Connect("bob")
		ann.Send("HELLO")
		bob.Expect(chatroom.Message{Nickname: "ann", Text: "hello"})
	})
	fmt.Println("passed:", ok)
	// Output: passed: true
}

// With WithPresenceDeltas the joins and leaves of a window go out together
// in one presence frame with the count; a chat message ends the window
// early, so that it never overtakes the notices before it. A joiner's
// members frame lists at most MaxMembers nicknames, with the exact count.
func ExampleWithPresenceDeltas() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.WithPresenceDeltas(chatroom.PresenceDeltas{Window: time.Minute, MaxMembers: 2}),
			chatroom.WithClock(stopped))
		srv := chatroomtest.NewServer(t, room)
		ann := srv.Connect("ann")
		fmt.Println(ann.NextRaw())
		srv.Connect("bob")
		cy := srv.Connect("cy")
		fmt.Println(cy.NextRaw())
		cy.Send("hi")
		fmt.Println(cy.NextRaw())
		fmt.Println(cy.NextRaw())
		fmt.Println(ann.NextRaw())
	})
	// Output:
	// {"type":"members","id":1838510899200805,"time":"2026-11-23T08:00:00.000Z","members":["ann"],"count":1}
	// {"type":"members","id":1838510899202853,"time":"2026-11-23T08:00:00.000Z","members":["ann","bob"],"count":3}
	// {"type":"presence","id":1838510899203877,"time":"2026-11-23T08:00:00.000Z","joined":["ann","bob","cy"],"left":[],"count":3}
	// {"type":"message","id":1838510899204901,"time":"2026-11-23T08:00:00.000Z","nickname":"cy","message":"hi"}
	// {"type":"presence","id":1838510899203877,"time":"2026-11-23T08:00:00.000Z","joined":["ann","bob","cy"],"left":[],"count":3}
}

// A client that gives its message a ref learns when the room took it: its
// connection receives an ack with the message's ID. Sent again with the
// same ref, after a reconnect say, the message is acknowledged with the
// same ID and not delivered twice. A refusal carries the ref too.
func Example_acknowledgements() {
	chatroomtest.Run(os.Stdout, func(t chatroomtest.TB) {
		room := chatroom.New(chatroom.WithErrorFrames(), chatroom.WithClock(stopped))
		srv := chatroomtest.NewServer(t, room)
		ann := srv.Connect("ann")
		ann.SendRef("hello", "7")
		fmt.Println(ann.NextRaw())
		fmt.Println(ann.NextRaw())
		ann.Close()

		again := srv.Connect("ann")
		again.SendRef("hello", "7") // a resend: acknowledged, not delivered
		again.SendRaw(websocket.MessageText, []byte(`{"message":7,"ref":"8"}`))
		fmt.Println(again.NextRaw())
		fmt.Println(again.NextRaw())
	})
	// Output:
	// {"type":"message","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","nickname":"ann","message":"hello"}
	// {"type":"ack","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","ref":"7"}
	// {"type":"ack","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","ref":"7"}
	// {"type":"error","id":1838510899201829,"time":"2026-11-23T08:00:00.000Z","message":"expected {\"message\": string}","code":1007,"ref":"8"}
}

// Clients that offer permessage-deflate, as browsers do, get it without
// context takeover; a room with WithCompression(Off) declines. The
// messages are the same either way, once inflated.
func ExampleWithCompression() {
	for _, opts := range [][]chatroom.Option{nil, {chatroom.WithCompression(chatroom.Off)}} {
		room := chatroom.New(opts...)
		srv := httptest.NewServer(room)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, resp, err := websocket.Dial(ctx, wsURL(srv, "/?nickname=sei"),
			&websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			fmt.Println(err)
		} else {
			fmt.Printf("extensions: %q\n", resp.Header.Get("Sec-WebSocket-Extensions"))
			_ = conn.Write(ctx, websocket.MessageText, []byte(`{"message":"`+strings.Repeat("ha", 100)+`"}`))
			_, frame, _ := conn.Read(ctx)
			fmt.Println(len(frame), "bytes once inflated")
			conn.CloseNow()
		}
		cancel()
		room.Close()
		srv.Close()
	}
	// Output:
	// extensions: "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
	// 231 bytes once inflated
	// extensions: ""
	// 231 bytes once inflated
}
