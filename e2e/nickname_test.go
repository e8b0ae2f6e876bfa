package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// joinForm is what the join form shows.
type joinForm struct {
	Visible bool   `json:"visible"` // the join form, not the chat
	Error   string `json:"error"`   // the error it shows, if any
}

const joinFormJS = `({
	visible: !document.getElementById("join-view").hidden && document.getElementById("chat-view").hidden,
	error: document.getElementById("join-error").hidden ? "" : document.getElementById("join-error").textContent,
})`

// noticesJS lists the texts of the notices of one kind the page shows.
func noticesJS(kind string) string {
	return `[...document.querySelectorAll("#messages li.notice")].filter(li => li.dataset.kind === ` +
		jsString(kind) + `).map(li => li.querySelector(".text").textContent)`
}

// The rooms of examples/chat have unique nicknames. A second tab that joins
// with a nickname already in the room is sent back to the join form with
// "nickname taken" and never becomes a member; it then joins with another
// name.
func TestBrowserNicknameTaken(t *testing.T) {
	b := newBrowser(t)
	srv := startChat(t)
	const room = "names"

	ann := b.newTab("ann", desktop)
	ann.open(srv.url("/"))
	ann.join("ann", room)
	ann.waitMembers("ann")

	other := b.newTab("other", phone)
	other.open(srv.url("/"))
	for _, nickname := range []string{"ann", "ANN"} { // the same name, and the same in another case
		other.do("join as "+nickname,
			clear("nickname"),
			other.typeText(chromedp.ID("nickname"), nickname),
			clear("room"),
			other.typeText(chromedp.ID("room"), room),
			chromedp.Click(chromedp.ID("join")),
		)
		other.waitFor("nickname taken on the join form", `(f => f.visible && f.error.includes("nickname taken"))(`+joinFormJS+`)`)
		want := joinForm{Visible: true, Error: "“" + nickname + "” is already in #" + room + " (nickname taken). Pick another nickname."}
		if diff := cmp.Diff(want, eval[joinForm](other, joinFormJS)); diff != "" {
			t.Errorf("join form after joining as %s (-want +got):\n%s", nickname, diff)
		}
	}

	other.join("bob", room)
	if diff := cmp.Diff(joinForm{}, eval[joinForm](other, joinFormJS)); diff != "" {
		t.Errorf("bob's page (-want +got):\n%s", diff)
	}
	ann.waitMembers("ann", "bob")
	other.waitMembers("ann", "bob")
	// The refused tries never reached the room: ann saw bob join, nobody else.
	if diff := cmp.Diff([]string{"You joined #" + room, "bob joined"}, eval[[]string](ann, noticesJS("join"))); diff != "" {
		t.Errorf("ann's join notices (-want +got):\n%s", diff)
	}
}

// After a network cut the server may hold the page's old connection until
// its keepalive gives up on it, so the page's reconnect is refused with
// 4009. The page stays in the room, says it is waiting for the old
// connection to expire, keeps retrying, and is back once the old connection
// is gone. A Go client in the page's name stands for the old connection, so
// that the test need not wait for a keepalive timeout; another one watches
// the room.
func TestBrowserReconnectWaitsForTheOldConnection(t *testing.T) {
	b := newBrowser(t)
	srv := startChat(t)
	g := newGate(t, srv.addr)
	const room = "again"

	ann := b.newTab("ann", desktop)
	ann.open(g.url("/"))
	ann.join("ann", room)
	watcher := dialAs(t, srv, room, "watcher")
	ann.waitMembers("ann", "watcher")

	g.setOpen(false)
	g.drop()
	ann.waitFor("reconnecting", `document.getElementById("status").dataset.state === "reconnecting"`)
	readUntil(t, watcher, "ann's leave", func(f frame) bool { return f.Type == "leave" && f.Nickname == "ann" })
	old := dialAs(t, srv, room, "ann")
	g.setOpen(true)

	ann.waitFor("waiting for the old connection",
		`document.getElementById("status-text").textContent.startsWith("Waiting for the old connection to expire")`)
	if diff := cmp.Diff(joinForm{}, eval[joinForm](ann, joinFormJS)); diff != "" {
		t.Errorf("the page left the room on a 4009 while reconnecting (-want +got):\n%s", diff)
	}

	_ = old.CloseNow() // the old connection expires
	ann.waitNotice("status", "Reconnected")
	ann.waitConnected()
	ann.waitMembers("watcher", "ann")
	if diff := cmp.Diff(joinForm{}, eval[joinForm](ann, joinFormJS)); diff != "" {
		t.Errorf("the page after reconnecting (-want +got):\n%s", diff)
	}
}

// frame is what a Go client reads of a frame of the page's rooms.
type frame struct {
	Type     string `json:"type"`
	Nickname string `json:"nickname"`
	Message  string `json:"message"`
}

// dialAs joins room as nickname with a Go client and returns once it is a
// member: when it has received the member list.
func dialAs(t *testing.T, srv *chatServer, room, nickname string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	u := "ws://" + srv.addr + "/rooms/" + url.PathEscape(room) + "/chat?" + url.Values{"nickname": {nickname}}.Encode()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	readUntil(t, c, nickname+"'s member list", func(f frame) bool { return f.Type == "members" })
	return c
}

// readUntil reads frames until one satisfies ok.
func readUntil(t *testing.T, c *websocket.Conn, what string, ok func(frame) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("waiting for %s: frame %q: %v", what, data, err)
		}
		if ok(f) {
			return
		}
	}
}

// The join form applies the server's rules before it connects: a room name
// made only of dots (which the browser would resolve out of /rooms/), and
// nicknames the server would refuse with HTTP 400, which a page cannot
// read. A nickname the server would prepare is joined in its prepared form,
// so that the page knows its own messages.
func TestBrowserJoinFormChecks(t *testing.T) {
	b := newBrowser(t)
	srv := startChat(t)
	tb := b.newTab("user", desktop)
	tb.open(srv.url("/"))
	fill := func(nickname, room string) {
		t.Helper()
		tb.do("join as "+nickname+" in "+room,
			clear("nickname"),
			tb.typeText(chromedp.ID("nickname"), nickname),
			clear("room"),
			tb.typeText(chromedp.ID("room"), room),
			chromedp.Click(chromedp.ID("join")),
		)
	}
	for _, tt := range []struct{ nickname, room, want string }{
		{"ann", "..", "A room name cannot be only dots."},
		{"ann", ".", "A room name cannot be only dots."},
		{"bob\u200d", "lobby", "That nickname has characters that are not allowed"},
		{"bo\u200bb", "lobby", "That nickname has characters that are not allowed"},
		{"unknown_127.0.0.1", "lobby", "Nicknames beginning with unknown_ are reserved."},
		{"   ", "lobby", "Pick a nickname."},
	} {
		fill(tt.nickname, tt.room)
		got := eval[joinForm](tb, joinFormJS)
		if !got.Visible || !strings.HasPrefix(got.Error, tt.want) {
			t.Errorf("joining as %q in %q: %+v, want the join form saying %q", tt.nickname, tt.room, got, tt.want)
		}
		if state := eval[string](tb, `document.getElementById("status").dataset.state`); state != "idle" {
			t.Errorf("joining as %q in %q: status %q, want idle (no connection)", tt.nickname, tt.room, state)
		}
	}

	fill(" \uff22\uff4f\uff42 ", "lobby") // " Ｂｏｂ ", which the server shows as "Bob"
	tb.waitConnected()
	tb.waitMembers("Bob")
	tb.say("hi")
	if diff := cmp.Diff([]line{{Kind: "message", Nickname: "Bob", Text: "hi", Mine: true}}, tb.state().messages()); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if you := eval[string](tb, `document.querySelector("#members li .you")?.closest("li").dataset.nickname ?? ""`); you != "Bob" {
		t.Errorf("the member list marks %q as the user, want Bob", you)
	}
}
