package chatroom

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestRegistryRoomsAreIsolated(t *testing.T) {
	tg := newTestRegistry(t)
	a1, a2 := tg.join("a", "ann"), tg.join("a", "sei")
	b1 := tg.join("b", "bob")
	a1.send("in a")
	b1.send("in b")
	for _, c := range []*client{a1, a2} {
		if diff := cmp.Diff(frame("ann", "in a"), c.read()); diff != "" {
			t.Errorf("room a (-want +got):\n%s", diff)
		}
	}
	if diff := cmp.Diff(frame("bob", "in b"), b1.read()); diff != "" {
		t.Errorf("room b received room a's message (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]RoomInfo{{"a", 2}, {"b", 1}}, tg.reg.Rooms()); diff != "" {
		t.Errorf("Rooms (-want +got):\n%s", diff)
	}
}

func TestRegistryRemovesEmptyRooms(t *testing.T) {
	tg := newTestRegistry(t, WithRoomOptions(sameOptions(WithHistory(History{Len: 10}))))
	c := tg.join("lobby", "ann")
	c.send("remember me?")
	c.read()
	_ = c.conn.CloseNow()
	tg.wait(tg.left, "leave")
	tg.waitDone()
	if rooms := tg.reg.Rooms(); len(rooms) != 0 {
		t.Errorf("Rooms = %v after the last member left, want none", rooms)
	}
	checkNoGoroutinesLeft(t)

	// A new room of that name starts afresh.
	c = tg.join("lobby", "sei")
	c.send("hello")
	if diff := cmp.Diff(frame("sei", "hello"), c.read()); diff != "" {
		t.Errorf("the new room replayed the old room's history (-want +got):\n%s", diff)
	}
}

func TestRegistryKeepsOpenedRooms(t *testing.T) {
	tg := newTestRegistry(t, WithRoomOptions(sameOptions(WithHistory(History{Len: 10}))))
	rm, err := tg.reg.Open("news")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.reg.Broadcast(context.Background(), "news", Message{Nickname: "editor", Text: "first"}); err != nil {
		t.Fatal(err)
	}
	c := tg.join("news", "ann")
	if diff := cmp.Diff(frame("editor", "first"), c.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	_ = c.conn.CloseNow()
	tg.wait(tg.left, "leave")
	tg.waitDone()
	if got, ok := tg.reg.Room("news"); !ok || got != rm {
		t.Errorf("Room(news) = %v, %v after its members left; want the kept room", got, ok)
	}
	if _, err := tg.reg.Broadcast(context.Background(), "nowhere", Message{}); !errors.Is(err, ErrNoSuchRoom) {
		t.Errorf("Broadcast(nowhere) = %v, want ErrNoSuchRoom", err)
	}
}

func TestRegistryRefusals(t *testing.T) {
	tg := newTestRegistry(t, WithMaxRooms(1))
	tg.join("one", "ann")
	for _, tc := range []struct {
		room string
		want int
	}{
		{"two", http.StatusServiceUnavailable}, // over WithMaxRooms
		{"bad%20name", http.StatusBadRequest},
		{"%3Cscript%3E", http.StatusBadRequest},
	} {
		_, resp, err := websocket.Dial(context.Background(), tg.url(tc.room, ""), nil)
		if err == nil || resp == nil || resp.StatusCode != tc.want {
			t.Errorf("dial %s: err=%v resp=%v, want HTTP %d", tc.room, err, resp, tc.want)
		}
		tg.waitDone()
	}
	tg.join("one", "sei") // an existing room still takes members
}

func TestRegistryPerRoomOptions(t *testing.T) {
	tg := newTestRegistry(t, WithRoomOptions(func(name string) []Option {
		if name == "quiet" {
			return []Option{WithExcludeSender()}
		}
		return nil
	}))
	q1, q2 := tg.join("quiet", "ann"), tg.join("quiet", "sei")
	loud := tg.join("loud", "bob")
	q1.send("shh")
	q2.send("ok")
	loud.send("HEY")
	if diff := cmp.Diff(frame("sei", "ok"), q1.read()); diff != "" {
		t.Errorf("quiet room echoed to the sender (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(frame("bob", "HEY"), loud.read()); diff != "" {
		t.Errorf("loud room (-want +got):\n%s", diff)
	}
}

func TestRegistryShutdown(t *testing.T) {
	tg := newTestRegistry(t)
	cs := []*client{tg.join("a", "ann"), tg.join("b", "bob")}
	done := make(chan error, 1)
	go func() { done <- tg.reg.Shutdown(context.Background()) }()
	for _, c := range cs { // answering the close handshake lets Shutdown finish
		c.expectClose(websocket.StatusGoingAway, "room closed")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, resp, err := websocket.Dial(context.Background(), tg.url("a", ""), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Shutdown: err=%v resp=%v, want HTTP 503", err, resp)
	}
	if _, err := tg.reg.Open("c"); !errors.Is(err, ErrRoomClosed) {
		t.Errorf("Open after Shutdown = %v, want ErrRoomClosed", err)
	}
}

func TestRegistryReplacesAShutRoom(t *testing.T) {
	tg := newTestRegistry(t)
	ann := tg.join("a", "ann")
	rm, _ := tg.reg.Room("a")
	done := make(chan error, 1)
	go func() { done <- rm.Shutdown(context.Background()) }()
	ann.expectClose(websocket.StatusGoingAway, "room closed")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sei := tg.join("a", "sei")
	sei.send("fresh start")
	if diff := cmp.Diff(frame("sei", "fresh start"), sei.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestValidateRoomName(t *testing.T) {
	for name, ok := range map[string]bool{
		"lobby": true, "general-2": true, "雑談": true, "a.b_c~d": true,
		"": false, "a b": false, "a/b": false, "<script>": false, string(make([]byte, 65)): false,
	} {
		if err := ValidateRoomName(name); (err == nil) != ok || (err != nil && !errors.Is(err, ErrInvalidRoomName)) {
			t.Errorf("ValidateRoomName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestRegistryRoomNameFromQueryAndKeepWhenEmpty(t *testing.T) {
	tg := newTestRegistry(t,
		WithRoomName(func(r *http.Request) (string, error) { return r.URL.Query().Get("room"), nil }),
		WithRoomNameValidator(func(name string) error {
			if name != "kept" {
				return errors.New("only the kept room")
			}
			return nil
		}),
		WithRoomOptions(sameOptions(WithKeepWhenEmpty())),
	)
	// The route's {room} is ignored; the query names the room.
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, tg.url("ignored", "room=kept&nickname=ann"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := tg.wait(tg.joined, "join")
	if ev.room != "kept" {
		t.Errorf("joined room %q, want kept", ev.room)
	}
	rm, _ := tg.reg.Room("kept")
	m := rm.Members()[0]
	if m.Room() != rm {
		t.Error("Member.Room is not the member's room")
	}
	_ = conn.CloseNow()
	tg.wait(tg.left, "leave")
	tg.waitDone()
	if diff := cmp.Diff([]RoomInfo{{"kept", 0}}, tg.reg.Rooms()); diff != "" {
		t.Errorf("Rooms (-want +got):\n%s", diff)
	}
	if _, resp, err := websocket.Dial(ctx, tg.url("x", "room=other"), nil); err == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("dial other: err=%v resp=%v, want HTTP 400", err, resp)
	}
}
