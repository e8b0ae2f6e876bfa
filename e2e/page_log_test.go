package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// The flagship page's log: the new-messages button, nickname colours, the
// keyboard and screen readers, multi-line messages, and a long log.

// phoneTall is a phone's whole screen, as users hold it.
var phoneTall = viewport{width: 390, height: 844, mobile: true}

// Scrolled up, the reader does not see what comes in below: a button over
// the log's bottom counts it ("3 new messages ↓"), jumps to the newest and
// goes away; scrolled to the bottom by hand (End in the focused log), it
// goes away too.
func TestBrowserNewMessagesButton(t *testing.T) {
	for _, vp := range []struct {
		name string
		vp   viewport
	}{{"desktop", desktop}, {"phone", phoneTall}} {
		t.Run(vp.name, func(t *testing.T) {
			const room = "unseen"
			b := newBrowser(t)
			srv := startChat(t)
			tb := b.joined(srv, "reader", room, vp.vp)
			texts := fill(t, srv, room, "early", 45)
			tb.waitMessage("", texts[len(texts)-1])
			if !eval[bool](tb, logScrollsJS) {
				t.Fatalf("the log does not scroll: the test needs more messages\n%s", tb.describe())
			}
			if eval[bool](tb, newButtonShownJS) {
				t.Errorf("at the bottom, the page shows %q", eval[string](tb, newButtonTextJS))
			}

			// Scrolled to the top (where the log learns that the room begins).
			tb.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`document.getElementById("messages").scrollTop = 0`))
			tb.waitFor("the beginning", `document.getElementById("older").dataset.state === "beginning"`)
			w := dialAs(t, srv, room, "writer")
			send(t, w, "new 1", "new 2", "new 3")
			tb.waitMessage("writer", "new 3")
			tb.waitFor("the button", newButtonShownJS)
			if got := eval[string](tb, newButtonTextJS); got != "3 new messages ↓" {
				t.Errorf("the button says %q, want %q", got, "3 new messages ↓")
			}
			if eval[bool](tb, lastInViewJS) {
				t.Errorf("the newest message is in view while scrolled up: the log followed\n%s", tb.describe())
			}
			// Over the log, centred on it, above the composer, and not covered.
			geo := eval[buttonGeometry](tb, buttonGeometryJS)
			if math.Abs(geo.Centre-geo.LogCentre) > 2 || geo.Bottom > geo.LogBottom || geo.Top < geo.LogTop || !geo.OnTop {
				t.Errorf("the button is not on the log's bottom, centred and uncovered: %+v", geo)
			}

			tb.do("click the button", chromedp.Click(chromedp.ID("new-messages")))
			tb.waitFor("the bottom", `(l => l.scrollHeight - l.scrollTop - l.clientHeight < 2)(document.getElementById("messages"))`)
			tb.waitFor("the button gone", "!"+newButtonShownJS)
			if !eval[bool](tb, lastInViewJS) {
				t.Errorf("after the click the newest message is not in view\n%s", tb.describe())
			}

			// One more, scrolled up; End in the focused log goes down.
			tb.do("scroll up", chromedp.Evaluate[chromedp.Void](`document.getElementById("messages").scrollTop = 0`))
			send(t, w, "new 4")
			tb.waitFor("the button", newButtonShownJS)
			if got := eval[string](tb, newButtonTextJS); got != "1 new message ↓" {
				t.Errorf("the button says %q, want %q", got, "1 new message ↓")
			}
			tb.do("press End in the log", chromedp.Focus(chromedp.ID("messages")), chromedp.KeyEvent(kb.End))
			tb.waitFor("the newest in view", lastInViewJS)
			tb.waitFor("the button gone", "!"+newButtonShownJS)
		})
	}
}

// Nicknames that differ in one character get colours far apart: the hue
// comes from a hash of the whole nickname. Every hue keeps the contrast of
// text (4.5:1) for the nickname on its bubble and the initial on its
// avatar, in light and in dark mode.
func TestBrowserNicknameColours(t *testing.T) {
	const room = "colours"
	b := newBrowser(t)
	srv := startChat(t)
	tb := b.joined(srv, "reader", room, desktop)
	var users []string
	for i := range 10 {
		users = append(users, fmt.Sprintf("user%d", i))
	}
	for _, n := range append(users, "node1-ann", "node2-bob") {
		send(t, dialAs(t, srv, room, n), "hello from "+n)
		tb.waitMessage(n, "hello from "+n)
	}
	hues := eval[map[string]float64](tb, `Object.fromEntries([...document.querySelectorAll("#messages li.msg")].map(li =>
		[li.dataset.nickname, Number(li.style.getPropertyValue("--hue"))]))`)
	avatars := eval[map[string]float64](tb, `Object.fromEntries([...document.querySelectorAll("#members li")].map(li =>
		[li.dataset.nickname, Number(li.querySelector(".avatar").style.getPropertyValue("--hue"))]))`)
	for n, h := range hues {
		if avatars[n] != h {
			t.Errorf("%s: hue %v in the log, %v in the member list", n, h, avatars[n])
		}
	}
	t.Logf("hues: %v", hues)
	for i, a := range users {
		for _, b := range users[i+1:] {
			if d := hueDistance(hues[a], hues[b]); d < 5 {
				t.Errorf("%s and %s: hues %v and %v, %.0f° apart: one colour", a, b, hues[a], hues[b], d)
			}
		}
		if i > 0 {
			if d := hueDistance(hues[users[i-1]], hues[a]); d < 20 {
				t.Errorf("neighbours %s and %s: hues %.0f° apart, want 20° at least", users[i-1], a, d)
			}
		}
	}
	if d := hueDistance(hues["node1-ann"], hues["node2-bob"]); d < 30 {
		t.Errorf("node1-ann and node2-bob: hues %.0f° apart, want 30° at least", d)
	}

	// Over many neighbours, the page's own function: as a hash with good
	// avalanche, neighbours land within 15° of each other about as often as
	// random hues do (30/360 of the time), not nearly always.
	near := evalAwait[float64](tb, `import("/static/colour.js").then(({ hue }) => {
		const n = 2000, d = (a, b) => Math.min(Math.abs(a - b), 360 - Math.abs(a - b));
		let close = 0;
		for (let i = 1; i < n; i++) if (d(hue("user" + (i - 1)), hue("user" + i)) < 15) close++;
		return close / (n - 1);
	})`)
	t.Logf("neighbours user(i-1), user(i) within 15°: %.1f%% (random: 8.3%%)", 100*near)
	if near > 0.125 {
		t.Errorf("neighbours within 15°: %.1f%% of user0..user1999, want at most 12.5%%", 100*near)
	}

	for _, scheme := range []string{"light", "dark"} {
		tb.do("prefers-color-scheme: "+scheme, func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
			return chromedp.Void{}, err
		})
		if got := eval[bool](tb, `matchMedia("(prefers-color-scheme: dark)").matches`); got != (scheme == "dark") {
			t.Fatalf("%s: the page's colour scheme is not emulated", scheme)
		}
		c := eval[contrasts](tb, contrastJS)
		t.Logf("%s: least contrast over all hues: nickname %.2f (hue %d), initial %.2f (hue %d)", scheme, c.Nick, c.NickHue, c.Avatar, c.AvatarHue)
		if c.Nick < 4.5 || c.Avatar < 4.5 {
			t.Errorf("%s: least contrast: nickname on its bubble %.2f:1 (hue %d), initial on its avatar %.2f:1 (hue %d), want 4.5:1",
				scheme, c.Nick, c.NickHue, c.Avatar, c.AvatarHue)
		}
	}
}

// The log takes the keyboard: Tab reaches it, with a visible focus ring; Page Up, the arrows, Home and End
// scroll it. It is a polite live region of additions, and the lines it
// redraws (the history on join, older messages loaded at the top) go in
// while it is busy, so that a screen reader announces only what is new.
func TestBrowserLogKeyboard(t *testing.T) {
	const room = "keys"
	b := newBrowser(t)
	srv := startChatWith(t, "-history", "30", "-db", filepath.Join(t.TempDir(), "chat.db"))
	before := fill(t, srv, room, "old", 50)
	tb := b.newTab("reader", desktop)
	tb.open(srv.url("/"))
	tb.do("watch the log", chromedp.Evaluate[chromedp.Void](watchAdditionsJS))
	tb.join("reader", room)
	tb.waitMessage("", before[len(before)-1])

	attrs := eval[map[string]string](tb, `(l => Object.fromEntries(["role", "aria-live", "aria-relevant", "tabindex"].map(a => [a, l.getAttribute(a)])))(document.getElementById("messages"))`)
	if diff := cmp.Diff(map[string]string{"role": "log", "aria-live": "polite", "aria-relevant": "additions", "tabindex": "0"}, attrs); diff != "" {
		t.Errorf("the log's attributes (-want +got):\n%s", diff)
	}

	// Tab from the leave button, the first control (the member list's
	// toggle is hidden on wide screens).
	if id := eval[string](tb, `document.activeElement.id`); id != "text" {
		t.Errorf("after joining the focus is on %q, want the composer", id)
	}
	tb.do("focus the leave button, Tab",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("leave").focus()`), chromedp.KeyEvent(kb.Tab))
	tb.waitFor("the log focused", `document.activeElement.id === "messages"`)
	ring := eval[focusRing](tb, `(l => { const s = getComputedStyle(l);
		return { visible: l.matches(":focus-visible"), style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor }; })(document.getElementById("messages"))`)
	if !ring.Visible || ring.Style == "none" || ring.Width < 2 {
		t.Errorf("the focused log's outline: %+v, want a visible one, 2px at least", ring)
	}

	const scrollTopJS = `document.getElementById("messages").scrollTop`
	tb.do("End", chromedp.KeyEvent(kb.End))
	tb.waitScrolled("the bottom", `l.scrollHeight - l.scrollTop - l.clientHeight < 2`)
	bottom := eval[float64](tb, scrollTopJS)
	tb.do("Page Up", chromedp.KeyEvent(kb.PageUp))
	tb.waitScrolled("the log scrolled up a page", fmt.Sprintf(`l.scrollTop < %f - 200`, bottom))
	up := eval[float64](tb, scrollTopJS)
	tb.do("Arrow Down", chromedp.KeyEvent(kb.ArrowDown))
	tb.waitScrolled("the log scrolled down", fmt.Sprintf(`l.scrollTop > %f`, up))
	// Home: the top, where the older messages load (and the one at the top
	// stays in view); Home again: the room's beginning.
	tb.do("Home", chromedp.KeyEvent(kb.Home))
	tb.waitFor("the beginning of the room", `document.getElementById("older").dataset.state === "beginning"`)
	if diff := cmp.Diff(before, shownTexts(tb)); diff != "" {
		t.Errorf("after Home the page shows (-want +got):\n%s", diff)
	}
	// Chromium drops a scrolling key pressed right after the log moved
	// itself to keep the top message in place: press Home until at the top.
	for range 5 {
		tb.do("Home", chromedp.KeyEvent(kb.Home))
		tb.waitScrolled("the log to stop", `true`)
		if eval[float64](tb, scrollTopJS) == 0 {
			break
		}
	}
	tb.waitScrolled("the top", `l.scrollTop === 0`)
	tb.do("Page Down", chromedp.KeyEvent(kb.PageDown))
	tb.waitScrolled("the log scrolled down a page", `l.scrollTop > 200`)
	tb.do("End", chromedp.KeyEvent(kb.End))
	tb.waitScrolled("the bottom", `l.scrollHeight - l.scrollTop - l.clientHeight < 2`)

	// A new message, once the redraws are over: the only one added while
	// the log is not busy.
	tb.waitFor("the log not busy", `document.getElementById("messages").getAttribute("aria-busy") !== "true"`)
	send(t, dialAs(t, srv, room, "live"), "news")
	tb.waitMessage("live", "news")
	var got []addition
	tb.waitFor("the additions recorded", `window.__additions.some(a => a.text === "news")`)
	got = eval[[]addition](tb, `window.__additions`)
	var want []addition
	for _, m := range before {
		want = append(want, addition{Text: m, Busy: true})
	}
	want = append(want, addition{Text: "news", Busy: false})
	if diff := cmp.Diff(want, got, cmp.Transformer("sorted", sortedAdditions)); diff != "" {
		t.Errorf("messages added to the log, and whether it was busy (-want +got):\n%s", diff)
	}
}

// A message of several lines: Shift+Enter starts a new line in the
// composer, which grows with them (up to a few lines); Enter during an
// input method's composition sends nothing; Enter sends; both pages show
// the lines as sent.
func TestBrowserMultilineMessage(t *testing.T) {
	const room = "lines"
	b := newBrowser(t)
	srv := startChat(t)
	ann := b.joined(srv, "ann", room, desktop)
	bob := b.joined(srv, "bob", room, phoneTall)
	ann.waitMembers("ann", "bob")

	oneLine := eval[float64](ann, `document.getElementById("text").offsetHeight`)
	ann.do("type two lines",
		chromedp.SendKeys(chromedp.ID("text"), "line1"),
		chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(chromedp.ID("text"), "line2"))
	if got := eval[string](ann, `document.getElementById("text").value`); got != "line1\nline2" {
		t.Fatalf("the composer holds %q after Shift+Enter", got)
	}
	if n := eval[int](ann, pendingJS("")); n != 0 {
		t.Fatalf("Shift+Enter sent the message")
	}
	twoLines := eval[float64](ann, `document.getElementById("text").offsetHeight`)
	if twoLines < oneLine+15 {
		t.Errorf("the composer is %.0f px high with two lines, %.0f px with one: it does not grow", twoLines, oneLine)
	}

	// An input method composes a word; its Enter commits it, and sends nothing.
	ann.do("compose with an input method", func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, input.ImeSetComposition, input.ImeSetCompositionParams{Text: "にほん", SelectionStart: 3, SelectionEnd: 3})
		return chromedp.Void{}, err
	})
	composing := eval[bool](ann, `(() => {
		const ta = document.getElementById("text");
		let sent = false;
		const f = (e) => { e.preventDefault(); sent = true; };
		document.getElementById("send-form").addEventListener("submit", f);
		// The keydown an input method's Enter makes: isComposing, keyCode 229.
		ta.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", keyCode: 229, isComposing: true, bubbles: true, cancelable: true }));
		document.getElementById("send-form").removeEventListener("submit", f);
		return sent;
	})()`)
	if composing {
		t.Errorf("an Enter that commits a composition sent the message")
	}
	ann.do("commit the composition", func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: "日本"})
		return chromedp.Void{}, err
	})
	if got := eval[string](ann, `document.getElementById("text").value`); got != "line1\nline2日本" {
		t.Fatalf("the composer holds %q after the composition", got)
	}
	ann.do("delete the word", chromedp.KeyEvent(kb.Backspace+kb.Backspace))
	ann.do("Enter", chromedp.KeyEvent(kb.Enter))
	ann.waitFor("the echo", hasMessageJS("ann", "line1\nline2", true))
	bob.waitMessage("ann", "line1\nline2")
	for _, tb := range []*tab{ann, bob} {
		shown := eval[shownText](tb, `(e => ({ text: e.innerText, lines: Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)) }))(
			[...document.querySelectorAll("#messages li.msg .text")].at(-1))`)
		if shown.Text != "line1\nline2" || shown.Lines != 2 {
			t.Errorf("%s shows the message as %q on %d lines, want \"line1\\nline2\" on 2", tb.name, shown.Text, shown.Lines)
		}
	}
	after := eval[composerState](ann, `(ta => ({ value: ta.value, height: ta.offsetHeight }))(document.getElementById("text"))`)
	if after.Value != "" || after.Height != oneLine {
		t.Errorf("after sending the composer holds %q and is %.0f px high, want empty and %.0f px", after.Value, after.Height, oneLine)
	}

	// Twenty lines: the composer stops growing at a few, and scrolls.
	capped := eval[composerState](ann, `(ta => {
		ta.value = Array.from({ length: 20 }, (_, i) => "line " + i).join("\n");
		ta.dispatchEvent(new Event("input"));
		return { height: ta.offsetHeight, scrolls: ta.scrollHeight > ta.clientHeight };
	})(document.getElementById("text"))`)
	if capped.Height > 8*oneLine/2 || capped.Height < 4*oneLine/2 || !capped.Scrolls {
		t.Errorf("with twenty lines the composer is %.0f px high (one line: %.0f px), scrolling %v: want a few lines, scrolling",
			capped.Height, oneLine, capped.Scrolls)
	}
}

// Two thousand messages: while the log follows the bottom, the DOM keeps a
// bounded window of lines; scrolled to the top, the older ones come back
// in order, none twice, with the day separators and the groups right; the
// time the page takes per message is logged.
func TestBrowserLongLog(t *testing.T) {
	const (
		room     = "long"
		total    = 2000
		maxLines = 500 // logwindow.js's MAX_LINES
	)
	b := newBrowser(t)
	srv := startChat(t)
	tb := b.newTab("reader", desktop)
	tb.open(srv.url("/"))
	tb.do("time the frames", chromedp.Evaluate[chromedp.Void](timeFramesJS))
	tb.join("reader", room)
	want := fill(t, srv, room, "m", total)
	// The page takes a few milliseconds per message; under a CI machine's
	// load, many more: the wait grows with the count.
	tb.waitForWithin(waitTimeout+total*20*time.Millisecond, "the last message", hasMessageJS("", want[total-1], false))
	if n := eval[int](tb, `document.querySelectorAll("#messages li").length`); n > maxLines {
		t.Errorf("after %d messages the log has %d lines in the DOM, want %d at most", total, n, maxLines)
	}
	if !eval[bool](tb, lastInViewJS) {
		t.Errorf("the newest message is not in view\n%s", tb.describe())
	}
	timing := eval[[]frameTiming](tb, `(() => {
		const out = [], per = 500, t = window.__frameTimes;
		for (let i = 0; i < t.length; i += per) {
			const s = t.slice(i, i + per);
			out.push({ from: i, frames: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, max: Math.max(...s) });
		}
		return out;
	})()`)
	for _, s := range timing {
		t.Logf("frames %4d to %4d: %.3f ms per frame on average, %.2f ms at most", s.From, s.From+s.Frames-1, s.Mean, s.Max)
	}

	// Scrolled to the top, again and again: the lines come back, then the
	// room says it begins there.
	tb.waitFor("the beginning", `(l => { l.scrollTop = 0; return document.getElementById("older").dataset.state === "beginning"; })(document.getElementById("messages"))`)
	if diff := cmp.Diff(want, shownTexts(tb)); diff != "" {
		t.Errorf("at the top the page shows (-want +got):\n%s", diff)
	}
	checkLog(t, tb)
	if n := tb.state().count("join"); n != total/perClient+1 {
		t.Errorf("%d join notices, want %d", n, total/perClient+1)
	}

	// Back at the bottom, the window is bounded again.
	tb.say("back at the bottom")
	if n := eval[int](tb, `document.querySelectorAll("#messages li").length`); n > maxLines {
		t.Errorf("back at the bottom the log has %d lines in the DOM, want %d at most", n, maxLines)
	}
	if s := eval[string](tb, `document.getElementById("older").dataset.state`); s != "idle" {
		t.Errorf("with lines out of the DOM the log's first line is %q, want idle (load older)", s)
	}
}

// checkLog checks the whole log: the lines of room frames in the room's
// order and none twice, a day separator before the first line of each day
// and nowhere else, and each message grouped with the one before exactly
// when it follows one of the same sender within five minutes.
func checkLog(t *testing.T, tb *tab) {
	t.Helper()
	problems := eval[[]string](tb, `(() => {
		const out = [], lines = [...document.querySelectorAll("#messages li")];
		let lastId = 0n, lastDay = "", prev = null;
		const ids = new Set();
		for (const li of lines) {
			if (li.dataset.id) {
				const id = BigInt(li.dataset.id);
				if (ids.has(id)) out.push("id " + id + " twice");
				if (id <= lastId) out.push("id " + id + " after " + lastId);
				ids.add(id);
				lastId = id;
			}
			if (li.classList.contains("day")) {
				const next = li.nextElementSibling;
				if (!next || !next.dataset.t || new Date(Number(next.dataset.t)).toDateString() === lastDay) out.push("a day separator before " + (next && next.textContent));
			} else if (li.dataset.t) {
				const day = new Date(Number(li.dataset.t)).toDateString();
				if (day !== lastDay && !(prev && prev.classList.contains("day"))) out.push("no day separator before " + li.textContent);
				lastDay = day;
			}
			if (li.classList.contains("msg") && !li.classList.contains("pending")) {
				const cont = Boolean(prev && prev.classList.contains("msg") && prev.dataset.nickname === li.dataset.nickname &&
					Number(li.dataset.t) - Number(prev.dataset.t) < 5 * 60 * 1000);
				if (cont !== li.classList.contains("cont")) out.push("message " + li.dataset.id + (cont ? " not grouped" : " grouped"));
			}
			prev = li;
		}
		return out;
	})()`)
	if len(problems) > 0 {
		t.Errorf("%d problems in the log, the first: %q", len(problems), problems[:min(10, len(problems))])
	}
}

// perClient is how many messages fill sends from one client: under the
// rate limit's burst (20).
const perClient = 20

// fill sends n messages ("prefix 0001" …) to room from Go clients w001,
// w002 …, perClient each, one client after the other, so that the room's
// order is that of the texts it returns. Each client leaves once the room
// has echoed its last message.
func fill(t *testing.T, srv *chatServer, room, prefix string, n int) []string {
	t.Helper()
	var texts []string
	for i := 0; len(texts) < n; i++ {
		c := dialAs(t, srv, room, fmt.Sprintf("w%03d", i+1))
		var batch []string
		for range min(perClient, n-len(texts)) {
			batch = append(batch, fmt.Sprintf("%s %04d", prefix, len(texts)+len(batch)+1))
		}
		send(t, c, batch...)
		texts = append(texts, batch...)
		c.Close(websocket.StatusNormalClosure, "done")
	}
	return texts
}

// send sends messages from a Go client and waits for the echo of the last.
func send(t *testing.T, c *websocket.Conn, texts ...string) {
	t.Helper()
	for _, m := range texts {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		err := c.Write(ctx, websocket.MessageText, []byte(mustJSON(map[string]string{"message": m})))
		cancel()
		if err != nil {
			t.Fatalf("send %s: %v", m, err)
		}
	}
	last := texts[len(texts)-1]
	readUntil(t, c, "the echo of "+last, func(f frame) bool { return f.Type == "message" && f.Message == last })
}

// waitScrolled waits until the log, l in the predicate, has stopped
// scrolling (keys scroll it smoothly, over a few frames) where the
// predicate holds.
func (tb *tab) waitScrolled(what, predicate string) {
	tb.t.Helper()
	tb.waitFor(what, fmt.Sprintf(`(l => {
		const settled = window.__scrollTop === l.scrollTop;
		window.__scrollTop = l.scrollTop;
		return settled && (%s);
	})(document.getElementById("messages"))`, predicate))
}

// joined opens a tab of the page on srv and joins room as nickname.
func (b *browser) joined(srv *chatServer, nickname, room string, vp viewport) *tab {
	b.t.Helper()
	tb := b.newTab(nickname, vp)
	tb.open(srv.url("/"))
	tb.join(nickname, room)
	return tb
}

// evalAwait evaluates a JavaScript expression whose value is a promise,
// and returns what it resolves to.
func evalAwait[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: evaluate %s: %v", tb.name, expr, err)
	}
	return v
}

func hueDistance(a, b float64) float64 {
	d := math.Mod(math.Abs(a-b), 360)
	return math.Min(d, 360-d)
}

const (
	logScrollsJS     = `(l => l.scrollHeight > l.clientHeight + 200)(document.getElementById("messages"))`
	newButtonShownJS = `(b => !b.hidden && b.getBoundingClientRect().height > 0)(document.getElementById("new-messages"))`
	newButtonTextJS  = `document.getElementById("new-messages").textContent`
	// lastInViewJS: the log's last message is inside the log's box.
	lastInViewJS = `(l => { const r = [...l.querySelectorAll("li.msg")].at(-1).getBoundingClientRect(), b = l.getBoundingClientRect();
		return r.top >= b.top - 1 && r.bottom <= b.bottom + 1; })(document.getElementById("messages"))`
	buttonGeometryJS = `(() => {
		const b = document.getElementById("new-messages").getBoundingClientRect();
		const l = document.getElementById("messages").getBoundingClientRect();
		const x = b.left + b.width / 2, y = b.top + b.height / 2;
		return { centre: x, logCentre: l.left + l.width / 2, top: b.top, bottom: b.bottom, logTop: l.top, logBottom: l.bottom,
			onTop: document.elementFromPoint(x, y)?.closest("#new-messages") !== null };
	})()`
	// watchAdditionsJS records each message added to the log, and whether
	// the log was busy then (the mark is cleared in a later task).
	watchAdditionsJS = `(() => {
		const l = document.getElementById("messages");
		window.__additions = [];
		new MutationObserver((records) => {
			const busy = l.getAttribute("aria-busy") === "true";
			for (const r of records) for (const n of r.addedNodes) {
				if (n.nodeType === 1 && n.matches("li.msg")) window.__additions.push({ text: n.querySelector(".text").textContent, busy });
			}
		}).observe(l, { childList: true });
	})()`
	// timeFramesJS times the page's handling of each WebSocket message:
	// chatroom.js's onmessage, which renders it (its forced layout
	// included, not the frame drawn after).
	timeFramesJS = `(() => {
		const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
		window.__frameTimes = [];
		Object.defineProperty(WebSocket.prototype, "onmessage", { configurable: true, get: d.get, set(f) {
			d.set.call(this, f && function (ev) {
				const t0 = performance.now();
				try { return f.call(this, ev); } finally { window.__frameTimes.push(performance.now() - t0); }
			});
		} });
	})()`
	// contrastJS renders a message for every hue and returns the least
	// contrast (WCAG 2) of a nickname on its bubble and of an initial on
	// its avatar, in the colour scheme in force.
	contrastJS = `(() => {
		const ctx = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
		const srgb = (css) => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = "#000"; ctx.fillStyle = css; ctx.fillRect(0, 0, 1, 1); return [...ctx.getImageData(0, 0, 1, 1).data].slice(0, 3); };
		const lum = (css) => { const [r, g, b] = srgb(css).map(v => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
		const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
		const list = document.getElementById("messages");
		const out = { nick: 99, nickHue: 0, avatar: 99, avatarHue: 0 };
		for (let h = 0; h < 360; h++) {
			const li = document.createElement("li");
			li.className = "msg";
			li.style.setProperty("--hue", String(h));
			li.innerHTML = '<span class="avatar">W</span><div class="bubble"><div class="meta"><span class="nick">w</span></div></div>';
			list.append(li);
			const a = getComputedStyle(li.querySelector(".avatar")), bubble = getComputedStyle(li.querySelector(".bubble"));
			const nick = ratio(getComputedStyle(li.querySelector(".nick")).color, bubble.backgroundColor);
			const avatar = ratio(a.color, a.backgroundColor);
			if (nick < out.nick) { out.nick = nick; out.nickHue = h; }
			if (avatar < out.avatar) { out.avatar = avatar; out.avatarHue = h; }
			li.remove();
		}
		return out;
	})()`
)

type buttonGeometry struct {
	Centre    float64 `json:"centre"`
	LogCentre float64 `json:"logCentre"`
	Top       float64 `json:"top"`
	Bottom    float64 `json:"bottom"`
	LogTop    float64 `json:"logTop"`
	LogBottom float64 `json:"logBottom"`
	OnTop     bool    `json:"onTop"`
}

type contrasts struct {
	Nick      float64 `json:"nick"`
	NickHue   int     `json:"nickHue"`
	Avatar    float64 `json:"avatar"`
	AvatarHue int     `json:"avatarHue"`
}

type focusRing struct {
	Visible bool    `json:"visible"`
	Style   string  `json:"style"`
	Width   float64 `json:"width"`
	Color   string  `json:"color"`
}

// addition is a message put in the log, and whether the log was busy.
type addition struct {
	Text string `json:"text"`
	Busy bool   `json:"busy"`
}

// sortedAdditions orders additions by text: older messages loaded at the
// top go in after the newer ones of the history on join.
func sortedAdditions(in []addition) []addition {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b addition) int { return strings.Compare(a.Text, b.Text) })
	return out
}

type shownText struct {
	Text  string `json:"text"`
	Lines int    `json:"lines"`
}

type composerState struct {
	Value   string  `json:"value"`
	Height  float64 `json:"height"`
	Scrolls bool    `json:"scrolls"`
}

type frameTiming struct {
	From   int     `json:"from"`
	Frames int     `json:"frames"`
	Mean   float64 `json:"mean"`
	Max    float64 `json:"max"`
}
