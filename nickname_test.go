package chatroom

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// nfcJose and nfdJose are one name in the two Unicode normal forms.
const (
	nfcJose = "Jos\u00e9"  // é as one code point
	nfdJose = "Jose\u0301" // e and a combining acute accent
)

// refusal is how a client sees a connection refused: an HTTP status before
// the upgrade, or a close status after it.
type refusal struct {
	HTTPStatus int
	Close      websocket.StatusCode
	Reason     string
}

// dialRefusal connects with the nickname and reports how it was refused.
// The body of an HTTP refusal is returned too.
func dialRefusal(t *testing.T, tr *testRoom, nickname string) (refusal, string) {
	t.Helper()
	return dialRefusalWith(t, tr, url.Values{nicknameParam: {nickname}}.Encode(), nil)
}

// dialRefusalWith is dialRefusal with a query and dial options of the
// test's.
func dialRefusalWith(t *testing.T, tr *testRoom, query string, opts *websocket.DialOptions) (refusal, string) {
	t.Helper()
	conn, resp, err := tr.dialRaw(query, opts)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial %q: %v", query, err)
		}
		body, _ := io.ReadAll(resp.Body)
		return refusal{HTTPStatus: resp.StatusCode}, string(body)
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, _, err = conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("dial %q: joined (read: %v), want a refusal", query, err)
	}
	return refusal{Close: ce.Code, Reason: ce.Reason}, ""
}

// Names that render like another, or like a name the server makes, are
// refused: with HTTP 400 before the upgrade when the PRECIS Nickname profile
// refuses them, or with 4009 when they are another form of a name present.
func TestNicknamesThatCouldImpersonate(t *testing.T) {
	badRequest := refusal{HTTPStatus: http.StatusBadRequest}
	taken := refusal{Close: StatusNicknameTaken, Reason: reasonNicknameTaken}
	tests := []struct {
		name, nickname string
		want           refusal
		body           string // in the body of an HTTP refusal
	}{
		{"zero-width joiner", "bob\u200d", badRequest, "contextual rule"},
		{"zero-width joiner inside", "b\u200dob", badRequest, "contextual rule"},
		{"zero-width space", "bo\u200bb", badRequest, "disallowed rune"},
		{"byte order mark", "\ufeffbob", badRequest, "disallowed rune"},
		{"soft hyphen", "bo\u00adb", badRequest, "disallowed rune"},
		{"right-to-left mark", "bob\u200f", badRequest, "disallowed rune"},
		{"only spaces", "   ", badRequest, "empty"},
		{"only no-break spaces", "\u00a0\u3000", badRequest, "empty"},
		{"server-made name", "unknown_127.0.0.1", badRequest, "reserved"},
		{"server-made name in capitals", "UNKNOWN_::1", badRequest, "reserved"},
		{"server-made name with a space", " unknown_10.0.0.1", badRequest, "reserved"},
		{"another case", "Bob", taken, ""},
		{"fullwidth", "\uff22\uff4f\uff42", taken, ""}, // Ｂｏｂ
		{"surrounding spaces", " bob ", taken, ""},
		{"decomposed form of a composed name", nfdJose, taken, ""},
		{"composed form in another case", "JOS\u00c9", taken, ""},
	}
	tr := newTestRoom(t, WithUniqueNicknames())
	bob := tr.join("bob")
	tr.join(url.QueryEscape(nfcJose))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, body := dialRefusal(t, tr, tt.nickname)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("refusal of %q (-want +got):\n%s", tt.nickname, diff)
			}
			if tt.want.HTTPStatus != 0 && (!strings.Contains(body, "invalid nickname") || !strings.Contains(body, tt.body)) {
				t.Errorf("body = %q, want it to mention %q", body, tt.body)
			}
		})
	}
	if diff := cmp.Diff([]string{"bob", nfcJose}, tr.room.Nicknames()); diff != "" {
		t.Errorf("Nicknames after the refusals (-want +got):\n%s", diff)
	}

	// Once bob has left, the name is free in any case.
	_ = bob.conn.CloseNow()
	tr.expectLeave("bob", ErrClientClosed)
	c := tr.join("Bob")
	c.send("back")
	if diff := cmp.Diff(frame("Bob", "back"), c.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The room shows a client's nickname in its prepared form; a name already in
// that form is shown byte for byte as sent.
func TestNicknameIsShownPrepared(t *testing.T) {
	tests := []struct{ sent, shown string }{
		{"sei", "sei"},
		{"Ann", "Ann"},
		{"田中", "田中"},
		{"🇯🇵", "🇯🇵"},
		{nfcJose, nfcJose},
		{nfdJose, nfcJose},
		{"  Ann\u00a0\u00a0Lee ", "Ann Lee"},
		{"\uff22\uff4f\uff42", "Bob"},
	}
	for _, tt := range tests {
		t.Run(tt.sent, func(t *testing.T) {
			tr := newTestRoom(t)
			c := tr.joinWith(url.Values{nicknameParam: {tt.sent}}.Encode(), nil)
			if got := c.member.Nickname(); got != tt.shown {
				t.Errorf("Nickname() = %q, want %q", got, tt.shown)
			}
			c.send("hi")
			if diff := cmp.Diff(frame(tt.shown, "hi"), c.read()); diff != "" {
				t.Errorf("frame (-want +got):\n%s", diff)
			}
		})
	}
}

// The "unknown_" prefix is refused only in the nickname parameter: the
// server's own name for a client without one, and a name the host assigns,
// keep it.
func TestReservedPrefixOnlyBindsClients(t *testing.T) {
	t.Run("server-made", func(t *testing.T) {
		tr := newTestRoom(t, WithUniqueNicknames())
		c := tr.joinWith("nickname=", nil)
		if got := c.member.Nickname(); got != "unknown_127.0.0.1" {
			t.Errorf("Nickname() = %q, want unknown_127.0.0.1", got)
		}
	})
	t.Run("WithAuthenticator", func(t *testing.T) {
		tr := newTestRoom(t, WithAuthenticator(func(*http.Request) (Identity, error) { return Identity{Nickname: "unknown_bot"}, nil }))
		if got := tr.join("ignored").member.Nickname(); got != "unknown_bot" {
			t.Errorf("Nickname() = %q, want unknown_bot", got)
		}
	})
	t.Run("custom validator", func(t *testing.T) {
		tr := newTestRoom(t, WithNicknameValidator(func(string) error { return nil }))
		got, body := dialRefusal(t, tr, "Unknown_x")
		if diff := cmp.Diff(refusal{HTTPStatus: http.StatusBadRequest}, got); diff != "" {
			t.Errorf("refusal (-want +got):\n%s", diff)
		}
		if !strings.Contains(body, "reserved") {
			t.Errorf("body = %q, want it to say the prefix is reserved", body)
		}
		// A name the profile refuses reaches a validator that accepts it as sent.
		c := tr.joinWith(url.Values{nicknameParam: {"bob\u200d"}}.Encode(), nil)
		if got := c.member.Nickname(); got != "bob\u200d" {
			t.Errorf("Nickname() = %q, want it as sent", got)
		}
	})
}

// A room name made only of dots is refused before the upgrade. Sent as
// %2E%2E, ".." passes http.ServeMux, which cleans only literal dot segments,
// to the {room} wildcard; the browser, for its part, would turn
// /rooms/../chat into /chat before sending it.
func TestRoomNameOnlyDotsIsRefused(t *testing.T) {
	tg := newTestRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, room := range []string{"%2E", "%2E%2E", "%2e%2e", "...", "%2E%2E%2E"} {
		_, resp, err := websocket.Dial(ctx, tg.url(room, "nickname=ann"), nil)
		if err == nil || resp == nil {
			t.Fatalf("dial /rooms/%s/chat: err=%v, want HTTP 400", room, err)
		}
		body, _ := io.ReadAll(resp.Body)
		got := struct {
			Status int
			Body   string
		}{resp.StatusCode, string(body)}
		want := struct {
			Status int
			Body   string
		}{http.StatusBadRequest, "chatroom: invalid room name: only dots\n"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("dial /rooms/%s/chat (-want +got):\n%s", room, diff)
		}
		tg.waitDone()
	}
	if rooms := tg.reg.Rooms(); len(rooms) != 0 {
		t.Errorf("Rooms = %v, want none", rooms)
	}
	tg.join("a..b", "ann") // dots among other characters are fine
}

func FuzzPrepareNickname(f *testing.F) {
	for _, s := range []string{
		"sei", "Ann", "田中", "", " ", "   ", "bob\u200d", "bo\u200bb", "\ufeffbob", "bo\u00adb", "bob\u200f",
		nfdJose, nfcJose, "unknown_127.0.0.1", "\uff22\uff4f\uff42", "  a  b  ", "\ufdfa", "\u2168", "\xff",
		"a\x00", "\u202e", "👨\u200d👩\u200d👧", "क्\u200dष", strings.Repeat("x", MaxNicknameLength+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := PrepareNickname(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidNickname) {
				t.Fatalf("PrepareNickname(%q): error %v does not wrap ErrInvalidNickname", s, err)
			}
			if ValidateNickname(s) == nil {
				t.Fatalf("ValidateNickname(%q) accepts what PrepareNickname refuses: %v", s, err)
			}
			return
		}
		if err := ValidateNickname(p); err != nil {
			t.Fatalf("PrepareNickname(%q) = %q, which ValidateNickname refuses: %v", s, p, err)
		}
		if again, err := PrepareNickname(p); again != p || err != nil {
			t.Fatalf("PrepareNickname(%q) = %q, but PrepareNickname(%q) = %q, %v", s, p, p, again, err)
		}
		if n := utf8.RuneCountInString(p); n == 0 || n > MaxNicknameLength || !utf8.ValidString(p) {
			t.Fatalf("PrepareNickname(%q) = %q: %d characters", s, p, n)
		}
	})
}
