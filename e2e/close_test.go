package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// A browser that sends a message over /chat's size limit (32 KiB) is
// closed with 1009, and its onclose says so with wasClean true: the server
// completes the closing handshake and then closes the connection, rather
// than resetting it while the browser is still sending (then the browser
// sees 1006, or at least wasClean false). The page, on the server's
// origin, opens the WebSocket itself, several times in a row, since a reset
// is a race.
func TestBrowserClose1009(t *testing.T) {
	const (
		size = 4 << 20 // bytes in the frame, JSON included
		runs = 10
	)
	b := newBrowser(t)
	srv := startChat(t)
	tb := b.newTab("big", desktop)
	tb.open(srv.url("/"))

	// Runs one after the other, each on a new WebSocket; each close event
	// is kept in window.__closes.
	tb.do("send 4 MiB", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const url = %s, size = %d, runs = %d;
		const msg = JSON.stringify({message: "x".repeat(size - '{"message":""}'.length)});
		window.__closes = [];
		const run = () => {
			const ws = new WebSocket(url);
			let errored = false, sentAt = 0;
			ws.onopen = () => { sentAt = performance.now(); ws.send(msg); };
			ws.onerror = () => { errored = true; };
			ws.onclose = (e) => {
				window.__closes.push({code: e.code, reason: e.reason, wasClean: e.wasClean, errored,
					ms: Math.round(performance.now() - sentAt)});
				if (window.__closes.length < runs) run();
			};
		};
		run();
	})()`, jsString(srv.tutorialURL("big")), size, runs)))
	tb.waitFor(fmt.Sprintf("%d close events", runs), fmt.Sprintf(`window.__closes.length === %d`, runs))

	type closed struct {
		closeEvent
		Errored bool `json:"errored"` // an error event came first: the browser saw no clean close
		MS      int  `json:"ms"`      // from the send to the close event
	}
	codes := map[int]int{}
	clean, slowest := 0, 0
	for i, c := range eval[[]closed](tb, `window.__closes`) {
		codes[c.Code]++
		if c.WasClean {
			clean++
		}
		slowest = max(slowest, c.MS)
		if c.Code != 1009 || !c.WasClean {
			t.Errorf("run %d: onclose %v %d ms after the send (error event first: %v), want 1009 with wasClean true",
				i, &c.closeEvent, c.MS, c.Errored)
		}
	}
	t.Logf("4 MiB × %d runs: codes %s, wasClean in %d, slowest close %d ms after the send", runs, formatCounts(codes), clean, slowest)
}
