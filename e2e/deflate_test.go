package e2e

import (
	"testing"
)

// Node's ws, a client that compresses everything it sends, negotiates
// permessage-deflate with examples/chat without context takeover; the
// room inflates what it sends and compresses its echo of a long message
// (fewer bytes on the wire than the frame), not of a short one; and a
// compression bomb, 64 MiB of spaces deflated to about 64 KiB, closes it
// with 1009 "message too big".
func TestNodeDeflate(t *testing.T) {
	nodePath(t) // skip before starting anything
	srv := startChat(t)
	const size = 2048
	c := startNode(t, "deflate", "deflate", srv.tutorialURL("zip"), "2048")
	var neg struct{ Extensions string }
	c.next("negotiated", nodeWaitSlop, &neg)
	if want := "permessage-deflate; client_no_context_takeover; server_no_context_takeover"; neg.Extensions != want {
		t.Errorf("Sec-WebSocket-Extensions = %q, want %q", neg.Extensions, want)
	}
	type echo struct {
		Seq, Size, WireBytes int
	}
	var long, short echo
	c.next("echo", nodeWaitSlop, &long)
	c.next("echo", nodeWaitSlop, &short)
	if long.WireBytes >= long.Size {
		t.Errorf("the echo of %d bytes took %d bytes on the wire: not compressed", long.Size, long.WireBytes)
	}
	if short.WireBytes != short.Size+2 {
		t.Errorf("the echo of %d bytes took %d bytes on the wire, want %d: a plain frame", short.Size, short.WireBytes, short.Size+2)
	}
	var closed closeEvent
	c.next("close", nodeWaitSlop, &closed)
	if closed.Code != 1009 || closed.Reason != "message too big" || !closed.WasClean {
		t.Errorf("the bomb closed with %v, want 1009 \"message too big\", clean", &closed)
	}
	c.wait()
	t.Logf("echo of %d bytes: %d on the wire; of %d: %d", long.Size, long.WireBytes, short.Size, short.WireBytes)
}
