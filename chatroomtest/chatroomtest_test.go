package chatroomtest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// short is the timeout of tests that check what happens when a wait fails:
// they wait it out, so it is brief. No passing check waits for it.
const short = 250 * time.Millisecond

func msg(nickname, text string) chatroom.Message {
	return chatroom.Message{Nickname: nickname, Text: text}
}

func TestSendAndExpect(t *testing.T) {
	srv := chatroomtest.NewServer(t, chatroom.New())
	ann := srv.Connect("ann")
	bob := srv.Connect("bob")
	if ann.Nickname() != "ann" {
		t.Errorf("Nickname() = %q, want ann", ann.Nickname())
	}

	ann.Send(`say "hi" <b>`)
	if !ann.Expect(msg("ann", `say "hi" <b>`)) {
		t.Error("Expect reported a mismatch")
	}
	if got, want := bob.NextRaw(), `{"nickname":"ann","message":"say \"hi\" <b>"}`; got != want {
		t.Errorf("NextRaw() = %s, want %s", got, want)
	}

	bob.Send("one")
	bob.Send("two")
	for _, c := range []*chatroomtest.Client{ann, bob} {
		c.Expect(msg("bob", "one"), msg("bob", "two"))
	}
	ann.Send("three")
	if got := bob.Next(); got.Nickname != "ann" || got.Text != "three" || got.Type != "" {
		t.Errorf("Next() = %+v, want ann's three", got)
	}
}

func TestConnectWithoutNickname(t *testing.T) {
	srv := chatroomtest.NewServer(t, chatroom.New())
	c := srv.Connect("")
	c.Send("who am I?")
	if got := c.Next().Nickname; got != "unknown_127.0.0.1" && got != "unknown_::1" {
		t.Errorf("nickname = %q, want unknown_{loopback}", got)
	}
}

// A mismatch is reported with Errorf as a go-cmp diff under a header that
// names the client, and the test goes on.
func TestExpectMismatchReportsDiff(t *testing.T) {
	f := newFakeTB(t)
	room := chatroom.New(chatroom.OnMessage(func(_ context.Context, _ *chatroom.Member, m chatroom.Message) (chatroom.Message, error) {
		m.Text = strings.ToUpper(m.Text)
		return m, nil
	}))
	srv := chatroomtest.NewServer(f, room)
	ann := srv.Connect("ann")
	bob := srv.Connect("bob")
	ann.Send("hello")
	ann.Send("world")

	var ok bool
	if !f.do(func() { ok = bob.Expect(msg("ann", "hello"), msg("ann", "WORLD")) }) {
		t.Fatal("Expect called Fatalf")
	}
	if ok {
		t.Error("Expect = true, want false")
	}
	report := f.wantFailure("Errorf", `chatroomtest: client "bob": Expect: unexpected frames (-want +got):`, "[]chatroom.Message{")
	var minus, plus bool
	for _, line := range strings.Split(report, "\n") {
		minus = minus || strings.HasPrefix(line, "-") && strings.Contains(line, `"hello"`)
		plus = plus || strings.HasPrefix(line, "+") && strings.Contains(line, `"HELLO"`)
		if strings.Contains(line, "WORLD") && strings.ContainsAny(line[:1], "-+") {
			t.Errorf("the diff marks the matching frame: %q", line)
		}
	}
	if !minus || !plus {
		t.Errorf("the diff lacks a -want or +got line for the text:\n%s", report)
	}
	t.Logf("the report reads:\n%s", report)

	// The frames were consumed: the next Expect sees what comes next.
	ann.Send("again")
	f.do(func() { bob.Expect(msg("ann", "AGAIN")) })
	f.wantNoFailure()
}

func TestExpectTimeout(t *testing.T) {
	f := newFakeTB(t)
	srv := chatroomtest.NewServer(f, chatroom.New(), chatroomtest.Timeout(short))
	ann := srv.Connect("ann")
	ann.Send("only one")

	after := false
	if f.do(func() { ann.Expect(msg("ann", "only one"), msg("ann", "two")); after = true }) || after {
		t.Fatal("Expect returned after a timeout, want Fatalf")
	}
	f.wantFailure("Fatalf",
		`chatroomtest: client "ann": Expect: frame 2 of 2: nothing received within 250ms`,
		"frames received (-want +got):", `"two"`)

	f.do(func() { ann.Next() })
	f.wantFailure("Fatalf", `client "ann": Next: nothing received within 250ms`)
	f.do(func() { ann.NextRaw() })
	f.wantFailure("Fatalf", `client "ann": NextRaw: nothing received within 250ms`)
}

// Once the connection has ended, reads fail at once, saying how it ended.
func TestReadAfterServerClosed(t *testing.T) {
	f := newFakeTB(t)
	srv := chatroomtest.NewServer(f, chatroom.New())
	ann := srv.Connect("ann")
	srv.Close()
	srv.Close() // a no-op
	const closed = `the connection was closed with status 1001 (StatusGoingAway) "room closed"`
	f.do(func() { ann.Expect(msg("x", "y")) })
	f.wantFailure("Fatalf", `client "ann": Expect: frame 1 of 1: `+closed)
	f.do(func() { ann.Next() })
	f.wantFailure("Fatalf", `client "ann": Next: `+closed)
	f.do(func() { ann.Send("hi") })
	f.wantFailure("Fatalf", `client "ann": Send:`)
	f.do(func() { ann.Sync() })
	f.wantFailure("Fatalf", `client "ann": Sync:`)
	if !f.do(func() { ann.ExpectClose(websocket.StatusGoingAway) }) {
		t.Error("ExpectClose failed")
	}
	ann.Close() // the connection has ended: nothing to do
	f.wantNoFailure()

	if _, _, err := srv.Dial("bob"); err == nil || !strings.Contains(err.Error(), "server is closed") {
		t.Errorf("Dial after Close: %v, want an error", err)
	}
	f.do(func() { srv.Connect("bob") })
	f.wantFailure("Fatalf", "chatroomtest: Connect: chatroomtest: the server is closed")
}

// A handler other than a Room: frames that are not chat messages fail Next.
func TestUndecodableFrames(t *testing.T) {
	f := newFakeTB(t)
	h := wsHandler(t, func(_ *http.Request, conn *websocket.Conn) {
		ctx := context.Background()
		_ = conn.Write(ctx, websocket.MessageText, []byte("not JSON"))
		_ = conn.Write(ctx, websocket.MessageBinary, []byte{1, 2})
		_ = conn.Write(ctx, websocket.MessageBinary, []byte{3})
		_, _, _ = conn.Read(ctx) // until the client goes
	})
	// The handler serves the connection in ServeHTTP: Connect must not wait
	// for it to return.
	srv := chatroomtest.NewServer(f, h, chatroomtest.NoJoinWait())
	c := srv.Connect("ann")
	f.do(func() { c.Next() })
	f.wantFailure("Fatalf", `client "ann": Next: frame not JSON: invalid character`)
	f.do(func() { c.NextRaw() })
	f.wantFailure("Fatalf", `client "ann": NextRaw: received (MessageBinary frame of 2 bytes), want a text frame`)
	f.do(func() { c.Expect(msg("a", "b")) })
	f.wantFailure("Fatalf", `client "ann": Expect: frame 1 of 1: received (MessageBinary frame of 1 bytes), want a text frame`)
}

func TestIgnoreIDAndTime(t *testing.T) {
	f := newFakeTB(t)
	room := chatroom.New(chatroom.WithNotices())
	srv := chatroomtest.NewServer(f, room)
	strict := srv.Connect("strict")
	lenient := srv.Connect("lenient", chatroomtest.IgnoreIDAndTime())

	join := chatroom.Message{Type: chatroom.TypeJoin, Nickname: "lenient"}
	f.do(func() { strict.Expect(chatroom.Message{Type: chatroom.TypeJoin, Nickname: "strict"}, join) })
	f.wantFailure("Errorf", "ID:", "Time:")
	f.do(func() { lenient.Expect(join) })
	f.wantNoFailure()

	// Compare takes any go-cmp option, in addition.
	other := srv.Connect("other", chatroomtest.IgnoreIDAndTime(), chatroomtest.Compare(cmpopts.IgnoreFields(chatroom.Message{}, "Nickname")))
	other.Expect(chatroom.Message{Type: chatroom.TypeJoin, Nickname: "someone"})
	f.wantNoFailure()
}

// With chatroom.WithClock every field is reproducible.
func TestWithClock(t *testing.T) {
	epoch := time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.UTC)
	room := chatroom.New(chatroom.WithPresence(), chatroom.WithClock(func() time.Time { return epoch }))
	srv := chatroomtest.NewServer(t, room)
	ann := srv.Connect("ann")
	// The ID before the first: the clock in milliseconds times 1024, plus
	// the tag of an unnamed room (805). The member list, a frame for one
	// member, carries it; the join notice, a room frame, takes the first.
	before := uint64(epoch.UnixMilli())*1024 + 805
	stamp := epoch.Truncate(time.Millisecond) // the wire keeps milliseconds
	ann.Expect(
		chatroom.Message{Type: chatroom.TypeMembers, ID: before, Time: stamp, Members: []string{"ann"}},
		chatroom.Message{Type: chatroom.TypeJoin, ID: before + 1024, Time: stamp, Nickname: "ann"},
	)
}

func TestExpectClose(t *testing.T) {
	t.Run("match", func(t *testing.T) {
		srv := chatroomtest.NewServer(t, chatroom.New())
		c := srv.Connect("ann")
		c.SendRaw(websocket.MessageText, []byte(`{"message":1}`))
		if !c.ExpectCloseReason(websocket.StatusInvalidFramePayloadData, `expected {"message": string}`) {
			t.Error("ExpectCloseReason = false")
		}
		d := srv.Connect("bob")
		d.SendRaw(websocket.MessageBinary, []byte("hi"))
		if !d.ExpectClose(websocket.StatusUnsupportedData) {
			t.Error("ExpectClose = false")
		}
	})
	t.Run("wrong code or reason", func(t *testing.T) {
		f := newFakeTB(t)
		srv := chatroomtest.NewServer(f, chatroom.New())
		c := srv.Connect("ann")
		c.SendRaw(websocket.MessageText, []byte("{"))
		var ok bool
		f.do(func() { ok = c.ExpectClose(websocket.StatusPolicyViolation) })
		f.wantFailure("Errorf", `client "ann": ExpectClose: the connection was closed with status 1007 (StatusInvalidFramePayloadData) "invalid JSON"; want close status 1008 (StatusPolicyViolation)`)
		if ok {
			t.Error("ExpectClose = true, want false")
		}
		// The close stays: it can be checked again.
		f.do(func() { ok = c.ExpectCloseReason(websocket.StatusInvalidFramePayloadData, "bad JSON") })
		f.wantFailure("Errorf", `want close status 1007 (StatusInvalidFramePayloadData) "bad JSON"`)
		f.do(func() { ok = c.ExpectClose(-1) })
		f.wantFailure("Errorf", `want the connection to end without a close frame`)
		if ok {
			t.Error("ExpectClose = true, want false")
		}
	})
	t.Run("frames before the close", func(t *testing.T) {
		f := newFakeTB(t)
		srv := chatroomtest.NewServer(f, chatroom.New())
		c := srv.Connect("ann")
		c.Send("hi")
		c.SendRaw(websocket.MessageText, []byte("{"))
		var ok bool
		f.do(func() { ok = c.ExpectClose(websocket.StatusInvalidFramePayloadData) })
		f.wantFailure("Errorf", `client "ann": ExpectClose: unexpected frames before the close; received 1 frame(s):`+"\n\t"+`{"nickname":"ann","message":"hi"}`)
		if ok {
			t.Error("ExpectClose = true, want false")
		}
	})
	t.Run("still open", func(t *testing.T) {
		f := newFakeTB(t)
		srv := chatroomtest.NewServer(f, chatroom.New(), chatroomtest.Timeout(short))
		c := srv.Connect("ann")
		c.Send("hi")
		f.do(func() { c.ExpectClose(websocket.StatusNormalClosure) })
		f.wantFailure("Fatalf", `client "ann": ExpectClose: the connection is still open after 250ms; received 1 frame(s):`)
	})
	t.Run("no close frame", func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if conn, err := websocket.Accept(w, r, nil); err == nil {
				_ = conn.CloseNow()
			}
		})
		srv := chatroomtest.NewServer(t, h)
		if !srv.Connect("ann").ExpectClose(-1) {
			t.Error("ExpectClose(-1) = false")
		}
	})
}

func TestSendTo(t *testing.T) {
	room := chatroom.New(chatroom.WithDirectMessages())
	srv := chatroomtest.NewServer(t, room, chatroomtest.IgnoreIDAndTime())
	ann := srv.Connect("ann")
	bob := srv.Connect("bob")
	carl := srv.Connect("carl")

	ann.SendTo("bob", "psst")
	direct := chatroom.Message{Type: chatroom.TypeDirect, Nickname: "ann", To: "bob", Text: "psst"}
	bob.Expect(direct)
	ann.Expect(direct)
	ann.SendTo("dave", "hello?")
	ann.Expect(chatroom.Message{Type: chatroom.TypeError, Text: "no such member: dave", Code: int(chatroom.StatusNoSuchMember)})

	// carl received none of it: his next frame is a later broadcast.
	ann.Sync()
	marker := chatroom.Message{Type: chatroom.TypeSystem, Text: "marker"}
	if _, err := room.Broadcast(context.Background(), marker); err != nil {
		t.Fatal(err)
	}
	carl.Expect(marker)
}

// SendRef and SendToRef send with a ref; the ack, and the error frame of a
// refusal, carry it.
func TestSendRef(t *testing.T) {
	room := chatroom.New(chatroom.WithDirectMessages(), chatroom.WithErrorFrames())
	srv := chatroomtest.NewServer(t, room, chatroomtest.IgnoreIDAndTime())
	ann := srv.Connect("ann")
	bob := srv.Connect("bob")

	ann.SendRef("hi", "r1")
	ann.Expect(
		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "hi"},
		chatroom.Message{Type: chatroom.TypeAck, Ref: "r1"},
	)
	ann.SendRef("hi", "r1") // a resend: acknowledged, not delivered again
	ann.Expect(chatroom.Message{Type: chatroom.TypeAck, Ref: "r1"})
	ann.SendToRef("bob", "psst", "r2")
	direct := chatroom.Message{Type: chatroom.TypeDirect, Nickname: "ann", To: "bob", Text: "psst"}
	ann.Expect(direct, chatroom.Message{Type: chatroom.TypeAck, Ref: "r2"})
	ann.SendToRef("dave", "hello?", "r3")
	ann.Expect(chatroom.Message{Type: chatroom.TypeError, Text: "no such member: dave", Code: int(chatroom.StatusNoSuchMember), Ref: "r3"})
	bob.Expect(chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "hi"}, direct)
}

// After Sync, the message hook has handled everything the client sent.
func TestSyncWaitsForTheHook(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	room := chatroom.New(chatroom.OnMessage(func(_ context.Context, _ *chatroom.Member, m chatroom.Message) (chatroom.Message, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m.Text)
		return m, errors.New("kept to myself")
	}))
	srv := chatroomtest.NewServer(t, room)
	ann := srv.Connect("ann")
	for i := range 20 {
		ann.Send(fmt.Sprint(i))
	}
	ann.Sync()
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	if n != 20 {
		t.Errorf("after Sync the hook has seen %d messages, want 20", n)
	}
}

// Connect returns once the member has joined: it is counted at once, and
// hears the very next message.
func TestConnectWaitsForTheJoin(t *testing.T) {
	joined := make(chan string, 100)
	room := chatroom.New(chatroom.OnJoin(func(_ context.Context, m *chatroom.Member) error {
		joined <- m.Nickname()
		return nil
	}))
	srv := chatroomtest.NewServer(t, room)
	first := srv.Connect("first")
	for i := range 20 {
		name := fmt.Sprint("c", i)
		c := srv.Connect(name)
		if n := room.Len(); n != i+2 {
			t.Fatalf("after Connect(%q), Len() = %d, want %d", name, n, i+2)
		}
		first.Send("hi " + name)
		c.Expect(msg("first", "hi "+name))
		first.Expect(msg("first", "hi "+name))
	}
	if len(joined) != 21 {
		t.Errorf("the join hook ran %d times, want 21", len(joined))
	}
}

func TestNoJoinWait(t *testing.T) {
	release := make(chan struct{})
	room := chatroom.New(chatroom.OnJoin(func(ctx context.Context, m *chatroom.Member) error {
		if m.Nickname() == "slow" || m.Nickname() == "stuck" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}))
	f := newFakeTB(t)
	srv := chatroomtest.NewServer(f, room)
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let) // registered after NewServer: runs before the server closes

	// Waiting for a hook that blocks fails after the timeout.
	f.do(func() { srv.Connect("stuck", chatroomtest.Timeout(short)) })
	f.wantFailure("Fatalf", `client "stuck": the handler did not return within 250ms (a join hook that blocks?`, "see NoJoinWait")

	c := srv.Connect("slow", chatroomtest.NoJoinWait())
	if n := room.Len(); n != 0 {
		t.Errorf("Len() = %d while the join hooks block, want 0", n)
	}
	let()
	c.Sync() // the room reads the member once it has joined
	if !slices.Contains(room.Nicknames(), "slow") {
		t.Errorf("Nicknames() = %q after the hook returned, want slow among them", room.Nicknames())
	}
	f.wantNoFailure()
}

func TestJoinRefused(t *testing.T) {
	room := chatroom.New(
		chatroom.WithUniqueNicknames(),
		chatroom.OnJoin(func(_ context.Context, m *chatroom.Member) error {
			if m.Nickname() == "mallory" {
				return websocket.CloseError{Code: 4003, Reason: "banned"}
			}
			return nil
		}),
	)
	srv := chatroomtest.NewServer(t, room)
	srv.Connect("mallory").ExpectCloseReason(4003, "banned")
	srv.Connect("ann")
	srv.Connect("ann").ExpectCloseReason(chatroom.StatusNicknameTaken, "nickname taken")
}

func TestDialRefusedBeforeUpgrade(t *testing.T) {
	room := chatroom.New(
		chatroom.WithHTTPUnauthorized(),
		chatroom.WithAuthenticator(func(r *http.Request) (chatroom.Identity, error) {
			if r.URL.Query().Get("token") != "good" {
				return chatroom.Identity{}, errors.New("bad token")
			}
			return chatroom.Identity{ID: "sei"}, nil
		}),
	)
	f := newFakeTB(t)
	srv := chatroomtest.NewServer(f, room)
	c, resp, err := srv.Dial("", chatroomtest.Query("token", "bad"))
	if c != nil || err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Dial = %v, %v, %v; want a 401 response and an error", c, resp, err)
	}
	f.do(func() { srv.Connect("", chatroomtest.Query("token", "bad")) })
	f.wantFailure("Fatalf", `chatroomtest: Connect: chatroomtest: client #2: dial ws://`, "401")

	sei := srv.Connect("", chatroomtest.Query("token", "good"))
	sei.Send("in")
	sei.Expect(msg("sei", "in"))
}

// Options of the server apply to every client, before the client's own;
// the kit's own header never reaches the handler.
func TestOptionsQueryHeaderPath(t *testing.T) {
	room := chatroom.New(chatroom.WithAuthenticator(func(r *http.Request) (chatroom.Identity, error) {
		if r.Header.Get("Chatroomtest-Client") != "" {
			return chatroom.Identity{}, errors.New("the kit's header reached the handler")
		}
		q := r.URL.Query()
		return chatroom.Identity{Nickname: fmt.Sprintf("%s/%s/%s@%s", r.Header.Get("X-User"), q.Get("team"), q.Get("nickname"), r.URL.Path)}, nil
	}))
	srv := chatroomtest.NewServer(t, room, chatroomtest.Header("X-User", "sei"), chatroomtest.Query("team", "blue"), chatroomtest.Path("/chat"))
	c := srv.Connect("a b&c", chatroomtest.Path("/other"), chatroomtest.Query("x", "y"))
	c.Send("hi")
	c.Expect(msg("sei/blue/a b&c@/other", "hi"))
	d := srv.Connect("d", chatroomtest.Timeout(-1)) // a timeout <= 0 keeps the default
	d.Send("hi")
	d.Expect(msg("sei/blue/d@/chat", "hi"))
}

func TestMount(t *testing.T) {
	left := make(chan string, 10)
	reg := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option {
		return []chatroom.Option{chatroom.OnLeave(func(_ context.Context, m *chatroom.Member, reason error) {
			left <- m.Room().Name() + ": " + m.Nickname() + ": " + fmt.Sprint(errors.Is(reason, chatroom.ErrRoomClosed))
		})}
	}))
	srv := chatroomtest.NewServer(t, chatroomtest.Mount("/rooms/{room}/chat", reg))
	ann := srv.Connect("ann", chatroomtest.Path("/rooms/lobby/chat"))
	bob := srv.Connect("bob", chatroomtest.Path("/rooms/lobby/chat"))
	ann.Send("hi")
	bob.Expect(msg("ann", "hi"))
	if _, resp, err := srv.Dial("ann", chatroomtest.Path("/elsewhere")); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("Dial elsewhere: %v, %v; want 404", resp, err)
	}
	srv.Close() // shuts the registry down through Mount
	if got := len(left); got != 2 {
		t.Fatalf("%d leave hooks ran, want 2", got)
	}
	for range 2 {
		if got := <-left; !strings.HasSuffix(got, ": true") {
			t.Errorf("leave: %s, want room closed", got)
		}
	}
	if _, ok := chatroomtest.Mount("/", http.NotFoundHandler()).(interface {
		Shutdown(context.Context) error
	}); ok {
		t.Error("Mount of a handler without Shutdown has one")
	}
}

// The server's cleanup shuts down a room it was given, waiting for the leave
// hooks, and leaves no goroutine behind.
func TestCleanupShutsDownTheRoom(t *testing.T) {
	var mu sync.Mutex
	var reasons []error
	room := chatroom.New(chatroom.OnLeave(func(_ context.Context, _ *chatroom.Member, reason error) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, reason)
	}))
	var out bytes.Buffer
	passed := chatroomtest.Run(&out, func(t chatroomtest.TB) {
		srv := chatroomtest.NewServer(t, room)
		for _, name := range []string{"ann", "bob", "carl"} {
			srv.Connect(name).Send("hi " + name)
		}
	})
	if !passed || out.Len() > 0 {
		t.Fatalf("Run = %t, output %q", passed, out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 3 {
		t.Fatalf("%d leave hooks ran by the end, want 3", len(reasons))
	}
	for _, r := range reasons {
		if !errors.Is(r, chatroom.ErrRoomClosed) {
			t.Errorf("leave reason %v, want ErrRoomClosed", r)
		}
	}
	if _, err := room.Broadcast(context.Background(), msg("x", "y")); !errors.Is(err, chatroom.ErrRoomClosed) {
		t.Errorf("Broadcast after the cleanup: %v, want ErrRoomClosed", err)
	}
	checkNoReaders(t)
}

// A room whose Shutdown the handler hides stays open; its members leave
// because the kit drops their connections.
func TestCleanupKeepsAHiddenRoom(t *testing.T) {
	left := make(chan error, 1)
	room := chatroom.New(chatroom.OnLeave(func(_ context.Context, _ *chatroom.Member, reason error) { left <- reason }))
	t.Cleanup(func() {
		if err := room.Close(); err != nil {
			t.Error(err)
		}
	})
	var out bytes.Buffer
	if !chatroomtest.Run(&out, func(t chatroomtest.TB) {
		chatroomtest.NewServer(t, http.HandlerFunc(room.ServeHTTP)).Connect("ann")
	}) {
		t.Fatalf("Run failed: %s", out.String())
	}
	checkNoReaders(t)
	select {
	case reason := <-left:
		if !errors.Is(reason, chatroom.ErrClientClosed) {
			t.Errorf("leave reason %v, want ErrClientClosed", reason)
		}
	case <-time.After(chatroomtest.DefaultTimeout):
		t.Fatal("the member did not leave")
	}
	if _, err := room.Broadcast(context.Background(), msg("x", "y")); err != nil {
		t.Errorf("Broadcast after the cleanup: %v, want the room open", err)
	}
}

func TestClientClose(t *testing.T) {
	left := make(chan error, 1)
	room := chatroom.New(chatroom.OnLeave(func(_ context.Context, _ *chatroom.Member, reason error) { left <- reason }))
	f := newFakeTB(t)
	srv := chatroomtest.NewServer(f, room)
	ann := srv.Connect("ann")
	ann.Send("bye")
	ann.Expect(msg("ann", "bye"))
	ann.Close()
	select {
	case reason := <-left:
		if !errors.Is(reason, chatroom.ErrClientClosed) || websocket.CloseStatus(reason) != websocket.StatusNormalClosure {
			t.Errorf("leave reason %v, want ErrClientClosed with status 1000", reason)
		}
	case <-time.After(chatroomtest.DefaultTimeout):
		t.Fatal("the member did not leave")
	}
	// Reading on says what happened: the server's answer, or Close.
	f.do(func() { ann.Next() })
	got := f.wantFailure("Fatalf", `client "ann": Next: the c`)
	if !strings.Contains(got, "status 1000") && !strings.Contains(got, "Client.Close") {
		t.Errorf("Next after Close: %s", got)
	}
	ann.Close() // again: nothing to do
	f.wantNoFailure()
}

// A frame over coder/websocket's default read limit of 32 KiB arrives whole.
func TestLargeFrame(t *testing.T) {
	srv := chatroomtest.NewServer(t, chatroom.New(chatroom.WithMaxMessageSize(1<<20)))
	ann := srv.Connect("ann")
	bob := srv.Connect("bob")
	big := strings.Repeat("x", 100<<10)
	ann.Send(big)
	bob.Expect(msg("ann", big))
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	var order []string
	passed := chatroomtest.Run(&out, func(t chatroomtest.TB) {
		t.Helper()
		t.Cleanup(func() {
			order = append(order, "first registered")
			t.Cleanup(func() { order = append(order, "registered by a cleanup") })
		})
		t.Cleanup(func() {
			order = append(order, "last registered")
			t.Fatalf("fatal in a cleanup")
		})
		t.Errorf("error %d", 1)
		t.Fatalf("fatal %d", 2)
		order = append(order, "after Fatalf")
	})
	if passed {
		t.Error("Run = true after failures")
	}
	if diff := cmp.Diff("error 1\nfatal 2\nfatal in a cleanup\n", out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"last registered", "first registered", "registered by a cleanup"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if !chatroomtest.Run(&out, func(chatroomtest.TB) {}) {
		t.Error("Run = false for a function that passes")
	}
}

// Remote connects to a server the test runs itself: the URL's path and query
// are the clients' defaults, the handshake carries none of the kit's own
// headers, Connect does not wait for the join, and Close drops the clients
// but leaves the server and its room alone.
func TestRemote(t *testing.T) {
	release := make(chan struct{})
	room := chatroom.New(
		chatroom.WithAuthenticator(func(r *http.Request) (chatroom.Identity, error) {
			if r.Header.Get("Chatroomtest-Client") != "" {
				return chatroom.Identity{}, fmt.Errorf("%w: the kit's header reached the handler", chatroom.ErrInvalidNickname)
			}
			q := r.URL.Query()
			return chatroom.Identity{Nickname: q.Get("nickname") + "/" + q.Get("team")}, nil
		}),
		chatroom.OnJoin(func(ctx context.Context, m *chatroom.Member) error {
			if m.Nickname() == "slow/blue" {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		}),
	)
	t.Cleanup(func() {
		if err := room.Close(); err != nil {
			t.Error(err)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/chat", room)
	host := httptest.NewServer(mux)
	t.Cleanup(host.Close)

	f := newFakeTB(t)
	srv := chatroomtest.Remote(f, host.URL+"/chat?team=blue")
	if want := "ws" + strings.TrimPrefix(host.URL, "http"); srv.URL != want {
		t.Errorf("URL = %q, want %q", srv.URL, want)
	}
	ann := srv.Connect("ann")
	ann.Send("hi")
	ann.Expect(msg("ann/blue", "hi")) // ann has joined
	red := srv.Connect("rex", chatroomtest.Query("team", "red"))
	red.Send("hi")
	red.Expect(msg("rex/blue", "hi")) // the URL's parameter comes first
	ann.Expect(msg("rex/blue", "hi"))

	// A join hook that blocks does not hold Connect up.
	slow := srv.Connect("slow")
	if n := room.Len(); n != 2 {
		t.Errorf("Len() = %d while slow's join hook blocks, want 2", n)
	}
	close(release)
	slow.Send("here")
	for _, c := range []*chatroomtest.Client{ann, red, slow} {
		c.Expect(msg("slow/blue", "here"))
	}

	if _, resp, err := srv.Dial("ann", chatroomtest.Path("/elsewhere")); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("Dial elsewhere: %v, %v; want 404", resp, err)
	}

	srv.Close()
	f.wantNoFailure()
	if _, err := room.Broadcast(context.Background(), msg("x", "y")); err != nil {
		t.Errorf("Broadcast after Close: %v, want the room open", err)
	}
	// The host's server still serves: the kit's own test client reaches it.
	again := chatroomtest.Remote(t, host.URL, chatroomtest.Path("/chat"))
	dan := again.Connect("dan")
	dan.Send("still here")
	dan.Expect(msg("dan/", "still here"))
}

func TestRemoteBadURL(t *testing.T) {
	for _, url := range []string{"127.0.0.1:80", "ftp://127.0.0.1", "ws://", "ws://u:p@127.0.0.1", "ws://127.0.0.1/#x", "ws://%zz"} {
		f := newFakeTB(t)
		if f.do(func() { chatroomtest.Remote(f, url) }) {
			t.Errorf("Remote(%q) returned", url)
		}
		f.wantFailure("Fatalf", fmt.Sprintf("chatroomtest: Remote(%q): ", url))
	}
}

func TestNextFunc(t *testing.T) {
	room := chatroom.New(chatroom.WithNotices())
	f := newFakeTB(t)
	srv := chatroomtest.NewServer(f, room, chatroomtest.IgnoreIDAndTime())
	ann := srv.Connect("ann")
	srv.Connect("bob")
	srv.Connect("carl").Send("hi")
	isMessage := func(m chatroom.Message) bool { return m.Type == chatroom.TypeMessage }
	got := ann.NextFunc(isMessage)
	if got.Nickname != "carl" || got.Text != "hi" {
		t.Errorf("NextFunc = %+v, want carl's hi", got)
	}
	// The join notices before it are gone.
	ann.Send("next")
	ann.Expect(chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "next"})

	// No match in time: the frames skipped are listed.
	dan := srv.Connect("dan", chatroomtest.Timeout(short))
	f.do(func() { dan.NextFunc(isMessage) })
	f.wantFailure("Fatalf", `client "dan": NextFunc: nothing received within 250ms, and no frame matched; received 1 frame(s):`+"\n\t"+`{"type":"join",`)
	f.wantNoFailure()
}

// Frames that keep coming do not make NextFunc wait beyond its timeout.
func TestNextFuncBounded(t *testing.T) {
	h := wsHandler(t, func(r *http.Request, conn *websocket.Conn) {
		for range 1_000_000 { // until the client goes
			if conn.Write(r.Context(), websocket.MessageText, []byte(`{"nickname":"x","message":"noise"}`)) != nil {
				return
			}
		}
	})
	f := newFakeTB(t)
	srv := chatroomtest.NewServer(f, h, chatroomtest.NoJoinWait(), chatroomtest.Timeout(short))
	c := srv.Connect("ann")
	start := time.Now()
	f.do(func() { c.NextFunc(func(chatroom.Message) bool { return false }) })
	report := f.wantFailure("Fatalf", `client "ann": NextFunc: nothing received within 250ms, and no frame matched; received `, "frames, the first 20:")
	if n := strings.Count(report, "noise"); n != 20 {
		t.Errorf("the report lists %d frames, want 20", n)
	}
	if took := time.Since(start); took > 20*short {
		t.Errorf("NextFunc gave up after %v, with a timeout of %v", took, short)
	}
}

func TestDisallowUnknownFields(t *testing.T) {
	frames := []string{
		`{"nickname":"a","message":"known"}`,
		`{"nickname":"a","message":"b","extra":1}`,
		`{"nickname":"a","message":"b"} {}`,
		`{"nickname":"a","message":"b","extra":1}`,
		`{"nickname":"a","message":"b","extra":1}`,
	}
	h := wsHandler(t, func(r *http.Request, conn *websocket.Conn) {
		for _, fr := range frames {
			_ = conn.Write(r.Context(), websocket.MessageText, []byte(fr))
		}
		_, _, _ = conn.Read(r.Context()) // until the client goes
	})
	f := newFakeTB(t)
	srv := chatroomtest.NewServer(f, h, chatroomtest.NoJoinWait())

	lenient := srv.Connect("lenient")
	lenient.Expect(msg("a", "known"), msg("a", "b"))
	f.do(func() { lenient.Next() })
	f.wantFailure("Fatalf", `client "lenient": Next: frame {"nickname":"a","message":"b"} {}: invalid character '{' after top-level value`)

	strict := srv.Connect("strict", chatroomtest.DisallowUnknownFields())
	strict.Expect(msg("a", "known"))
	f.do(func() { strict.Next() })
	f.wantFailure("Fatalf", `client "strict": Next: frame {"nickname":"a","message":"b","extra":1}: json: unknown field "extra"`)
	f.do(func() { strict.Next() })
	f.wantFailure("Fatalf", `client "strict": Next: frame {"nickname":"a","message":"b"} {}: data after the JSON object`)
	f.do(func() { strict.Expect(msg("a", "b")) })
	f.wantFailure("Fatalf", `client "strict": Expect: frame 1 of 1: frame {"nickname":"a","message":"b","extra":1}: json: unknown field "extra"`)
	f.do(func() { strict.NextFunc(func(chatroom.Message) bool { return true }) })
	f.wantFailure("Fatalf", `client "strict": NextFunc: frame {"nickname":"a","message":"b","extra":1}: json: unknown field "extra", and no frame matched`)
}
