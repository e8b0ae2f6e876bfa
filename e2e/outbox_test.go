package e2e

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"
)

// The page sends while its connection fails. First the server's answers
// stop reaching it (the gate is deaf): three messages reach the room, and
// bob sees them, but the page receives neither their acks nor their echoes,
// so they stay pending. Then the connection breaks, and the user types two
// more while the page is away. When the gate opens, the page reconnects
// with ?since=, sends the three again with the same refs (the room takes
// none of them twice, and acknowledges them with their first IDs), then the
// two: each message shows exactly once on both pages, in one order, none
// lost and none marked failed.
func TestBrowserOutboxAcrossConnectionCut(t *testing.T) {
	pr := startPair(t, "outbox", "before the cut")
	g, ann, bob := pr.gate, pr.ann, pr.bob
	sent := ann.framesSent()

	g.setDeaf(true)
	unanswered := []string{"one", "two 二", "three 🎲"}
	for _, m := range unanswered {
		ann.typeMessage(m)
	}
	for _, m := range unanswered {
		bob.waitMessage("ann", m)
	}
	ann.waitFor("three messages pending", pendingJS("sending")+" === 3")

	g.setOpen(false)
	g.drop()
	g.setDeaf(false)
	ann.waitFor("reconnecting", `document.getElementById("status").dataset.state === "reconnecting"`)
	offline := []string{"typed while away", "and this ✈️"}
	for _, m := range offline {
		ann.typeMessage(m)
	}
	ann.waitFor("five messages pending", pendingJS("sending")+" === 5")

	g.setOpen(true)
	ann.waitNotice("status", "Reconnected")
	ann.waitFor("nothing pending", pendingJS("")+" === 0")
	for _, m := range offline {
		bob.waitMessage("ann", m)
	}

	texts := append(append([]string{"before the cut"}, unanswered...), offline...)
	for _, tb := range []*tab{ann, bob} {
		var want []line
		for i, m := range texts {
			nick := "ann"
			if i == 0 {
				nick = "bob"
			}
			want = append(want, line{Kind: "message", Nickname: nick, Text: m, Mine: nick == tb.name})
		}
		st := tb.state()
		if diff := cmp.Diff(want, st.messages()); diff != "" {
			t.Errorf("%s's messages (-want +got):\n%s", tb.name, diff)
		}
		if n := st.count("error"); n != 0 {
			t.Errorf("%s shows %d error notices", tb.name, n)
		}
	}
	if a, b := ids(ann.state()), ids(bob.state()); !cmp.Equal(a, b) {
		t.Errorf("the pages show other IDs: ann %q, bob %q", a, b)
	}

	// The browser's record of what the page sent: each of the three was
	// sent twice, once on each connection, with one ref; the two once.
	refs := map[string][]string{}
	for _, f := range sent() {
		refs[f.Message] = append(refs[f.Message], f.Ref)
	}
	for _, m := range unanswered {
		if r := refs[m]; len(r) != 2 || r[0] != r[1] || r[0] == "" {
			t.Errorf("%q was sent with refs %q, want twice with one ref", m, r)
		}
	}
	for _, m := range offline {
		if r := refs[m]; len(r) != 1 || r[0] == "" {
			t.Errorf("%q was sent with refs %q, want once with a ref", m, r)
		}
	}
}

// Sent faster than the room's rate limit (examples/chat: bursts of 20,
// then 10 a second), on a room that does not announce it (so the page
// cannot pace itself), the last messages are refused: the page marks them
// failed with the reason and keeps their text. Once the limit has room
// again, one is edited and the others retried: then every message shows
// once on both pages, the edited one as edited, and nothing is pending.
func TestBrowserOutboxRateLimited(t *testing.T) {
	const total = 26
	pr := startPairWith(t, "ratelimit", "hello", append(inMemory, "-announce-rate=false")...)
	ann, bob := pr.ann, pr.bob

	// All in one task, as fast as a script can submit the form.
	ann.do("send a burst", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`
		for (let i = 1; i <= %d; i++) {
			document.getElementById("text").value = "burst " + i;
			document.getElementById("send-form").requestSubmit();
		}`, total)))
	ann.waitFor("every message answered", pendingJS("sending")+" === 0")
	failed := eval[[]string](ann, failedJS)
	if len(failed) == 0 {
		t.Fatalf("no message was refused; state:\n%s", ann.describe())
	}
	reasons := eval[[]string](ann, `[...document.querySelectorAll("#messages li.pending.failed .reason")].map(e => e.textContent)`)
	for _, r := range reasons {
		if r != "Not sent: rate limit exceeded" {
			t.Errorf("a failed message says %q", r)
		}
	}
	if n := len(eval[[]string](ann, `[...document.querySelectorAll("#messages li.pending.failed [data-action=retry]")].map(String)`)); n != len(failed) {
		t.Errorf("%d of %d failed messages offer a retry", n, len(failed))
	}
	t.Logf("%d of %d refused: %q", len(failed), total, failed)

	// The limit's bucket refills at 10 a second: wait for it to hold as
	// many as were refused (a wait for time itself, in the page, which
	// polls; no event says so).
	ann.do("note the time", chromedp.Evaluate[chromedp.Void](`window.__refusedAt = performance.now()`))
	ann.waitFor("the rate limit to refill", fmt.Sprintf(`performance.now() - window.__refusedAt > %d`, 100*len(failed)+300))

	edited := failed[0] + " (edited)"
	ann.do("edit the first failed message",
		chromedp.Click(`#messages li.pending.failed [data-action=edit]`),
		chromedp.WaitVisible(`#messages li.pending input.edit`),
		chromedp.SendKeys(`#messages li.pending input.edit`, " (edited)"+kb.Enter),
	)
	ann.waitFor("the edit sent", hasMessageJS("ann", edited, true))
	for range failed[1:] {
		ann.do("retry a failed message", chromedp.Click(`#messages li.pending.failed [data-action=retry]`))
	}
	ann.waitFor("nothing pending", pendingJS("")+" === 0")

	want := map[string]int{"hello": 1, edited: 1}
	for i := 1; i <= total; i++ {
		want[fmt.Sprintf("burst %d", i)] = 1
	}
	delete(want, failed[0])
	bob.waitFor("every message", fmt.Sprintf(`document.querySelectorAll("#messages li.msg").length >= %d`, total+1))
	for _, tb := range []*tab{ann, bob} {
		got := map[string]int{}
		for _, l := range tb.state().messages() {
			got[l.Text]++
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: how often each message shows (-want +got):\n%s", tb.name, diff)
		}
	}
	if a, b := ids(ann.state()), ids(bob.state()); !cmp.Equal(a, b) {
		t.Errorf("the pages show other messages or another order: ann %q, bob %q", a, b)
	}
}

// pendingJS counts the user's messages the room has not echoed, in that
// state (any, if empty).
func pendingJS(state string) string {
	sel := "#messages li.pending"
	if state != "" {
		sel += fmt.Sprintf(`[data-state=%q]`, state)
	}
	return fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(sel))
}

const failedJS = `[...document.querySelectorAll("#messages li.pending.failed .text")].map(e => e.textContent)`

// ids returns the IDs of the room's messages a page shows, in order.
func ids(st pageState) []string {
	var out []string
	for _, l := range st.Lines {
		if l.Kind == "message" && l.State == "" {
			out = append(out, l.ID)
		}
	}
	return out
}

// typeMessage sends a message as the user would, Enter included, without
// waiting for anything.
func (tb *tab) typeMessage(text string) {
	tb.t.Helper()
	tb.do("type "+text, tb.typeText(chromedp.ID("text"), text), chromedp.SendKeys(chromedp.ID("text"), kb.Enter))
}

// clientFrame is a frame the page sent.
type clientFrame struct {
	Message string `json:"message"`
	Ref     string `json:"ref"`
	To      string `json:"to"`
}

// framesSent records the frames the tab's page sends on its WebSockets, as
// the browser reports them, until the tab closes; the function returns
// those recorded so far.
func (tb *tab) framesSent() func() []clientFrame {
	var (
		mu     sync.Mutex
		frames []clientFrame
	)
	events := chromedp.Events(tb.ctx, network.WebSocketFrameSent)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			var f clientFrame
			if ev.Response == nil || json.Unmarshal(ev.Response.PayloadData, &f) != nil {
				continue
			}
			mu.Lock()
			frames = append(frames, f)
			mu.Unlock()
		}
	}()
	return func() []clientFrame {
		mu.Lock()
		defer mu.Unlock()
		return append([]clientFrame(nil), frames...)
	}
}
