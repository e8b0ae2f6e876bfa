package chatroom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestProtocolShape(t *testing.T) {
	tr := newTestRoom(t)
	alice := tr.join("alice")
	bob := tr.join("bob")

	alice.send("こんにちは 👋 <b>&")
	want := `{"nickname":"alice","message":"こんにちは 👋 <b>&"}`
	for _, c := range []*client{alice, bob} {
		if diff := cmp.Diff(want, c.read()); diff != "" {
			t.Errorf("frame received by %s (-want +got):\n%s", c.member.Nickname(), diff)
		}
	}
}

func TestUnknownFieldsAreIgnored(t *testing.T) {
	tr := newTestRoom(t)
	c := tr.join("sei")
	c.sendRaw(websocket.MessageText, `{"type":"chat","message":"hi","nickname":"mallory","extra":[1,{}]}`)
	if diff := cmp.Diff(frame("sei", "hi"), c.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDefaultNickname(t *testing.T) {
	for _, query := range []string{"", "nickname=", "other=1"} {
		t.Run(fmt.Sprintf("query=%q", query), func(t *testing.T) {
			tr := newTestRoom(t)
			c := tr.joinWith(query, nil)
			c.send("hello")
			if diff := cmp.Diff(frame("unknown_127.0.0.1", "hello"), c.read()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultNicknameIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	room := New()
	srv := httptest.NewUnstartedServer(room)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	defer room.Close()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"message":"v6"}`)); err != nil {
		t.Fatal(err)
	}
	_, got, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(frame("unknown_::1", "v6"), string(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestInvalidNicknameIsRefusedBeforeUpgrade(t *testing.T) {
	tests := []struct {
		name, query, wantBody string
	}{
		{"control character", "nickname=a%07b", "control character"},
		{"newline", "nickname=a%0Ab", "control character"},
		{"bidi override", "nickname=abc%E2%80%AEdef", "control character"},
		{"invalid UTF-8", "nickname=%FF%FE", "not valid UTF-8"},
		{"too long", "nickname=" + strings.Repeat("あ", MaxNicknameLength+1), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRoom(t)
			_, resp, err := tr.dialRaw(tt.query, nil)
			if err == nil {
				t.Fatal("dial succeeded, want HTTP 400")
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("response = %v, want 400", resp)
			}
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), "invalid nickname") || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body = %q, want it to mention %q", body, tt.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
		})
	}
}

func TestLongestValidNickname(t *testing.T) {
	tr := newTestRoom(t)
	name := strings.Repeat("あ", MaxNicknameLength)
	c := tr.join(name)
	c.send("x")
	if diff := cmp.Diff(frame(name, "x"), c.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNicknameOptions(t *testing.T) {
	t.Run("WithClientIP", func(t *testing.T) {
		tr := newTestRoom(t, WithClientIP(func(r *http.Request) string {
			if ip := r.Header.Get("X-Real-IP"); ip != "" {
				return ip
			}
			return RemoteIP(r)
		}))
		c := tr.joinWith("", &websocket.DialOptions{HTTPHeader: http.Header{"X-Real-Ip": {"203.0.113.7"}}})
		if got := c.member.ClientIP(); got != "203.0.113.7" {
			t.Errorf("ClientIP = %q", got)
		}
		c.send("hi")
		if diff := cmp.Diff(frame("unknown_203.0.113.7", "hi"), c.read()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("WithAuthenticator names members", func(t *testing.T) {
		// The host's session names the member; a name it will not have is
		// refused as a client's bad nickname is, and no session as
		// unauthorized.
		tr := newTestRoom(t, WithAuthenticator(func(r *http.Request) (Identity, error) {
			switch user := r.Header.Get("X-User"); user {
			case "":
				return Identity{}, errors.New("log in first")
			case "root":
				return Identity{}, fmt.Errorf("%w: pick another name than %s", ErrInvalidNickname, user)
			default:
				return Identity{ID: user}, nil
			}
		}))
		as := func(user string) *websocket.DialOptions {
			return &websocket.DialOptions{HTTPHeader: http.Header{"X-User": {user}}}
		}
		c := tr.joinWith("nickname=impostor", as("sei"))
		if got := c.member.ClientIP(); got != "127.0.0.1" {
			t.Errorf("ClientIP = %q", got)
		}
		c.send("hi")
		if diff := cmp.Diff(frame("sei", "hi"), c.read()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		got, body := dialRefusalWith(t, tr, "", as("root"))
		if diff := cmp.Diff(refusal{HTTPStatus: http.StatusBadRequest}, got); diff != "" {
			t.Errorf("refusal of root (-want +got):\n%s", diff)
		}
		if want := "chatroom: invalid nickname: pick another name than root\n"; body != want {
			t.Errorf("body = %q, want %q", body, want)
		}
		if got, _ := dialRefusalWith(t, tr, "", nil); got != (refusal{Close: StatusUnauthorized, Reason: "Unauthorized"}) {
			t.Errorf("refusal without a session = %+v, want 4001", got)
		}
	})
	t.Run("WithNicknameValidator", func(t *testing.T) {
		tr := newTestRoom(t, WithNicknameValidator(func(s string) error {
			if s == "admin" {
				return fmt.Errorf("%w: reserved", ErrInvalidNickname)
			}
			return ValidateNickname(s)
		}))
		_, resp, err := tr.dialRaw("nickname=admin", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("dial as admin: err=%v resp=%v, want 400", err, resp)
		}
		tr.join("sei")
	})
}

func TestOrderIsSharedUnderConcurrentSenders(t *testing.T) {
	const senders, perSender, watchers = 4, 200, 2
	tr := newTestRoom(t)
	var clients []*client
	for i := range senders {
		clients = append(clients, tr.join(fmt.Sprintf("s%d", i)))
	}
	for i := range watchers {
		clients = append(clients, tr.join(fmt.Sprintf("w%d", i)))
	}

	received := make([][]Message, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range senders * perSender {
				s, err := c.readRaw()
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				received[i] = append(received[i], decodeForTest(t, s))
			}
		}()
	}
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perSender {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				err := clients[i].conn.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"message":"%d"}`, n)))
				cancel()
				if err != nil {
					t.Errorf("sender %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for i := 1; i < len(received); i++ {
		if diff := cmp.Diff(received[0], received[i]); diff != "" {
			t.Fatalf("client %d saw another order than client 0 (-0 +%d):\n%s", i, i, diff)
		}
	}
	next := map[string]int{}
	for _, m := range received[0] {
		if want := fmt.Sprint(next[m.Nickname]); m.Text != want {
			t.Fatalf("from %s: got message %s, want %s (reordered)", m.Nickname, m.Text, want)
		}
		next[m.Nickname]++
	}
}

func decodeForTest(t *testing.T, s string) Message {
	t.Helper()
	var m Message
	if err := jsonUnmarshal(s, &m); err != nil {
		t.Errorf("frame %q: %v", s, err)
	}
	return m
}

func TestBadInputClosesOnlyTheSender(t *testing.T) {
	tests := []struct {
		name       string
		typ        websocket.MessageType
		payload    string
		wantCode   websocket.StatusCode
		wantReason string
		wantErr    error
	}{
		{"invalid JSON", websocket.MessageText, `{"message":`, 1007, "invalid JSON", ErrInvalidMessage},
		{"plain text", websocket.MessageText, `hello`, 1007, "invalid JSON", ErrInvalidMessage},
		{"JSON string", websocket.MessageText, `"hello"`, 1007, `expected {"message": string}`, ErrInvalidMessage},
		{"JSON array", websocket.MessageText, `[{"message":"x"}]`, 1007, `expected {"message": string}`, ErrInvalidMessage},
		{"JSON null", websocket.MessageText, `null`, 1007, `expected {"message": string}`, ErrInvalidMessage},
		{"missing message", websocket.MessageText, `{"msg":"x"}`, 1007, `expected {"message": string}`, ErrInvalidMessage},
		{"key in other case", websocket.MessageText, `{"MESSAGE":"x"}`, 1007, `expected {"message": string}`, ErrInvalidMessage},
		{"number message", websocket.MessageText, `{"message":42}`, 1007, `expected {"message": string}`, ErrInvalidMessage},
		{"null message", websocket.MessageText, `{"message":null}`, 1007, `expected {"message": string}`, ErrInvalidMessage},
		{"object message", websocket.MessageText, `{"message":{"a":1}}`, 1007, `expected {"message": string}`, ErrInvalidMessage},
		{"invalid UTF-8", websocket.MessageText, "{\"message\":\"\xff\xfe\"}", 1007, "invalid UTF-8", ErrInvalidMessage},
		{"trailing garbage", websocket.MessageText, `{"message":"x"} {}`, 1007, "invalid JSON", ErrInvalidMessage},
		{"binary frame", websocket.MessageBinary, `{"message":"x"}`, 1003, "binary messages are not supported", ErrUnsupportedData},
		{"too big", websocket.MessageText, `{"message":"` + strings.Repeat("x", 2000) + `"}`, 1009, "", ErrMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRoom(t, WithMaxMessageSize(1024))
			bad := tr.join("bad")
			bystander := tr.join("bystander")
			good := tr.join("good")

			bad.sendRaw(tt.typ, tt.payload)
			bad.expectClose(tt.wantCode, tt.wantReason)
			tr.expectLeave("bad", tt.wantErr)

			// Nothing reached the others: their next frame is the next good message.
			good.send("after")
			for _, c := range []*client{bystander, good} {
				if diff := cmp.Diff(frame("good", "after"), c.read()); diff != "" {
					t.Errorf("%s received (-want +got):\n%s", c.member.Nickname(), diff)
				}
			}
		})
	}
}

func TestMaxMessageSizeBoundary(t *testing.T) {
	tr := newTestRoom(t, WithMaxMessageSize(64))
	c := tr.join("sei")
	exact := `{"message":"` + strings.Repeat("x", 64-len(`{"message":""}`)) + `"}`
	c.sendRaw(websocket.MessageText, exact)
	if diff := cmp.Diff(frame("sei", strings.Repeat("x", 50)), c.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	c.sendRaw(websocket.MessageText, exact+" ")
	c.expectClose(websocket.StatusMessageTooBig, "")
	tr.expectLeave("sei", ErrMessageTooBig)
}

func TestClientCloseIsAnOrdinaryLeave(t *testing.T) {
	tr := newTestRoom(t)
	c := tr.join("sei")
	if err := c.conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	ev := tr.expectLeave("sei", ErrClientClosed)
	if got := websocket.CloseStatus(ev.reason); got != websocket.StatusNormalClosure {
		t.Errorf("CloseStatus(reason) = %v, want 1000", got)
	}
	if n := tr.room.Len(); n != 0 {
		t.Errorf("Len = %d after leave", n)
	}

	d := tr.join("dropper")
	_ = d.conn.CloseNow() // no close frame
	tr.expectLeave("dropper", ErrClientClosed)
}

func TestRateLimit(t *testing.T) {
	tr := newTestRoom(t, WithRateLimit(0.001, 2))
	c := tr.join("flood")
	for _, s := range []string{"1", "2", "3"} {
		c.send(s)
	}
	for _, s := range []string{"1", "2"} {
		if diff := cmp.Diff(frame("flood", s), c.read()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
	c.expectClose(websocket.StatusPolicyViolation, "rate limit exceeded")
	tr.expectLeave("flood", ErrRateLimited)
}

func TestOrigin(t *testing.T) {
	cross := &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://other.example:3000"}}}
	t.Run("same origin only by default", func(t *testing.T) {
		tr := newTestRoom(t)
		_, resp, err := tr.dialRaw("", cross)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin dial: err=%v resp=%v, want 403", err, resp)
		}
	})
	t.Run("allowed by option", func(t *testing.T) {
		tr := newTestRoom(t, WithOriginPatterns("other.example:3000"))
		tr.joinWith("nickname=x", cross)
	})
}

func TestNotAWebSocketRequest(t *testing.T) {
	tr := newTestRoom(t)
	resp, err := http.Get(tr.srv.URL + "?nickname=sei")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("status = %d, want 426", resp.StatusCode)
	}
}

func TestRoomsAreIndependent(t *testing.T) {
	a, b := newTestRoom(t), newTestRoom(t)
	ca, cb := a.join("a"), b.join("b")
	ca.send("only a")
	if diff := cmp.Diff(frame("a", "only a"), ca.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := a.room.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cb.send("b still works")
	if diff := cmp.Diff(frame("b", "b still works"), cb.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := b.room.Len(); got != 1 {
		t.Errorf("b.Len = %d", got)
	}
}
