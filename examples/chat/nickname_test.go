package main

import (
	"net/http"
	"testing"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// The page's rooms refuse a nickname already present, in any case, with
// 4009 "nickname taken"; the same nickname in another room is another
// member, and the tutorial's /chat does not check.
func TestUniqueNicknames(t *testing.T) {
	s := start(t)
	ann := s.join("lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	for _, name := range []string{"ann", "Ann", "ＡＮＮ"} {
		s.join("lobby", name, "").ExpectCloseReason(chatroom.StatusNicknameTaken, "nickname taken")
	}
	ann.Send("still the only ann")
	want(t, ann, message("ann", "still the only ann"))

	kitchen := s.join("kitchen", "ann", "")
	want(t, kitchen, members("ann"), joined("ann"))
	for range 2 {
		sei := s.tutorial("sei")
		sei.Send("me")
		if got := sei.NextRaw(); got != `{"nickname":"sei","message":"me"}` {
			t.Errorf("/chat read %s", got)
		}
	}
}

// A room name made only of dots is refused: a page would otherwise connect
// to /rooms/../chat, which the browser turns into /chat.
func TestDotRoomNames(t *testing.T) {
	s := start(t)
	for _, room := range []string{"%2E", "%2E%2E", "..."} {
		c, resp, err := s.chat.Dial("ann", chatroomtest.Path("/rooms/"+room+"/chat"))
		if c != nil || err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("dial /rooms/%s/chat: err=%v resp=%v, want HTTP 400", room, err, resp)
		}
	}
}
