package e2e

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// Two tabs chat through examples/chat: what one types appears in the other,
// Japanese text and emoji included, each tab setting its own messages apart.
func TestBrowserChat(t *testing.T) {
	b := newBrowser(t)
	srv := startChat(t)
	const room = "雑談" // a Unicode room name, in the path of the WebSocket

	ann := b.newTab("ann", desktop)
	ann.open(srv.url("/"))
	ann.join("ann", room)
	bob := b.newTab("bob", phone)
	bob.open(srv.url("/"))
	bob.join("bob", room)
	ann.waitMembers("ann", "bob")
	ann.waitNotice("join", "bob joined")
	bob.waitMembers("ann", "bob")

	conversation := []line{
		{Nickname: "ann", Text: "Hi bob! Does the new chat page work for you?"},
		{Nickname: "bob", Text: "はい、ちゃんと動いています！🎉"},
		{Nickname: "ann", Text: "日本語も絵文字も大丈夫ですね 🍣🍵🇯🇵"},
		{Nickname: "bob", Text: "Even on my phone 📱 (and 👨‍👩‍👧 survives too)"},
		{Nickname: "ann", Text: "Great, see you at 3 👋"},
	}
	tabs := map[string]*tab{"ann": ann, "bob": bob}
	for _, m := range conversation {
		tabs[m.Nickname].say(m.Text)
		for name, other := range tabs {
			if name != m.Nickname {
				other.waitMessage(m.Nickname, m.Text)
			}
		}
	}

	// Both show the whole conversation once, in order, their own messages
	// set apart.
	for name, tb := range tabs {
		var want []line
		for _, m := range conversation {
			want = append(want, line{Kind: "message", Nickname: m.Nickname, Text: m.Text, Mine: m.Nickname == name})
		}
		if diff := cmp.Diff(want, tb.state().messages()); diff != "" {
			t.Errorf("%s's messages (-want +got):\n%s", name, diff)
		}
	}
}

// The member list follows joins and leaves: a tab that joins, a tab that
// is closed, a user who presses the page's leave button. A member of
// another room never appears. On a phone the list is a drawer.
func TestBrowserMembers(t *testing.T) {
	b := newBrowser(t)
	srv := startChat(t)
	const room = "members"

	ann := b.newTab("ann", desktop)
	ann.open(srv.url("/"))
	ann.join("ann", room)
	ann.waitMembers("ann")

	bob := b.newTab("bob", phone)
	bob.open(srv.url("/"))
	bob.join("bob", room)
	ann.waitMembers("ann", "bob")
	ann.waitNotice("join", "bob joined")
	bob.waitMembers("ann", "bob")

	// On a wide screen the list is a sidebar; on a phone it is a drawer
	// that the 👥 button opens, and nothing is wider than the screen.
	ann.do("see the sidebar", chromedp.WaitVisible(chromedp.ID("members-panel")), chromedp.WaitNotVisible(chromedp.ID("members-toggle")))
	bob.do("open the drawer",
		chromedp.WaitNotVisible(chromedp.ID("members-panel")),
		chromedp.Click(chromedp.ID("members-toggle")),
		chromedp.WaitVisible(chromedp.ID("members-panel")),
	)
	for _, tb := range []*tab{ann, bob} {
		if w := eval[[]int](tb, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
			t.Errorf("%s: the page is %dpx wide on a %dpx screen", tb.name, w[0], w[1])
		}
	}

	// Closing the tab closes its connection.
	bob.close()
	ann.waitMembers("ann")
	ann.waitNotice("leave", "bob left")

	carol := b.newTab("carol", phone)
	carol.open(srv.url("/"))
	carol.join("carol", room)
	ann.waitMembers("ann", "carol")
	carol.do("leave", chromedp.Click(chromedp.ID("leave")), chromedp.WaitVisible(chromedp.ID("join-form")))
	ann.waitMembers("ann")
	ann.waitNotice("leave", "carol left")

	// Dave is in another room. Had his join reached ann's room, it would
	// come before erin's, who joins after him.
	dave := b.newTab("dave", phone)
	dave.open(srv.url("/"))
	dave.join("dave", "elsewhere")
	dave.waitMembers("dave")
	erin := b.newTab("erin", phone)
	erin.open(srv.url("/"))
	erin.join("erin", room)
	ann.waitMembers("ann", "erin")
	erin.waitMembers("ann", "erin")
	if got := ann.state().Members; !cmp.Equal(got, []string{"ann", "erin"}) {
		t.Errorf("ann's members = %q", got)
	}
}

// Markup in messages and nicknames is shown as text and never runs: no
// element is created from it, the page's variables stay untouched, and the
// Content-Security-Policy (a second line of defence) is never even tested.
func TestBrowserNoScriptInjection(t *testing.T) {
	b := newBrowser(t)
	srv := startChat(t)
	const room, mallory = "xss", `<img src=x onerror=window.__pwned=1>`
	payloads := []string{
		`<script>window.__pwned = "script"</script>`,
		`<img src=x onerror="window.__pwned = 'img'">`,
		`<svg onload="window.__pwned = 'svg'"><circle r="9"/></svg>`,
		`"><iframe srcdoc="<script>parent.__pwned = 'iframe'</script>"></iframe>`,
		`<a href="javascript:window.__pwned = 'link'">click me</a>`,
		`&lt;b&gt;entities stay as typed&lt;/b&gt; &amp;`,
	}

	ann := b.newTab("ann", desktop)
	ann.open(srv.url("/"))
	mal := b.newTab("mallory", phone)
	mal.open(srv.url("/"))
	tabs := []*tab{ann, mal}
	for _, tb := range tabs {
		tb.do("watch for policy violations", chromedp.Evaluate[chromedp.Void](`
			window.__violations = [];
			document.addEventListener("securitypolicyviolation",
				(e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));`))
	}
	ann.join("ann", room)
	mal.join(mallory, room)
	ann.waitMembers("ann", mallory)
	ann.waitNotice("join", mallory+" joined")

	for _, p := range payloads {
		mal.say(p)
		ann.waitMessage(mallory, p)
	}
	ann.say("nice try")
	mal.waitMessage("ann", "nice try")

	for _, tb := range tabs {
		var want []line
		for _, p := range payloads {
			want = append(want, line{Kind: "message", Nickname: mallory, Text: p, Mine: tb == mal})
		}
		want = append(want, line{Kind: "message", Nickname: "ann", Text: "nice try", Mine: tb == ann})
		if diff := cmp.Diff(want, tb.state().messages()); diff != "" {
			t.Errorf("%s's messages (-want +got):\n%s", tb.name, diff)
		}
		if n := eval[int](tb, `document.querySelectorAll("#messages :is(img, script, svg, iframe, a), #members :is(img, script)").length`); n != 0 {
			t.Errorf("%s: %d elements were made from the messages", tb.name, n)
		}
		if pwned := eval[string](tb, `String(window.__pwned)`); pwned != "undefined" {
			t.Errorf("%s: a payload ran: window.__pwned = %s", tb.name, pwned)
		}
		if v := eval[[]string](tb, `window.__violations`); len(v) != 0 {
			t.Errorf("%s: the page tried to run something the policy blocked: %q", tb.name, v)
		}
	}
}

// The page loses its connection while the server stays up, and cannot get
// back at once (the gate between it and the server is closed). Meanwhile
// another user sends messages. When the gate opens, the page reconnects by
// itself with ?since=<the last id it saw> and shows exactly what it
// missed: each message once, in order, with no "truncated" notice.
func TestBrowserResumeAfterConnectionDrop(t *testing.T) {
	pr := startPair(t, "resume", "before the drop")
	g, ann, bob, sockets, seen := pr.gate, pr.ann, pr.bob, pr.sockets, pr.seen

	g.setOpen(false)
	g.drop()
	ann.waitFor("reconnecting", `document.getElementById("status").dataset.state === "reconnecting"`)
	ann.waitNotice("status", "Connection lost. Reconnecting…")
	bob.waitNotice("leave", "ann left")
	bob.waitMembers("bob")

	missed := []string{"you missed this", "and this 🙈 見逃しましたか？"}
	for _, m := range missed {
		bob.say(m)
	}
	if st := ann.state(); st.State == "connected" || len(st.messages()) != 1 {
		t.Fatalf("ann got back through a closed gate: %+v", st)
	}

	g.setOpen(true)
	ann.waitNotice("status", "Reconnected")
	ann.waitConnected()
	ann.waitMembers("bob", "ann")
	bob.waitFor("ann joined again", countNoticesJS("join", "ann joined")+" === 2")

	st := ann.state()
	want := []line{{Kind: "message", Nickname: "bob", Text: "before the drop"}}
	for _, m := range missed {
		want = append(want, line{Kind: "message", Nickname: "bob", Text: m})
	}
	if diff := cmp.Diff(want, st.messages()); diff != "" {
		t.Errorf("ann's messages after the reconnect (-want +got):\n%s", diff)
	}
	if n := st.count("truncated"); n != 0 {
		t.Errorf("ann was told %d times that history was lost; nothing was", n)
	}
	checkResumed(t, sockets, seen)
}

// The server is killed and started again on the same port. The page
// reconnects by itself and shows the messages sent after the restart while
// it was still away (the gate keeps it away until they are sent), after a
// notice that older history is gone: the server keeps history in memory, so
// whatever was said while it was down, or before, is lost with it.
func TestBrowserReconnectAfterServerRestart(t *testing.T) {
	pr := startPair(t, "restart", "before the restart")
	srv, g, ann, bob, sockets, seen := pr.srv, pr.gate, pr.ann, pr.bob, pr.sockets, pr.seen

	g.setOpen(false)
	srv.restart()
	ann.waitFor("reconnecting", `document.getElementById("status").dataset.state === "reconnecting"`)

	// Bob's page, which talks to the server directly, gets back first.
	bob.waitNotice("status", "Reconnected")
	bob.waitConnected()
	bob.waitMembers("bob")
	missed := []string{"the server restarted", "did you miss me? 再起動しました 🔄"}
	for _, m := range missed {
		bob.say(m)
	}
	if st := ann.state(); st.State == "connected" || len(st.messages()) != 1 {
		t.Fatalf("ann got back through a closed gate: %+v", st)
	}

	g.setOpen(true)
	ann.waitNotice("status", "Reconnected")
	ann.waitConnected()
	ann.waitMembers("bob", "ann")

	st := ann.state()
	want := []line{{Kind: "message", Nickname: "bob", Text: "before the restart"}}
	for _, m := range missed {
		want = append(want, line{Kind: "message", Nickname: "bob", Text: m})
	}
	if diff := cmp.Diff(want, st.messages()); diff != "" {
		t.Errorf("ann's messages after the restart (-want +got):\n%s", diff)
	}
	if n := st.count("truncated"); n != 1 {
		t.Errorf("ann was told %d times that history was lost, want once", n)
	}
	checkResumed(t, sockets, seen)
}

// pair is the opening of the reconnect tests: ann's tab reaches the chat
// through a gate the test can close, bob's directly; both have joined room,
// and ann has seen bob's first message, whose ID is seen.
type pair struct {
	srv      *chatServer
	gate     *gate
	ann, bob *tab
	sockets  webSockets // ann's WebSockets, as the browser records them
	seen     uint64
}

func startPair(t *testing.T, room, first string) pair {
	t.Helper()
	return startPairWith(t, room, first, inMemory...)
}

// startPairWith is startPair on examples/chat run with those flags (but
// -addr).
func startPairWith(t *testing.T, room, first string, args ...string) pair {
	t.Helper()
	b := newBrowser(t)
	srv := startChatWith(t, args...)
	g := newGate(t, srv.addr)

	ann := b.newTab("ann", desktop)
	sockets := ann.webSockets(testTimeout)
	ann.open(g.url("/"))
	ann.join("ann", room)
	bob := b.newTab("bob", phone)
	bob.open(srv.url("/"))
	bob.join("bob", room)
	ann.waitMembers("ann", "bob")
	bob.say(first)
	ann.waitMessage("bob", first)
	return pair{srv: srv, gate: g, ann: ann, bob: bob, sockets: sockets, seen: ann.lastMessageID()}
}

// checkResumed checks, from the browser's own record of the WebSockets the
// page opened, that it first joined without since and then reconnected with
// since at least the ID of the last message it had shown.
func checkResumed(t *testing.T, sockets webSockets, seen uint64) {
	t.Helper()
	var urls []string
	for ev, err := range sockets {
		if err != nil {
			t.Fatalf("no reconnect with since among the WebSockets %q: %v", urls, err)
		}
		urls = append(urls, ev.URL)
		u, err := url.Parse(ev.URL)
		if err != nil {
			t.Fatal(err)
		}
		since := u.Query().Get("since")
		if len(urls) == 1 {
			if since != "" {
				t.Errorf("the first connection %s resumes", ev.URL)
			}
			continue
		}
		n, err := strconv.ParseUint(since, 10, 64)
		if err != nil || n < seen {
			t.Errorf("reconnected with %s, want since >= %d", ev.URL, seen)
		}
		return
	}
}
