package chatroom

import (
	"context"
	"fmt"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestEnvelopeFrames(t *testing.T) {
	tr := newTestRoom(t, WithEnvelope(), WithClock(fixedClock))
	sei := tr.join("sei")
	want := []string{
		fmt.Sprintf(`{"type":"message","id":%d,"time":"2026-11-23T08:00:00.000Z","nickname":"sei","message":"<b>\"hi\"</b>"}`, firstTestID),
		fmt.Sprintf(`{"type":"message","id":%d,"time":"2026-11-23T08:00:00.000Z","nickname":"sei","message":""}`, testID(1)),
		fmt.Sprintf(`{"type":"system","id":%d,"time":"2026-11-23T08:00:00.000Z","message":"maintenance at 9"}`, testID(2)),
	}
	sei.send(`<b>"hi"</b>`)
	sei.send("")
	got := []string{sei.read(), sei.read()}
	if _, err := tr.room.Broadcast(context.Background(), Message{Type: TypeSystem, Text: "maintenance at 9"}); err != nil {
		t.Fatal(err)
	}
	got = append(got, sei.read())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
}

func TestEnvelopeIDsIncreaseInDeliveryOrder(t *testing.T) {
	tr := newTestRoom(t, WithEnvelope())
	a, b := tr.join("a"), tr.join("b")
	const n = 50
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			_, _ = tr.room.Broadcast(context.Background(), Message{Nickname: "bot", Text: fmt.Sprint(i)})
		}
	}()
	for i := range n {
		a.send(fmt.Sprint(i))
	}
	<-done
	for _, c := range []*client{a, b} {
		var last uint64
		for range 2 * n {
			m := c.readMsg()
			if m.ID <= last {
				t.Fatalf("id %d after %d", m.ID, last)
			}
			last = m.ID
		}
	}
}

func TestNotices(t *testing.T) {
	tr := newTestRoom(t, WithNotices())
	ann := tr.join("ann")
	if diff := cmp.Diff(Message{Type: TypeJoin, Nickname: "ann"}, ann.readMsg(), ignoreStamps); diff != "" {
		t.Errorf("own join (-want +got):\n%s", diff)
	}
	sei := tr.join("sei")
	sei2 := tr.join("sei") // a second connection of sei: no second notice
	_ = sei2.conn.CloseNow()
	tr.expectLeave("sei", ErrClientClosed)
	ann.send("after")
	want := []Message{
		{Type: TypeJoin, Nickname: "sei"},
		{Type: TypeMessage, Nickname: "ann", Text: "after"},
	}
	for _, w := range want {
		if diff := cmp.Diff(w, ann.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
	_ = sei.conn.CloseNow()
	tr.expectLeave("sei", ErrClientClosed)
	if diff := cmp.Diff(Message{Type: TypeLeave, Nickname: "sei"}, ann.readMsg(), ignoreStamps); diff != "" {
		t.Errorf("leave (-want +got):\n%s", diff)
	}
}

func TestPresence(t *testing.T) {
	tr := newTestRoom(t, WithPresence())
	ann := tr.join("ann")
	_ = ann.readMsg() // members [ann]
	_ = ann.readMsg() // join ann
	tr.join("bob")
	sei := tr.join("sei")
	want := []Message{
		{Type: TypeMembers, Members: []string{"ann", "bob", "sei"}},
		{Type: TypeJoin, Nickname: "sei"},
	}
	for _, w := range want {
		if diff := cmp.Diff(w, sei.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("joiner's frame (-want +got):\n%s", diff)
		}
	}
	if diff := cmp.Diff([]string{"ann", "bob", "sei"}, tr.room.Nicknames()); diff != "" {
		t.Errorf("Nicknames (-want +got):\n%s", diff)
	}
	for _, w := range []Message{{Type: TypeJoin, Nickname: "bob"}, {Type: TypeJoin, Nickname: "sei"}} {
		if diff := cmp.Diff(w, ann.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("update (-want +got):\n%s", diff)
		}
	}
}

func TestUniqueNicknames(t *testing.T) {
	tr := newTestRoom(t, WithUniqueNicknames())
	sei := tr.join("sei")
	conn, _, err := tr.dialRaw("nickname=sei", nil)
	if err != nil {
		t.Fatal(err)
	}
	impostor := &client{t: t, conn: conn}
	impostor.expectClose(StatusNicknameTaken, "nickname taken")
	sei.send("still here")
	if diff := cmp.Diff(frame("sei", "still here"), sei.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := tr.room.Len(); got != 1 {
		t.Errorf("Len = %d, want 1", got)
	}
}

func TestErrorFramesKeepTheMember(t *testing.T) {
	tr := newTestRoom(t, WithErrorFrames(), WithRateLimit(1000, 1000),
		OnMessage(func(_ context.Context, _ *Member, msg Message) (Message, error) {
			switch msg.Text {
			case "forbidden":
				return msg, fmt.Errorf("no")
			case "/ping":
				// Answered by the hook: dropped without an error frame.
				return msg, fmt.Errorf("answered: %w", ErrHandled)
			}
			return msg, nil
		}))
	c := tr.join("sei")
	c.sendRaw(websocket.MessageText, "not json")
	c.sendRaw(websocket.MessageText, "\xff")
	c.sendRaw(websocket.MessageText, `{"message": 1}`)
	c.sendRaw(websocket.MessageBinary, "bin")
	c.send("forbidden")
	c.send("/ping")
	c.send("fine")
	want := []Message{
		{Type: TypeError, Code: 1007, Text: "invalid JSON"},
		{Type: TypeError, Code: 1007, Text: "invalid UTF-8"},
		{Type: TypeError, Code: 1007, Text: `expected {"message": string}`},
		{Type: TypeError, Code: 1003, Text: "binary messages are not supported"},
		{Type: TypeError, Code: 1008, Text: "message refused"},
		{Type: TypeMessage, Nickname: "sei", Text: "fine"},
	}
	for _, w := range want {
		if diff := cmp.Diff(w, c.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestErrorFrameForRateLimit(t *testing.T) {
	tr := newTestRoom(t, WithErrorFrames(), WithRateLimit(0.001, 1))
	c := tr.join("sei")
	c.send("one")
	c.send("two")
	for _, w := range []Message{
		{Type: TypeMessage, Nickname: "sei", Text: "one"},
		{Type: TypeError, Code: 1008, Text: "rate limit exceeded"},
	} {
		if diff := cmp.Diff(w, c.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestExcludeSender(t *testing.T) {
	tr := newTestRoom(t, WithExcludeSender())
	a, b := tr.join("a"), tr.join("b")
	a.send("from a")
	b.send("from b")
	if diff := cmp.Diff(frame("a", "from a"), b.read()); diff != "" {
		t.Errorf("b (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(frame("b", "from b"), a.read()); diff != "" {
		t.Errorf("a got its own message or lost b's (-want +got):\n%s", diff)
	}
}

func TestToFieldRefusedWithoutDirectMessages(t *testing.T) {
	tr := newTestRoom(t)
	a, b := tr.join("a"), tr.join("b")
	a.sendTo("b", "private")
	a.expectClose(websocket.StatusInvalidFramePayloadData, "direct messages are not enabled")
	tr.expectLeave("a", ErrInvalidMessage)
	b.send("public")
	if diff := cmp.Diff(frame("b", "public"), b.read()); diff != "" {
		t.Errorf("the private message was broadcast (-want +got):\n%s", diff)
	}
}
