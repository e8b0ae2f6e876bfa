package chatroom_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom"
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
