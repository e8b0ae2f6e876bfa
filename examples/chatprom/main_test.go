package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

// metrics fetches /metrics of the server at addr.
func metrics(t *testing.T, addr string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := servetest.Do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	return string(body)
}

// The example serves the chat and, at /metrics, what its rooms counted.
func TestMetrics(t *testing.T) {
	s := servetest.Start(t, run, "-addr", "127.0.0.1:0")
	chat := chatroomtest.Remote(t, "ws://"+s.Ready, chatroomtest.Path("/rooms/lobby/chat"), chatroomtest.IgnoreIDAndTime())
	ann := chat.Connect("ann")
	ann.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeMembers })
	ann.Send("hello")
	ann.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeMessage })

	body := metrics(t, s.Ready)
	for _, want := range []string{
		"chatroom_rooms 2\n", // the tutorial's room and the lobby
		"chatroom_connections 1\n",
		"chatroom_connects_total 1\n",
		"chatroom_messages_received_total 1\n",
		`chatroom_disconnects_total{reason="slow"} 0` + "\n",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
