package main

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
)

// The page's rooms refuse a nickname already present, in any case, with
// 4009 "nickname taken"; the same nickname in another room is another
// member, and the tutorial's /chat does not check.
func TestUniqueNicknames(t *testing.T) {
	s := start(t)
	ann := s.join(t, "lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	for _, name := range []string{"ann", "Ann", "ＡＮＮ"} {
		c := s.join(t, "lobby", name, "")
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, _, err := c.Read(ctx)
		cancel()
		var ce websocket.CloseError
		errors.As(err, &ce)
		if diff := cmp.Diff(websocket.CloseError{Code: chatroom.StatusNicknameTaken, Reason: "nickname taken"}, ce); diff != "" {
			t.Errorf("%s joining lobby: %v (-want +got):\n%s", name, err, diff)
		}
	}
	send(t, ann, "still the only ann")
	want(t, ann, message("ann", "still the only ann"))

	kitchen := s.join(t, "kitchen", "ann", "")
	want(t, kitchen, members("ann"), joined("ann"))
	s.dial(t, "/chat?nickname=sei")
	s.dial(t, "/chat?nickname=sei")
}

// A room name made only of dots is refused: a page would otherwise connect
// to /rooms/../chat, which the browser turns into /chat.
func TestDotRoomNames(t *testing.T) {
	s := start(t)
	for _, room := range []string{"%2E", "%2E%2E", "..."} {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, resp, err := websocket.Dial(ctx, "ws://"+s.addr+"/rooms/"+room+"/chat?nickname=ann", nil)
		cancel()
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("dial /rooms/%s/chat: err=%v resp=%v, want HTTP 400", room, err, resp)
		}
	}
}
