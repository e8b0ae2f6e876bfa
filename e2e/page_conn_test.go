package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"
)

// The chat page's connection as its users see it: the phone's member
// drawer, the notices of a connection lost and back, the page while
// offline, a reload, and the rate limit. TestScreenshot makes the README's
// picture.

var (
	bigPhone    = viewport{width: 390, height: 844, mobile: true}
	wideDesktop = viewport{width: 1280, height: 800}
)

// On a phone the member drawer closes with Escape, with a tap outside it
// and with its own close button, not only with its toggle; aria-expanded
// says it is closed, and the focus goes back to the toggle (after a tap, to
// what was tapped).
func TestPageDrawerCloses(t *testing.T) {
	_, ann := alone(t, bigPhone, "drawer")

	ways := []struct {
		name  string
		close chromedp.Action[chromedp.Void]
		tap   bool
	}{
		{"Escape", chromedp.KeyEvent(kb.Escape), false},
		{"a tap outside", chromedp.MouseClickXY(40, 420), true}, // on the messages, left of the drawer
		{"its close button", chromedp.Click(chromedp.ID("members-close")), false},
	}
	for _, w := range ways {
		ann.do("open the drawer",
			chromedp.Click(chromedp.ID("members-toggle")),
			chromedp.WaitVisible(chromedp.ID("members-panel")),
			chromedp.WaitVisible(chromedp.ID("members-close")),
		)
		if got := eval[string](ann, `document.getElementById("members-toggle").getAttribute("aria-expanded")`); got != "true" {
			t.Errorf("open: aria-expanded = %q", got)
		}
		ann.do("close the drawer with "+w.name, w.close, chromedp.WaitNotVisible(chromedp.ID("members-panel")))
		got := eval[[]string](ann, `[document.getElementById("members-toggle").getAttribute("aria-expanded"), document.activeElement.id]`)
		want := []string{"false", "members-toggle"}
		if w.tap {
			want[1] = "messages" // the tap goes where it was meant to: the log
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("closed with %s: [aria-expanded, focus] (-want +got):\n%s", w.name, diff)
		}
	}
}

// alone starts examples/chat (history in memory) and a browser whose one
// tab, of size vp, has joined room as ann.
func alone(t *testing.T, vp viewport, room string) (*chatServer, *tab) {
	t.Helper()
	b := newBrowser(t)
	srv := startChat(t)
	ann := b.newTab("ann", vp)
	ann.open(srv.url("/"))
	ann.join("ann", room)
	return srv, ann
}

// statusLinesJS lists the texts of the page's connection notices.
const statusLinesJS = `[...document.querySelectorAll("#messages li.notice")].filter(li => li.dataset.kind === "status").map(li => li.querySelector(".text").textContent)`

// A server restarted gracefully (SIGTERM: the page's connection closes
// with 1001) while nothing is said: one line, which ends as "The server
// restarted; reconnected", and no warning about missing messages.
func TestPageRestartOneNotice(t *testing.T) {
	srv, ann := alone(t, desktop, "restart-quiet")
	ann.say("before the restart")

	srv.stop()
	ann.waitNotice("status", "The server is restarting. Reconnecting…")
	srv.start()
	ann.waitNotice("status", "The server restarted; reconnected")
	ann.waitConnected()
	ann.waitMembers("ann")

	st := ann.state()
	if diff := cmp.Diff([]string{"The server restarted; reconnected"}, eval[[]string](ann, statusLinesJS)); diff != "" {
		t.Errorf("connection notices (-want +got):\n%s", diff)
	}
	if n := st.count("truncated"); n != 0 {
		t.Errorf("%d warnings about missing messages; nothing was said meanwhile", n)
	}
}

// Cut and back three times with nothing said in between: one line, updated
// in place, no stacked notices, no warning.
func TestPageReconnectCyclesOneLine(t *testing.T) {
	pr := startPair(t, "cycles", "hello")
	g, ann := pr.gate, pr.ann
	for i := range 3 {
		g.setOpen(false)
		g.drop()
		ann.waitNotice("status", "Connection lost. Reconnecting…")
		ann.waitFor("the send button offline", `document.getElementById("send").getAttribute("aria-disabled") === "true"`)
		g.setOpen(true)
		ann.waitNotice("status", "Reconnected")
		ann.waitConnected()
		ann.waitMembers("bob", "ann")
		if got := eval[[]string](ann, statusLinesJS); len(got) != 1 {
			t.Fatalf("after cut %d: connection notices %q, want one line", i+1, got)
		}
	}
	if n := ann.state().count("truncated"); n != 0 {
		t.Errorf("%d warnings about missing messages; none are", n)
	}
}

// Cut off while the room goes on and its history (3 messages) runs out:
// the page knows it missed messages, and says so, once.
func TestPageMissingMessagesWarned(t *testing.T) {
	pr := startPairWith(t, "missing", "hello", "-history", "3", "-db", "")
	g, ann, bob := pr.gate, pr.ann, pr.bob
	g.setOpen(false)
	g.drop()
	ann.waitNotice("status", "Connection lost. Reconnecting…")
	bob.waitMembers("bob")
	for i := range 5 {
		bob.say(fmt.Sprint("said while ann was away ", i))
	}
	g.setOpen(true)
	ann.waitNotice("status", "Reconnected")
	ann.waitMessage("bob", "said while ann was away 4")
	st := ann.state()
	if n := st.count("truncated"); n != 1 {
		t.Errorf("%d warnings about missing messages, want 1:\n%s", n, ann.describe())
	}
	if got := eval[[]string](ann, statusLinesJS); len(got) != 1 {
		t.Errorf("connection notices %q, want one line", got)
	}
}

// While offline the member list is greyed out and Send is disabled, but the
// text box takes what the user types, which the outbox sends once back;
// then both look as before.
func TestPageOfflineState(t *testing.T) {
	pr := startPair(t, "offline", "hello")
	g, ann, bob := pr.gate, pr.ann, pr.bob
	const look = `(() => {
		const panel = document.getElementById("members-panel"), send = document.getElementById("send");
		return [panel.classList.contains("offline") ? "offline" : "online", panel.getAttribute("aria-disabled"),
			getComputedStyle(document.getElementById("members")).opacity, send.getAttribute("aria-disabled"),
			getComputedStyle(send).opacity];
	})()`
	online := []string{"online", "false", "1", "false", "1"}
	if diff := cmp.Diff(online, eval[[]string](ann, look)); diff != "" {
		t.Errorf("online: [panel, aria-disabled, list opacity, send aria-disabled, send opacity] (-want +got):\n%s", diff)
	}

	g.setOpen(false)
	g.drop()
	ann.waitNotice("status", "Connection lost. Reconnecting…")
	got := eval[[]string](ann, look)
	if got[0] != "offline" || got[1] != "true" || got[2] == "1" || got[3] != "true" || got[4] == "1" {
		t.Errorf("offline: [panel, aria-disabled, list opacity, send aria-disabled, send opacity] = %q", got)
	}
	ann.typeMessage("typed while offline")
	ann.waitFor("the message pending", pendingJS("sending")+" === 1")
	if v := eval[string](ann, `document.getElementById("text").value`); v != "" {
		t.Errorf("the text box still holds %q after Enter", v)
	}

	g.setOpen(true)
	ann.waitNotice("status", "Reconnected")
	ann.waitMembers("bob", "ann")
	bob.waitMessage("ann", "typed while offline")
	ann.waitFor("nothing pending", pendingJS("")+" === 0")
	if diff := cmp.Diff(online, eval[[]string](ann, look)); diff != "" {
		t.Errorf("back: (-want +got):\n%s", diff)
	}
}

// A reload stays in the room, with the same nickname, without the join
// form, and shows the room's history (kept in SQLite, as examples/chat does
// by default: the room empties during the reload); after Leave a reload
// shows the join form.
func TestPageReloadStaysInRoom(t *testing.T) {
	b := newBrowser(t)
	srv := startChatWith(t, "-history", "100", "-db", filepath.Join(t.TempDir(), "chat.db"))
	ann := b.newTab("ann", desktop)
	ann.open(srv.url("/"))
	ann.join("ann", "日本語の部屋")
	ann.say("before the reload")
	address := eval[string](ann, `location.href`)

	ann.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("chat-view")))
	ann.waitConnected()
	ann.waitMembers("ann")
	got := eval[[]string](ann, `[location.href, document.getElementById("room-name").textContent,
		document.getElementById("status-text").textContent, String(document.getElementById("join-view").hidden)]`)
	if diff := cmp.Diff([]string{address, "日本語の部屋", "Connected as ann", "true"}, got); diff != "" {
		t.Errorf("after the reload: [address, room, status, join form hidden] (-want +got):\n%s", diff)
	}
	ann.waitFor("the history", hasMessageJS("ann", "before the reload", true))

	ann.do("leave", chromedp.Click(chromedp.ID("leave")), chromedp.WaitVisible(chromedp.ID("join-form")))
	ann.do("reload after leaving", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("join-form")))
	if hidden := eval[bool](ann, `document.getElementById("chat-view").hidden`); !hidden {
		t.Error("after Leave, a reload went back into the room")
	}
	if v := eval[string](ann, `document.getElementById("room").value`); v != "日本語の部屋" {
		t.Errorf("the join form's room is %q, want the address's", v)
	}
}

// burstJS submits the composer n times in one task, as fast as a script can.
func burstJS(n int) string {
	return fmt.Sprintf(`for (let i = 1; i <= %d; i++) {
		document.getElementById("text").value = "burst " + i;
		document.getElementById("send-form").requestSubmit();
	}`, n)
}

// A burst of 20 on a room that allows 5 a second in bursts of 3: the page
// paces itself under the announced limit, so every message arrives once,
// in order, and nothing says "not sent".
func TestPagePacedUnderRateLimit(t *testing.T) {
	const total = 20
	pr := startPairWith(t, "paced", "hello", append(inMemory, "-rate", "5", "-burst", "3")...)
	ann, bob := pr.ann, pr.bob
	ann.do("send a burst", chromedp.Evaluate[chromedp.Void](burstJS(total)))
	bob.waitMessage("ann", fmt.Sprint("burst ", total))
	ann.waitFor("nothing pending", pendingJS("")+" === 0")

	want := []line{{Kind: "message", Nickname: "bob", Text: "hello", Mine: true}}
	for i := 1; i <= total; i++ {
		want = append(want, line{Kind: "message", Nickname: "ann", Text: fmt.Sprint("burst ", i)})
	}
	if diff := cmp.Diff(want, bob.state().messages()); diff != "" {
		t.Errorf("bob's messages (-want +got):\n%s", diff)
	}
	st := ann.state()
	for _, kind := range []string{"error", "limited"} {
		if n := st.count(kind); n != 0 {
			t.Errorf("%d %s notices", n, kind)
		}
	}
	if n := eval[int](ann, `document.querySelectorAll("#messages li.pending.failed").length`); n != 0 {
		t.Errorf("%d messages failed", n)
	}
}

// Refusals that still happen (the page sends before the room has told it
// its limit: here six messages typed while it connects, into bursts of 2)
// are sent again by themselves and show as one line with a count.
func TestPageRateRefusalsCollapse(t *testing.T) {
	b := newBrowser(t)
	srv := startChatWith(t, append(inMemory, "-rate", "2", "-burst", "2")...)
	bob := b.newTab("bob", desktop)
	bob.open(srv.url("/"))
	bob.join("bob", "refusals")
	ann := b.newTab("ann", desktop)
	ann.open(srv.url("/"))
	ann.do("join and type at once", chromedp.Evaluate[chromedp.Void](`
		document.getElementById("nickname").value = "ann";
		document.getElementById("room").value = "refusals";
		document.getElementById("join-form").requestSubmit();
		`+burstJS(6)))
	bob.waitFor("six messages from ann", `document.querySelectorAll("#messages li.msg[data-nickname=ann]").length >= 6`)
	ann.waitFor("nothing pending", pendingJS("")+" === 0")

	got := map[string]int{}
	for _, l := range bob.state().messages() {
		got[l.Text]++
	}
	want := map[string]int{}
	for i := 1; i <= 6; i++ {
		want[fmt.Sprint("burst ", i)] = 1
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("how often bob sees each message (-want +got):\n%s", diff)
	}
	lines := eval[[]string](ann, `[...document.querySelectorAll("#messages li.notice[data-kind=limited]")].map(li => li.textContent)`)
	if len(lines) != 1 {
		t.Fatalf("rate-limit notices %q, want one line", lines)
	}
	if n := eval[int](ann, `Number(document.querySelector("#messages li.notice[data-kind=limited]").dataset.count || 1)`); n < 2 {
		t.Errorf("the rate-limit line counts %d refusals, want the 4 or so of bursts of 2; %q", n, lines)
	}
	if n := eval[int](ann, `document.querySelectorAll("#messages li.pending.failed").length`); n != 0 {
		t.Errorf("%d messages failed", n)
	}
}

// With CHATROOM_SCREENSHOT=path, a populated room (Japanese and emoji
// included) on a desktop (1280×800) and a phone (390×844), side by side,
// is written there as a PNG: the README's docs/screenshot.png is made so
// (e2e/README.md).
func TestScreenshot(t *testing.T) {
	path := os.Getenv("CHATROOM_SCREENSHOT")
	if path == "" {
		t.Skip("set CHATROOM_SCREENSHOT=path to write the screenshot there")
	}
	b := newBrowser(t)
	srv := startChat(t)
	const room = "雑談"
	tabs := map[string]*tab{}
	for _, n := range []string{"さくら", "ann", "bob"} {
		vp := desktop
		switch n {
		case "ann":
			vp = wideDesktop
		case "bob":
			vp = bigPhone
		}
		tb := b.newTab(n, vp)
		tb.open(srv.url("/"))
		tb.join(n, room)
		tabs[n] = tb
	}
	tabs["ann"].waitMembers("さくら", "ann", "bob")
	conversation := []struct{ who, text string }{
		{"さくら", "おはようございます！☀️ 今日のミーティングは10時からです"},
		{"ann", "Morning! I'll bring the slides 📊"},
		{"bob", "Running 5 min late 🚃 — start without me"},
		{"さくら", "了解です 👍 資料は共有フォルダにあります"},
		{"ann", "日本語も絵文字もきれいに表示されますね 🍣🍵🇯🇵"},
		{"bob", "On my phone too 📱 (and 👨‍👩‍👧 survives)"},
		{"ann", "See you at 10 👋"},
	}
	for _, m := range conversation {
		tabs[m.who].say(m.text)
	}
	last := conversation[len(conversation)-1]
	for _, n := range []string{"ann", "bob"} {
		if n != last.who {
			tabs[n].waitMessage(last.who, last.text)
		}
	}
	shot, err := sideBySide(tabs["ann"].screenshot(), tabs["bob"].screenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(shot))
}
