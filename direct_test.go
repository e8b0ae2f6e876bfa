package chatroom

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDirectMessages(t *testing.T) {
	tr := newTestRoom(t, WithDirectMessages())
	ann, bob, bob2, sei := tr.join("ann"), tr.join("bob"), tr.join("bob"), tr.join("sei")

	ann.sendTo("bob", "psst")
	dm := Message{Type: TypeDirect, Nickname: "ann", To: "bob", Text: "psst"}
	for _, c := range []*client{ann, bob, bob2} {
		if diff := cmp.Diff(dm, c.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("direct message (-want +got):\n%s", diff)
		}
	}
	// sei's next frame is the public one: it never saw the direct message.
	ann.send("public")
	if diff := cmp.Diff(Message{Type: TypeMessage, Nickname: "ann", Text: "public"}, sei.readMsg(), ignoreStamps); diff != "" {
		t.Errorf("bystander (-want +got):\n%s", diff)
	}

	ann.sendTo("nobody", "hello?")
	want := []Message{
		{Type: TypeMessage, Nickname: "ann", Text: "public"},
		{Type: TypeError, Code: int(StatusNoSuchMember), Text: "no such member: nobody"},
	}
	for _, w := range want {
		if diff := cmp.Diff(w, ann.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("sender (-want +got):\n%s", diff)
		}
	}
}

func TestDirectMessageToSelfArrivesOnce(t *testing.T) {
	tr := newTestRoom(t, WithDirectMessages())
	ann := tr.join("ann")
	ann.sendTo("ann", "note to self")
	ann.send("next")
	for _, w := range []Message{
		{Type: TypeDirect, Nickname: "ann", To: "ann", Text: "note to self"},
		{Type: TypeMessage, Nickname: "ann", Text: "next"},
	} {
		if diff := cmp.Diff(w, ann.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestSendTo(t *testing.T) {
	tr := newTestRoom(t, WithEnvelope())
	bob, bob2 := tr.join("bob"), tr.join("bob")
	ctx := context.Background()
	if _, err := tr.room.SendTo(ctx, "bob", Message{Nickname: "server", Text: "your order shipped"}); err != nil {
		t.Fatal(err)
	}
	want := Message{Type: TypeDirect, Nickname: "server", To: "bob", Text: "your order shipped"}
	for _, c := range []*client{bob, bob2} {
		if diff := cmp.Diff(want, c.readMsg(), ignoreStamps); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
	if _, err := tr.room.SendTo(ctx, "nobody", Message{Text: "x"}); !errors.Is(err, ErrNoSuchMember) {
		t.Errorf("SendTo(nobody) = %v, want ErrNoSuchMember", err)
	}
}

func TestSendToDefaultProtocol(t *testing.T) {
	tr := newTestRoom(t)
	bob := tr.join("bob")
	if _, err := tr.room.SendTo(context.Background(), "bob", Message{Nickname: "server", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(frame("server", "hi"), bob.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
