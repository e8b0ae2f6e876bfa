package chatroom_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/brokertest"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// ignoreTime compares frames without their time: IDs are checked.
var ignoreTime = cmpopts.IgnoreFields(chatroom.Message{}, "Time")

// The ack of a message with a ref is the frame after the message's echo,
// with the message's ID, to the sender's connection only.
func TestAckShape(t *testing.T) {
	room := chatroom.New(chatroom.WithEnvelope(), chatroom.WithClock(stopped))
	srv := chatroomtest.NewServer(t, room)
	ann := srv.Connect("ann")
	ann2 := srv.Connect("ann")
	bob := srv.Connect("bob")

	ann.SendRaw(websocket.MessageText, []byte(`{"message":"hi","ref":"r-1 ☃"}`))
	echo := ann.Next()
	ack := ann.NextRaw()
	want := fmt.Sprintf(`{"type":"ack","id":%d,"time":"2026-11-23T08:00:00.000Z","ref":"r-1 ☃"}`, echo.ID)
	if ack != want {
		t.Errorf("ack = %s, want %s", ack, want)
	}
	if diff := cmp.Diff(chatroom.Message{Type: chatroom.TypeMessage, ID: echo.ID, Nickname: "ann", Text: "hi"}, echo, ignoreTime); diff != "" {
		t.Errorf("echo (-want +got):\n%s", diff)
	}
	// The other connections receive the message, and no ack.
	bob.Send("marker")
	ann2.Expect(chatroom.Message{Type: chatroom.TypeMessage, ID: echo.ID, Nickname: "ann", Text: "hi", Time: echo.Time})
	for _, c := range []*chatroomtest.Client{ann2, bob} {
		if c == bob {
			bob.Next() // hi
		}
		if got := c.Next(); got.Text != "marker" {
			t.Errorf("%s after the message: %+v, want the marker", c.Nickname(), got)
		}
	}
	// Server messages tell the host their ID.
	id, err := room.Broadcast(context.Background(), chatroom.Message{Text: "from the host"})
	if got := bob.Next(); err != nil || got.ID != id || got.Text != "from the host" {
		t.Errorf("Broadcast = %d, %v; bob received %+v", id, err, got)
	}
}

// Without WithExcludeSender's echo, the ack is the sender's only news.
func TestAckWithExcludeSender(t *testing.T) {
	srv := chatroomtest.NewServer(t, chatroom.New(chatroom.WithEnvelope(), chatroom.WithExcludeSender()))
	ann := srv.Connect("ann")
	bob := srv.Connect("bob")
	ann.SendRef("hi", "1")
	got := bob.Next()
	ack := ann.Next()
	if diff := cmp.Diff(chatroom.Message{Type: chatroom.TypeAck, ID: got.ID, Ref: "1"}, ack, cmpopts.IgnoreFields(chatroom.Message{}, "Time")); diff != "" {
		t.Errorf("ack (-want +got):\n%s", diff)
	}
}

// A direct message's ack carries the ID its direct frame carries; an absent
// recipient's error frame carries the ref.
func TestAckDirect(t *testing.T) {
	// A stopped clock: the ack is stamped after the direct frame.
	room := chatroom.New(chatroom.WithDirectMessages(), chatroom.WithClock(stopped))
	srv := chatroomtest.NewServer(t, room)
	ann := srv.Connect("ann")
	bob := srv.Connect("bob")
	ann.SendToRef("bob", "psst", "d1")
	direct := bob.Next()
	ann.Expect(direct, chatroom.Message{Type: chatroom.TypeAck, ID: direct.ID, Ref: "d1", Time: direct.Time})
	ann.SendToRef("kai", "psst", "d2")
	got := ann.Next()
	if diff := cmp.Diff(chatroom.Message{Type: chatroom.TypeError, ID: direct.ID, Code: 4404, Text: "no such member: kai", Ref: "d2"}, got, ignoreTime); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	id, err := room.SendTo(context.Background(), "bob", chatroom.Message{Text: "from the host"})
	if got := bob.Next(); err != nil || got.ID != id || got.Text != "from the host" {
		t.Errorf("SendTo = %d, %v; bob received %+v", id, err, got)
	}
}

// A ref that is not a string of 1 to 64 bytes is refused with 1007
// "invalid ref": an error frame with WithErrorFrames, a close without.
func TestRefValidation(t *testing.T) {
	bad := []string{
		`""`, `"` + strings.Repeat("x", 65) + `"`, `"` + strings.Repeat("é", 33) + `"`,
		`7`, `null`, `true`, `["r"]`, `{"r":1}`, `"` + strings.Repeat("x", 16<<10) + `"`,
	}
	srv := chatroomtest.NewServer(t, chatroom.New(chatroom.WithErrorFrames()), chatroomtest.IgnoreIDAndTime())
	ann := srv.Connect("ann")
	for _, ref := range bad {
		ann.SendRaw(websocket.MessageText, []byte(`{"message":"hi","ref":`+ref+`}`))
		if !ann.Expect(chatroom.Message{Type: chatroom.TypeError, Code: 1007, Text: "invalid ref"}) {
			t.Errorf("ref %.40s", ref)
		}
	}
	for _, ref := range []string{`"x"`, `"` + strings.Repeat("x", 64) + `"`, `"` + strings.Repeat("é", 32) + `"`, `"\u0000"`} {
		ann.SendRaw(websocket.MessageText, []byte(`{"message":"ok","ref":`+ref+`}`))
		ann.Next() // the echo
		if got := ann.Next(); got.Type != chatroom.TypeAck || got.Ref == "" {
			t.Errorf("ref %.40s: %+v, want an ack", ref, got)
		}
	}

	closing := chatroomtest.NewServer(t, chatroom.New(chatroom.WithEnvelope()))
	kai := closing.Connect("kai")
	kai.SendRaw(websocket.MessageText, []byte(`{"message":"hi","ref":""}`))
	kai.ExpectCloseReason(websocket.StatusInvalidFramePayloadData, "invalid ref")
}

// Bad input, a refusal by the hook and the rate limit carry the ref of the
// frame they answer; what was refused is not recorded, so the same ref may
// be sent again.
func TestRefusalsCarryTheRef(t *testing.T) {
	refuse := true
	room := chatroom.New(chatroom.WithErrorFrames(), chatroom.WithRateLimit(0.01, 3),
		chatroom.OnMessage(func(_ context.Context, _ *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
			if refuse && msg.Text == "refuse me" {
				return msg, errors.New("no")
			}
			return msg, nil
		}))
	srv := chatroomtest.NewServer(t, room, chatroomtest.IgnoreIDAndTime())
	ann := srv.Connect("ann")
	ann.SendRaw(websocket.MessageText, []byte(`{"ref":"a"}`))
	ann.SendRaw(websocket.MessageText, []byte(`{"message":7,"ref":"b"}`))
	ann.SendRef("refuse me", "c")
	ann.Expect(
		chatroom.Message{Type: chatroom.TypeError, Code: 1007, Text: `expected {"message": string}`, Ref: "a"},
		chatroom.Message{Type: chatroom.TypeError, Code: 1007, Text: `expected {"message": string}`, Ref: "b"},
		chatroom.Message{Type: chatroom.TypeError, Code: 1008, Text: "message refused", Ref: "c"},
	)
	ann.SendRef("x", "d") // past the burst of 3
	ann.Expect(chatroom.Message{Type: chatroom.TypeError, Code: 1008, Text: "rate limit exceeded", Ref: "d"})
}

// A frame without a ref is answered as it always was: no ack.
func TestNoRefNoAck(t *testing.T) {
	srv := chatroomtest.NewServer(t, chatroom.New(chatroom.WithEnvelope(), chatroom.WithClock(stopped)))
	ann := srv.Connect("ann")
	ann.Send("plain")
	ann.SendRef("marker", "m")
	first := ann.NextRaw()
	if want := `"nickname":"ann","message":"plain"}`; !strings.HasPrefix(first, `{"type":"message","id":`) || !strings.HasSuffix(first, want) {
		t.Errorf("frame = %s", first)
	}
	if got := ann.Next(); got.Text != "marker" {
		t.Errorf("after a frame without ref: %+v, want the marker", got)
	}
}

// The default protocol ignores "ref", whatever it holds: the frames are
// those of the tutorial, byte for byte, and no ack is sent.
func TestDefaultProtocolIgnoresRef(t *testing.T) {
	srv := chatroomtest.NewServer(t, chatroom.New())
	ann := srv.Connect("ann")
	for _, f := range []string{`{"message":"a","ref":"r1"}`, `{"message":"b","ref":7}`, `{"message":"c","ref":""}`, `{"message":"a","ref":"r1"}`} {
		ann.SendRaw(websocket.MessageText, []byte(f))
	}
	for _, want := range []string{`{"nickname":"ann","message":"a"}`, `{"nickname":"ann","message":"b"}`, `{"nickname":"ann","message":"c"}`, `{"nickname":"ann","message":"a"}`} {
		if got := ann.NextRaw(); got != want {
			t.Errorf("frame = %s, want %s", got, want)
		}
	}
}

// A message resent with its ref, on a new connection of the same sender, is
// acknowledged with the first's ID and not delivered again.
func TestResendAfterReconnect(t *testing.T) {
	srv := chatroomtest.NewServer(t, chatroom.New(chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{})))
	bob := srv.Connect("bob")
	ann := srv.Connect("ann")
	ann.SendRef("once", "r1")
	echo := ann.Next()
	ack := ann.Next()
	ann.Close()

	again := srv.Connect("ann", chatroomtest.Query("since", fmt.Sprint(echo.ID)))
	expectResendAcked(t, again, bob, ack)
}

// expectResendAcked resends ann's message "once" with ref r1 through
// again, checks that it is acknowledged as ack was, then that bob, who
// received the first, receives the next message after it, not the resend.
func expectResendAcked(t *testing.T, again, bob *chatroomtest.Client, ack chatroom.Message) {
	t.Helper()
	again.SendRef("once", "r1")
	if got := again.Next(); got.Type != chatroom.TypeAck || got.ID != ack.ID || got.Ref != "r1" {
		t.Errorf("ack of the resend = %+v, want %+v", got, ack)
	}
	again.SendRef("next", "r2")
	bob.Next() // once
	if got := bob.Next(); got.Text != "next" {
		t.Errorf("after the resend bob received %+v, want the next message", got)
	}
}

// With an authenticator the sender is the identity: a ref of one identity
// is deduplicated under another nickname, and not shared with another
// identity of the same nickname.
func TestResendIsPerIdentity(t *testing.T) {
	room := chatroom.New(chatroom.WithEnvelope(), chatroom.WithAuthenticator(func(r *http.Request) (chatroom.Identity, error) {
		q := r.URL.Query()
		return chatroom.Identity{ID: q.Get("id"), Nickname: q.Get("as")}, nil
	}))
	srv := chatroomtest.NewServer(t, room)
	one := srv.Connect("", chatroomtest.Query("id", "u1"), chatroomtest.Query("as", "ann"))
	one.SendRef("hi", "r")
	one.Next()
	ack := one.Next()
	renamed := srv.Connect("", chatroomtest.Query("id", "u1"), chatroomtest.Query("as", "annie"))
	renamed.SendRef("hi", "r")
	if got := renamed.Next(); got.Type != chatroom.TypeAck || got.ID != ack.ID {
		t.Errorf("same identity, other nickname: %+v, want the ack %+v", got, ack)
	}
	other := srv.Connect("", chatroomtest.Query("id", "u2"), chatroomtest.Query("as", "ann"))
	other.SendRef("hi", "r")
	if got := other.Next(); got.Type != chatroom.TypeMessage || got.ID == ack.ID {
		t.Errorf("other identity, same nickname and ref: %+v, want its message delivered", got)
	}
}

// A flood of unique refs pushes out the sender's oldest: the room
// remembers a bounded number (1024 per sender), so the first is then new
// again.
func TestRefRecordBoundedPerSender(t *testing.T) {
	srv := chatroomtest.NewServer(t, chatroom.New(chatroom.WithEnvelope(), chatroom.WithExcludeSender(), chatroom.WithPacing(chatroom.Off, 0)))
	ann := srv.Connect("ann")
	const n = 1025
	for i := range n {
		ann.SendRef("x", fmt.Sprint(i))
	}
	for range n {
		ann.Next()
	}
	ann.SendRef("x", fmt.Sprint(n-1)) // still remembered
	ann.SendRef("x", "0")             // forgotten: taken anew
	last, first := ann.Next(), ann.Next()
	if last.Ref != fmt.Sprint(n-1) || first.Ref != "0" || first.ID <= last.ID {
		t.Errorf("acks %+v then %+v; want the old ID for the last ref, a new one for the first", last, first)
	}
}

// A resend through another node of a cluster is acknowledged with the
// first's ID, and delivered on no node again.
func TestResendThroughAnotherNode(t *testing.T) {
	b := broker.NewMemory(100)
	node := func() *chatroomtest.Server {
		return chatroomtest.NewServer(t, chatroom.New(chatroom.WithName("lobby"), chatroom.WithBroker(b), chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{})))
	}
	one, two := node(), node()
	bob := two.Connect("bob")
	ann := one.Connect("ann")
	ann.SendRef("once", "r1")
	echo := ann.Next()
	ack := ann.Next()
	if ack.Type != chatroom.TypeAck || ack.ID != echo.ID {
		t.Fatalf("ack %+v after %+v", ack, echo)
	}
	again := two.Connect("ann")
	again.Next() // its history: once
	expectResendAcked(t, again, bob, ack)
}

// A resend that comes while the first is still being taken (the message
// hook runs) waits for the first's answer: the ack, or the refusal.
func TestResendWhileTaken(t *testing.T) {
	entered, release := make(chan struct{}), make(chan error)
	room := chatroom.New(chatroom.WithErrorFrames(), chatroom.OnMessage(func(_ context.Context, _ *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
		if msg.Text == "slow" {
			entered <- struct{}{}
			return msg, <-release
		}
		return msg, nil
	}))
	srv := chatroomtest.NewServer(t, room)
	ann := srv.Connect("ann")
	again := srv.Connect("ann")
	for _, refusal := range []error{nil, errors.New("no")} {
		ref := fmt.Sprint(refusal)
		ann.SendRef("slow", ref)
		<-entered // the hook holds it
		again.SendRef("slow", ref)
		again.Sync() // the room has read the resend
		release <- refusal
		first := ann.Next()
		if refusal == nil {
			if got := again.Next(); got.Text != "slow" || got.ID != first.ID {
				t.Fatalf("the other connection received %+v, want the message %+v", got, first)
			}
			first = ann.Next()
		}
		if got := again.Next(); got.Type != first.Type || got.ID != first.ID || got.Ref != ref || got.Type == chatroom.TypeMessage {
			t.Errorf("refusal %v: the resend's answer %+v, the first's %+v", refusal, got, first)
		}
	}
}

// A message whose hook panicked was not taken: its ref is free again.
func TestRefFreeAfterHookPanic(t *testing.T) {
	room := chatroom.New(chatroom.WithEnvelope(), chatroom.OnMessage(func(_ context.Context, _ *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
		if msg.Text == "panic" {
			panic("hook")
		}
		return msg, nil
	}))
	srv := chatroomtest.NewServer(t, room)
	ann := srv.Connect("ann")
	ann.SendRef("panic", "r1")
	ann.ExpectClose(websocket.StatusInternalError)
	again := srv.Connect("ann")
	again.SendRef("fine", "r1")
	if got := again.Next(); got.Type != chatroom.TypeMessage || got.Text != "fine" {
		t.Errorf("after the panic, the ref's message: %+v, want it delivered", got)
	}
}

// In a cluster, Broadcast returns the ID every node's members receive the
// message with; a node with no members in the room, which does not
// receive it, returns 0.
func TestBroadcastIDInCluster(t *testing.T) {
	b := broker.NewMemory(10)
	newRoom := func() *chatroom.Room {
		return chatroom.New(chatroom.WithName("lobby"), chatroom.WithBroker(b), chatroom.WithEnvelope())
	}
	one, two, empty := newRoom(), newRoom(), newRoom()
	defer empty.Close()
	ann := chatroomtest.NewServer(t, one).Connect("ann")
	bob := chatroomtest.NewServer(t, two).Connect("bob")
	id, err := one.Broadcast(context.Background(), chatroom.Message{Text: "from node one"})
	if err != nil || id == 0 {
		t.Fatalf("Broadcast = %d, %v", id, err)
	}
	for _, c := range []*chatroomtest.Client{ann, bob} {
		if got := c.Next(); got.ID != id || got.Text != "from node one" {
			t.Errorf("%s received %+v, want ID %d", c.Nickname(), got, id)
		}
	}
	id, err = empty.Broadcast(context.Background(), chatroom.Message{Text: "from a node without members"})
	if err != nil || id != 0 {
		t.Errorf("Broadcast on a node without members = %d, %v; want 0, nil", id, err)
	}
	if got := bob.Next(); got.Text != "from a node without members" {
		t.Errorf("bob received %+v", got)
	}
}

// openOutcome is a slog.Handler that tells when the room logs that the
// broker did not answer a publication, which it may still deliver.
type openOutcome chan struct{}

func (h openOutcome) Enabled(context.Context, slog.Level) bool { return true }

func (h openOutcome) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "effect" && strings.Contains(a.Value.String(), "may still deliver") {
			select {
			case h <- struct{}{}:
			default:
			}
		}
		return true
	})
	return nil
}

func (h openOutcome) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h openOutcome) WithGroup(string) slog.Handler      { return h }

// A message whose publication the broker did not answer in time is
// acknowledged when the broker runs it late, and a resend of it then is
// recognised.
func TestAckWhenTheBrokerRunsItLate(t *testing.T) {
	backend := brokertest.MemoryBackend(t)
	open := make(openOutcome, 1)
	room := chatroom.New(chatroom.WithName("lobby"), chatroom.WithBroker(backend.Connect(t)), chatroom.WithEnvelope(),
		chatroom.WithHeartbeat(time.Hour), chatroom.WithLogger(slog.New(open)))
	srv := chatroomtest.NewServer(t, room)
	ann := srv.Connect("ann")
	backend.Pause(t)
	ann.SendRef("late", "r1")
	<-open // the room gave up waiting: the broker may run it yet
	backend.Resume(t)
	echo := ann.Next()
	if ack := ann.Next(); echo.Text != "late" || ack.Type != chatroom.TypeAck || ack.ID != echo.ID || ack.Ref != "r1" {
		t.Fatalf("after the broker ran it late: %+v then %+v, want the message and its ack", echo, ack)
	}
	again := srv.Connect("ann")
	again.SendRef("late", "r1")
	if got := again.Next(); got.Type != chatroom.TypeAck || got.ID != echo.ID {
		t.Errorf("the resend: %+v, want the ack with ID %d", got, echo.ID)
	}
}
