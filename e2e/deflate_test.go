package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
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

// Chromium offers permessage-deflate on every WebSocket; examples/chat
// takes it without context takeover, as the browser's own record of the
// handshake shows, and the page works: a long message (which the room
// sends compressed to whoever negotiated it) and a short one (sent plain)
// both arrive, as Chromium's compressed messages do at the room.
func TestBrowserDeflate(t *testing.T) {
	b := newBrowser(t)
	srv := startChat(t)
	ann := b.newTab("ann", desktop)
	ctx, cancel := context.WithTimeout(ann.ctx, testTimeout)
	defer cancel()
	answers := chromedp.Events(ctx, network.WebSocketHandshakeResponseReceived)
	ann.open(srv.url("/"))
	ann.join("ann", "zip")
	for ev, err := range answers {
		if err != nil {
			t.Fatalf("no WebSocket handshake seen: %v", err)
		}
		var got string
		for name, v := range ev.Response.Headers {
			if strings.EqualFold(name, "Sec-WebSocket-Extensions") {
				got = fmt.Sprint(v)
			}
		}
		if want := "permessage-deflate; client_no_context_takeover; server_no_context_takeover"; got != want {
			t.Errorf("Sec-WebSocket-Extensions = %q, want %q", got, want)
		}
		t.Logf("%s answered Sec-WebSocket-Extensions: %s", ev.Response.StatusText, got)
		break
	}
	bob := b.newTab("bob", phone)
	bob.open(srv.url("/"))
	bob.join("bob", "zip")
	long := strings.Repeat("A longer message, which the room compresses for every browser. ", 20)
	for _, text := range []string{long, "short"} {
		bob.say(text)
		ann.waitMessage("bob", text)
		ann.say(text + "!")
		bob.waitMessage("ann", text+"!")
	}
}
