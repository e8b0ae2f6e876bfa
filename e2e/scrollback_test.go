package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// A room whose SQLite history holds more than the page receives on join:
// scrolled to the top, the page loads the older messages above the ones it
// shows, in order and none twice, and the message that was at the top stays
// where it was on the screen; scrolled to the top again, with the keys in
// the focused log, it loads the rest and says the room begins there.
func TestBrowserScrollback(t *testing.T) {
	const (
		room    = "scrollback"
		senders = 10 // of perSend messages each: the rate limit's burst is 20
		perSend = 10
		window  = 20 // the messages a joiner receives (-history)
		total   = senders * perSend
	)
	b := newBrowser(t)
	srv := startChatWith(t, "-history", fmt.Sprint(window), "-db", filepath.Join(t.TempDir(), "chat.db"))

	// The messages, one sender after the other: the room's order is theirs.
	var want []string
	for i := range senders {
		nickname := fmt.Sprintf("w%02d", i+1)
		c := dialAs(t, srv, room, nickname)
		var last string
		for range perSend {
			last = fmt.Sprintf("old %03d", len(want)+1)
			want = append(want, last)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			err := c.Write(ctx, websocket.MessageText, []byte(mustJSON(map[string]string{"message": last})))
			cancel()
			if err != nil {
				t.Fatalf("%s: send %s: %v", nickname, last, err)
			}
		}
		readUntil(t, c, "the echo of "+last, func(f frame) bool { return f.Type == "message" && f.Message == last })
	}

	tb := b.newTab("reader", desktop)
	tb.open(srv.url("/"))
	tb.join("reader", room)
	tb.waitFor("the history on join", fmt.Sprintf(`document.querySelectorAll("#messages li.msg").length === %d`, window))
	tb.waitFor("the load button", `document.getElementById("older").dataset.state === "idle"`)
	if got := shownTexts(tb); !cmp.Equal(got, want[total-window:]) {
		t.Fatalf("on join the page shows %q, want the last %d", got, window)
	}
	if !eval[bool](tb, `(l => l.scrollHeight > l.clientHeight + 200 && l.scrollTop > 0)(document.getElementById("messages"))`) {
		t.Fatalf("the log does not scroll: the test needs more messages\n%s", tb.describe())
	}

	// Scrolled to the top: the message at the top must stay where it is.
	top := eval[anchorAt](tb, `(() => {
		const l = document.getElementById("messages");
		l.scrollTop = 0;
		const m = l.querySelector("li.msg");
		return { id: m.dataset.id, offset: m.getBoundingClientRect().top - l.getBoundingClientRect().top };
	})()`)
	tb.waitFor("older messages", fmt.Sprintf(`document.querySelectorAll("#messages li.msg").length > %d &&
		document.getElementById("older").dataset.state !== "loading"`, window))
	after := eval[float64](tb, fmt.Sprintf(`(l => l.querySelector(%s).getBoundingClientRect().top - l.getBoundingClientRect().top)(document.getElementById("messages"))`,
		jsString(`li.msg[data-id="`+top.ID+`"]`)))
	if math.Abs(after-top.Offset) > 3 {
		t.Errorf("the message at the top moved from %.1f px to %.1f px below the log's top", top.Offset, after)
	}
	got := shownTexts(tb)
	if len(got) <= window || !cmp.Equal(got, want[total-len(got):]) {
		t.Errorf("after scrolling back once the page shows (-want +got):\n%s", cmp.Diff(want[total-len(got):], got))
	}
	if eval[bool](tb, `document.getElementById("messages").scrollTop < 200`) {
		t.Errorf("the log stayed at its top: it would load on and on\n%s", tb.describe())
	}

	// The keys: the focused log scrolls to its top with Home.
	tb.do("press Home in the log", chromedp.Focus(chromedp.ID("messages")), chromedp.KeyEvent(kb.Home))
	tb.waitFor("the beginning of the room", `document.getElementById("older").dataset.state === "beginning"`)
	if diff := cmp.Diff(want, shownTexts(tb)); diff != "" {
		t.Errorf("at the beginning the page shows (-want +got):\n%s", diff)
	}
	if text := eval[string](tb, `document.querySelector("#older .text").textContent`); text != "This is the beginning of #"+room+"." {
		t.Errorf("the log's first line says %q", text)
	}
	ids := eval[[]string](tb, `[...document.querySelectorAll("#messages li[data-id]")].map(li => li.dataset.id)`)
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("id %s shows twice", id)
		}
		seen[id] = true
	}
	// Lines of room frames (messages and notices) are in the room's order.
	if !eval[bool](tb, `[...document.querySelectorAll("#messages li[data-id]")].every((li, i, a) => i === 0 || BigInt(a[i-1].dataset.id) < BigInt(li.dataset.id))`) {
		t.Errorf("the log's lines are not in the room's order: %v", ids)
	}

	// Live messages still come in below.
	tb.say("new after scrolling back")
	if got := shownTexts(tb); len(got) != total+1 || got[total] != "new after scrolling back" {
		t.Errorf("after a new message the page shows %d messages, the last %q", len(got), got[len(got)-1])
	}
}

// anchorAt is a message and its offset from the top of the log, in CSS px.
type anchorAt struct {
	ID     string  `json:"id"`
	Offset float64 `json:"offset"`
}

// shownTexts returns the texts of the room's messages the page shows, in
// order.
func shownTexts(tb *tab) []string {
	tb.t.Helper()
	var out []string
	for _, l := range tb.state().messages() {
		if l.State == "" {
			out = append(out, l.Text)
		}
	}
	return out
}
