package brokertest

import (
	"slices"
	"testing"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/broker"
)

// testResend checks acknowledgements and resends: a message with a ref is
// acknowledged to its connection with the ID every node gives it, and a
// resend of it by the same sender, on another connection, is acknowledged
// with that ID and delivered nowhere again. With a broker.DedupBroker the
// resend goes through another node; with another broker, which keeps no
// record, through the same node, the only promise it can keep.
func testResend(t *testing.T, b Backend) {
	nodes := startNodes(t, b, chatroom.WithDirectMessages())
	_, dedup := nodes[0].broker.(broker.DedupBroker)
	bob := nodes[2].connect("lobby", "bob")
	ann := nodes[0].connect("lobby", "ann")
	ann.SendRef("once", "r1")
	echo := ann.Next()
	ack := ann.Next()
	if ack.Type != chatroom.TypeAck || ack.Ref != "r1" || ack.ID != echo.ID {
		t.Fatalf("after %+v: %+v, want its ack", echo, ack)
	}
	if got := bob.Next(); got.Text != "once" || got.ID != echo.ID && dedup {
		t.Fatalf("bob received %+v, want %+v", got, echo)
	}

	through := nodes[0]
	if dedup {
		through = nodes[1]
	} else {
		t.Logf("%T is no broker.DedupBroker: a resend is recognised by the node that took the first only", nodes[0].broker)
	}
	again := through.connect("lobby", "ann")
	again.SendRef("once", "r1")
	if got := again.Next(); got.Type != chatroom.TypeAck || got.ID != ack.ID || got.Ref != "r1" {
		t.Errorf("the resend through %s: %+v, want the first's ack %+v", through.name, got, ack)
	}
	again.SendRef("twice", "r2")
	if got := bob.Next(); got.Text != "twice" {
		t.Errorf("bob received %+v after the resend, want the next message: delivered twice", got)
	}
	again.Next() // twice
	again.Next() // its ack
	ann.Next()   // twice

	// A direct message, resent likewise, reaches bob once.
	for _, n := range []*node{nodes[0], through} {
		waitFor(t, n.timeout, n.name+" to see bob", func() bool {
			r, ok := n.rooms.Room("lobby")
			return ok && slices.Contains(r.Nicknames(), "bob")
		})
	}
	ann.SendToRef("bob", "psst", "d1")
	direct := bob.Next()
	if got := ann.Next(); got.Type != chatroom.TypeDirect || got.Text != "psst" {
		t.Fatalf("ann received %+v, bob %+v", got, direct)
	}
	if got := ann.Next(); got.Type != chatroom.TypeAck || got.Ref != "d1" {
		t.Fatalf("after the direct message ann received %+v, want its ack", got)
	}
	again.SendToRef("bob", "psst", "d1")
	if got := again.Next(); got.Type != chatroom.TypeAck || got.Ref != "d1" {
		t.Errorf("the direct message's resend through %s: %+v, want its ack", through.name, got)
	}
	again.SendRef("thrice", "r3")
	if got := bob.Next(); got.Text != "thrice" {
		t.Errorf("bob received %+v after the direct message's resend, want the next message: delivered twice", got)
	}
}
