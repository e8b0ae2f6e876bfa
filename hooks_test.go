package chatroom

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestMessageHookRewrites(t *testing.T) {
	tr := newTestRoom(t, OnMessage(func(_ context.Context, from *Member, msg Message) (Message, error) {
		msg.Nickname = "[" + from.Nickname() + "]"
		msg.Text = strings.ToUpper(msg.Text)
		return msg, nil
	}))
	c := tr.join("sei")
	c.send("hello")
	if diff := cmp.Diff(frame("[sei]", "HELLO"), c.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMessageHookRefuses(t *testing.T) {
	tr := newTestRoom(t, OnMessage(func(_ context.Context, _ *Member, msg Message) (Message, error) {
		switch msg.Text {
		case "spam":
			return msg, errors.New("no spam")
		case "kick me":
			return msg, websocket.CloseError{Code: 4000, Reason: "kicked by filter"}
		}
		return msg, nil
	}))
	sender, other := tr.join("sender"), tr.join("other")

	sender.send("spam")
	sender.send("ok")
	for _, c := range []*client{sender, other} {
		if diff := cmp.Diff(frame("sender", "ok"), c.read()); diff != "" {
			t.Errorf("%s: a refused message was broadcast (-want +got):\n%s", c.member.Nickname(), diff)
		}
	}

	sender.send("kick me")
	sender.expectClose(4000, "kicked by filter")
	tr.expectLeave("sender", ErrRefused)
	other.send("still here")
	if diff := cmp.Diff(frame("other", "still here"), other.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMessageHookPanicClosesOnlyThatMember(t *testing.T) {
	tr := newTestRoom(t, OnMessage(func(_ context.Context, _ *Member, msg Message) (Message, error) {
		if msg.Text == "boom" {
			panic("hook bug")
		}
		return msg, nil
	}))
	bad, good := tr.join("bad"), tr.join("good")
	bad.send("boom")
	bad.expectClose(websocket.StatusInternalError, "internal error")
	ev := tr.expectLeave("bad", ErrHookPanic)
	if !strings.Contains(ev.reason.Error(), "hook bug") {
		t.Errorf("reason %q does not carry the panic value", ev.reason)
	}
	good.send("fine")
	if diff := cmp.Diff(frame("good", "fine"), good.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestJoinHook(t *testing.T) {
	tr := newTestRoom(t, OnJoin(func(_ context.Context, m *Member) error {
		switch m.Nickname() {
		case "banned":
			return errors.New("banned user")
		case "anon":
			return websocket.CloseError{Code: 4001, Reason: "Unauthorized"}
		case "buggy":
			panic("join hook bug")
		}
		if got := len(m.room.Members()); got != 0 {
			t.Errorf("member %s listed before the join hook returned (%d members)", m, got)
		}
		return nil
	}))
	for _, tt := range []struct {
		nickname string
		code     websocket.StatusCode
		reason   string
	}{
		{"banned", websocket.StatusPolicyViolation, "join refused"},
		{"anon", 4001, "Unauthorized"},
		{"buggy", websocket.StatusInternalError, "internal error"},
	} {
		conn, _, err := tr.dialRaw("nickname="+tt.nickname, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := &client{t: t, conn: conn, member: &Member{nickname: tt.nickname}}
		c.expectClose(tt.code, tt.reason)
	}
	ok := tr.join("ok")
	ok.send("hi")
	if diff := cmp.Diff(frame("ok", "hi"), ok.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Refused members never joined, so they never leave: the next leave is ok's.
	_ = ok.conn.Close(websocket.StatusNormalClosure, "")
	tr.expectLeave("ok", ErrClientClosed)
}

func TestLeaveHookRunsOncePerMember(t *testing.T) {
	var leaves atomic.Int32
	panicked := make(chan struct{})
	left := make(chan string, 10)
	tr := newTestRoom(t, OnLeave(func(ctx context.Context, m *Member, reason error) {
		leaves.Add(1)
		left <- m.Nickname()
		if m.Nickname() == "panicky" {
			defer close(panicked)
			panic("leave hook bug")
		}
	}))
	a := tr.join("a")
	tr.join("panicky").conn.CloseNow()
	<-panicked
	if got := <-left; got != "panicky" {
		t.Fatalf("first leave = %s", got)
	}
	a.send("alive")
	if diff := cmp.Diff(frame("a", "alive"), a.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	a.conn.CloseNow()
	if got := <-left; got != "a" {
		t.Fatalf("second leave = %s", got)
	}
	if n := leaves.Load(); n != 2 {
		t.Errorf("leave hook ran %d times for 2 members", n)
	}
}

func TestHooksMayCallTheRoom(t *testing.T) {
	var tr *testRoom
	tr = newTestRoom(t,
		OnJoin(func(ctx context.Context, m *Member) error {
			return m.Send(ctx, Message{Nickname: "server", Text: "welcome " + m.Nickname()})
		}),
		OnMessage(func(ctx context.Context, from *Member, msg Message) (Message, error) {
			if msg.Text == "/who" {
				var names []string
				for _, m := range tr.room.Members() {
					names = append(names, m.Nickname())
				}
				return msg, from.Send(ctx, Message{Nickname: "server", Text: strings.Join(names, ",")})
			}
			return msg, nil
		}),
	)
	a := tr.join("a")
	if diff := cmp.Diff(frame("server", "welcome a"), a.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	b := tr.join("b")
	if diff := cmp.Diff(frame("server", "welcome b"), b.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	a.send("/who")
	if diff := cmp.Diff(frame("server", "a,b"), a.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
