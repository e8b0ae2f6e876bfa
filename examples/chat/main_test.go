package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

// example is one run of the example on a loopback port.
type example struct {
	*servetest.Server[string]
	// chat connects the kit's clients to the example's WebSocket endpoints.
	// They refuse a frame with a field a Message does not have.
	chat *chatroomtest.Server
}

// start runs the example with args on 127.0.0.1:0 and stops it when the test
// ends.
func start(t *testing.T, args ...string) *example {
	t.Helper()
	// A database of the test's own unless args give -db.
	args = append([]string{"-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "chat.db")}, args...)
	s := servetest.Start(t, run, args...)
	return &example{Server: s, chat: chatroomtest.Remote(t, "ws://"+s.Ready, chatroomtest.DisallowUnknownFields())}
}

// get fetches a path of the server.
func (s *example) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.Ready+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return servetest.Do(t, req)
}

// tutorial connects nickname ("": none) to the tutorial's room, /chat.
func (s *example) tutorial(nickname string) *chatroomtest.Client {
	return s.chat.Connect(nickname, chatroomtest.Path("/chat"))
}

// join connects nickname to a room of the page, resuming after since if it
// is not empty.
func (s *example) join(room, nickname, since string) *chatroomtest.Client {
	opts := []chatroomtest.Option{chatroomtest.Path("/rooms/" + url.PathEscape(room) + "/chat")}
	if since != "" {
		opts = append(opts, chatroomtest.Query("since", since))
	}
	return s.chat.Connect(nickname, opts...)
}

// want reads len(frames) frames and compares them with frames, but for
// their IDs and times, which the room stamps from its clock. It checks
// those instead: every frame has both, and IDs increase, but for a
// truncated notice, which takes a new ID before the replayed frames that
// keep theirs (PROTOCOL.md, section 5). It returns the frames read.
func want(t *testing.T, c *chatroomtest.Client, frames ...chatroom.Message) []chatroom.Message {
	t.Helper()
	got := make([]chatroom.Message, len(frames))
	var prev uint64
	for i := range got {
		got[i] = c.Next()
		if got[i].ID == 0 || got[i].Time.IsZero() {
			t.Fatalf("frame %d, %+v, has no id or time", i, got[i])
		}
		// PROTOCOL.md: room frames take increasing IDs; a frame for some
		// members carries the last room frame's; a truncated notice comes
		// before the history it announces.
		switch got[i].Type {
		case chatroom.TypeTruncated:
			continue
		case chatroom.TypeMembers, chatroom.TypeError, chatroom.TypeDirect:
			if got[i].ID < prev {
				t.Fatalf("frame %d (%s) has id %d before %d", i, got[i].Type, got[i].ID, prev)
			}
		default:
			if got[i].ID <= prev {
				t.Fatalf("frame %d has id %d after %d", i, got[i].ID, prev)
			}
		}
		prev = got[i].ID
	}
	if diff := cmp.Diff(frames, got, cmpopts.IgnoreFields(chatroom.Message{}, "ID", "Time"), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("frames (-want +got):\n%s", diff)
	}
	return got
}

// members is the members frame of the page's rooms, which announce their
// rate limit (the defaults of -rate and -burst).
func members(names ...string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeMembers, Members: names, Rate: &chatroom.RateLimit{PerSecond: 10, Burst: 20}}
}

func joined(name string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeJoin, Nickname: name}
}

func left(name string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeLeave, Nickname: name}
}

func message(name, text string) chatroom.Message {
	return chatroom.Message{Type: chatroom.TypeMessage, Nickname: name, Text: text}
}

func TestPage(t *testing.T) {
	s := start(t)

	resp, page := s.get(t, "/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, ref := range []string{`src="/static/app.js"`, `href="/static/style.css"`, `id="messages"`, `id="members"`, `id="status"`} {
		if !bytes.Contains(page, []byte(ref)) {
			t.Errorf("the page has no %s", ref)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	for path, typ := range map[string]string{
		"/static/app.js":      "text/javascript",
		"/static/style.css":   "text/css",
		"/static/favicon.svg": "image/svg+xml",
	} {
		resp, body := s.get(t, path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) || len(body) == 0 {
			t.Errorf("GET %s = %d %q, %d bytes; want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), typ)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", path)
		}
	}

	// The page renders what it receives as text: it has no way to parse it
	// as HTML.
	_, js := s.get(t, "/static/app.js")
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if bytes.Contains(js, []byte(sink)) {
			t.Errorf("app.js uses %s", sink)
		}
	}

	for _, path := range []string{"/nope", "/static/nope.js", "/static/index.html", "/static/", "/index.html"} {
		if resp, _ := s.get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}

// The tutorial's endpoint speaks the default protocol, byte for byte.
func TestTutorialEndpoint(t *testing.T) {
	s := start(t)
	sei := s.tutorial("sei")
	sei.Send("hello")
	if diff := cmp.Diff(`{"nickname":"sei","message":"hello"}`, sei.NextRaw()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	anon := s.tutorial("")
	anon.Send("hi")
	for _, c := range []*chatroomtest.Client{sei, anon} {
		if diff := cmp.Diff(`{"nickname":"unknown_127.0.0.1","message":"hi"}`, c.NextRaw()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestRoomChat(t *testing.T) {
	s := start(t)
	ann := s.join("lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	bob := s.join("lobby", "bob", "")
	want(t, bob, joined("ann"), members("ann", "bob"), joined("bob")) // the history, then the list
	want(t, ann, joined("bob"))

	const japanese = "こんにちは、世界 🌏🎉 日本語もOK"
	ann.Send(japanese)
	if raw := bob.NextRaw(); !strings.Contains(raw, `"message":"`+japanese+`"`) {
		t.Errorf("frame %s does not carry the text as UTF-8", raw)
	}
	want(t, ann, message("ann", japanese))

	// Markup is only text: the page must render it so.
	const markup = `<script>alert(1)</script><img src=x onerror="alert(2)">`
	bob.Send(markup)
	for _, c := range []*chatroomtest.Client{ann, bob} {
		want(t, c, message("bob", markup))
	}

	bob.Close()
	want(t, ann, left("bob"))
}

func TestRoomsAreIsolated(t *testing.T) {
	s := start(t)
	ann := s.join("lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	ann.Send("only for the lobby")
	want(t, ann, message("ann", "only for the lobby"))

	// Had the lobby's message leaked, it would come before cat's own: it
	// was sent first.
	cat := s.join("台所", "cat", "")
	cat.Send("only for the kitchen")
	want(t, cat, members("cat"), joined("cat"), message("cat", "only for the kitchen"))

	tutorial := s.tutorial("tut")
	tutorial.Send("only for /chat")
	if got := tutorial.NextRaw(); got != `{"nickname":"tut","message":"only for /chat"}` {
		t.Errorf("/chat read %s", got)
	}

	ann.Send("still only the lobby")
	want(t, ann, message("ann", "still only the lobby"))

	if resp, body := s.get(t, "/rooms/no%20spaces/chat"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("invalid room name: %d %s, want 400", resp.StatusCode, body)
	}
}

func TestHistoryResume(t *testing.T) {
	s := start(t, "-history", "50")
	ann := s.join("lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	bob := s.join("lobby", "bob", "")
	want(t, bob, joined("ann"), members("ann", "bob"), joined("bob")) // the history, then the list
	want(t, ann, joined("bob"))

	ann.Send("one")
	want(t, ann, message("ann", "one"))
	last := want(t, bob, message("ann", "one"))[0].ID

	// Bob goes away; ann talks on.
	bob.Close()
	want(t, ann, left("bob"))
	ann.Send("two")
	ann.Send("three 🍣")
	missed := want(t, ann, message("ann", "two"), message("ann", "three 🍣"))

	// Bob resumes: exactly what he missed, with the IDs ann saw, then the
	// member list and his join.
	bob = s.join("lobby", "bob", strconv.FormatUint(last, 10))
	got := want(t, bob, left("bob"), message("ann", "two"), message("ann", "three 🍣"), members("ann", "bob"), joined("bob"))
	if diff := cmp.Diff(missed, got[1:3]); diff != "" {
		t.Errorf("replayed frames differ from the live ones (-live +replayed):\n%s", diff)
	}
	want(t, ann, joined("bob"))

	// A newcomer gets the whole history; a client that resumes from an ID
	// this room never gave (a server restart) is told that some is gone.
	history := []chatroom.Message{
		joined("ann"), joined("bob"), message("ann", "one"), left("bob"),
		message("ann", "two"), message("ann", "three 🍣"), joined("bob"),
	}
	cat := s.join("lobby", "cat", "")
	want(t, cat, append(history, members("ann", "bob", "cat"), joined("cat"))...)
	dan := s.join("lobby", "dan", "1")
	truncated := chatroom.Message{Type: chatroom.TypeTruncated}
	want(t, dan, append(append([]chatroom.Message{truncated}, history...),
		joined("cat"), members("ann", "bob", "cat", "dan"), joined("dan"))...)
}

func TestHistoryFlag(t *testing.T) {
	for _, tt := range []struct {
		history string
		replay  []chatroom.Message
	}{
		{"2", []chatroom.Message{message("ann", "b"), message("ann", "c")}},
		{"0", nil},
	} {
		t.Run("history="+tt.history, func(t *testing.T) {
			s := start(t, "-history", tt.history)
			ann := s.join("lobby", "ann", "")
			want(t, ann, members("ann"), joined("ann"))
			for _, text := range []string{"a", "b", "c"} {
				ann.Send(text)
				want(t, ann, message("ann", text))
			}
			bob := s.join("lobby", "bob", "")
			want(t, bob, append(tt.replay, members("ann", "bob"), joined("bob"))...)
		})
	}
}

// SIGINT's path: the context ends, every member gets 1001, run returns nil.
func TestShutdown(t *testing.T) {
	s := start(t)
	ann := s.join("lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	sei := s.tutorial("sei")
	sei.Send("hello")
	sei.NextRaw()

	if err := s.Stop(); err != nil {
		t.Fatalf("run = %v, want nil after a clean shutdown", err)
	}
	ann.ExpectCloseReason(websocket.StatusGoingAway, "room closed")
	sei.ExpectCloseReason(websocket.StatusGoingAway, "room closed")
}

// The server closes idle keep-alive connections after -idle-timeout, while
// members of both kinds of room outlive -read-timeout and -write-timeout:
// those bound ordinary requests, not WebSockets.
func TestTimeouts(t *testing.T) {
	limits := servetest.Short()
	s := start(t, servetest.Args(limits)...)
	joinedAt := time.Now()
	ann := s.join("lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	tut := s.tutorial("tut")

	t.Log(servetest.ExpectIdleClosed(t, s.Ready, "/", 200, limits.IdleTimeout))

	servetest.ExpectOutlived(t, limits, joinedAt)
	ann.Send("still here")
	want(t, ann, message("ann", "still here"))
	tut.Send("me too")
	if got := tut.NextRaw(); got != `{"nickname":"tut","message":"me too"}` {
		t.Errorf("/chat read %s", got)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-history", "-1"}, {"-history", "many"}, {"extra"}, {"-idle-timeout", "0s"}, {"-max-header-bytes", "-1"}} {
		if err := run(context.Background(), args, io.Discard, nil); err == nil {
			t.Errorf("run accepted %q", args)
		}
	}
}

func TestDisplayAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"[::]:8000", "localhost:8000"},
		{"0.0.0.0:8000", "localhost:8000"},
		{"127.0.0.1:8000", "127.0.0.1:8000"},
		{"nonsense", "nonsense"},
	} {
		if got := displayAddr(fakeAddr(tt.in)); got != tt.want {
			t.Errorf("displayAddr(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// The page's rooms keep their history in -db: after a restart a joiner gets
// it, a client resumes from an ID from before the restart with exactly what
// it missed, and scrolls back. With -db "" the history is gone.
func TestHistoryAcrossRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "chat.db")
	s := start(t, "-db", db)
	ann := s.join("lobby", "ann", "")
	want(t, ann, members("ann"), joined("ann"))
	ann.Send("one")
	last := want(t, ann, message("ann", "one"))[0].ID
	ann.Send("two")
	want(t, ann, message("ann", "two"))
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	s = start(t, "-db", db)
	bob := s.join("lobby", "bob", strconv.FormatUint(last, 10))
	want(t, bob, message("ann", "two"), members("bob"), joined("bob"))
	cat := s.join("lobby", "cat", "")
	want(t, cat, joined("ann"), message("ann", "one"), message("ann", "two"), joined("bob"), members("bob", "cat"), joined("cat"))

	s = start(t, "-db", "")
	dan := s.join("lobby", "dan", "")
	want(t, dan, members("dan"), joined("dan"))
}

// metrics fetches /metrics of the server at addr.
func metrics(t *testing.T, addr string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := servetest.Do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	return string(body)
}

// The example serves the chat and, at /metrics, what its rooms counted.
func TestMetrics(t *testing.T) {
	s := servetest.Start(t, run, "-addr", "127.0.0.1:0")
	chat := chatroomtest.Remote(t, "ws://"+s.Ready, chatroomtest.Path("/rooms/lobby/chat"), chatroomtest.IgnoreIDAndTime())
	ann := chat.Connect("ann")
	ann.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeMembers })
	ann.Send("hello")
	ann.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeMessage })

	body := metrics(t, s.Ready)
	for _, want := range []string{
		"chatroom_rooms 2\n", // the tutorial's room and the lobby
		"chatroom_connections 1\n",
		"chatroom_connects_total 1\n",
		"chatroom_messages_received_total 1\n",
		`chatroom_disconnects_total{reason="slow"} 0` + "\n",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
