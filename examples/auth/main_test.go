package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

const password = "open sesame"

func TestLogin(t *testing.T) {
	srv := start(t, "-login-burst", "100") // a dozen logins at once: see TestLoginThrottle
	for _, tt := range []struct {
		name, contentType, body string
		status                  int
		answer                  string // "": a token, checked below
	}{
		{"form", "application/x-www-form-urlencoded", "nickname=sei&password=open+sesame", 200, ""},
		{"JSON", "application/json", `{"nickname":"ann","password":"open sesame"}`, 200, ""},
		{"JSON with charset", "application/json; charset=utf-8", `{"nickname":"kai","password":"open sesame"}`, 200, ""},
		{"wrong password", "application/x-www-form-urlencoded", "nickname=sei&password=guess", 401, "wrong password\n"},
		{"no password", "application/json", `{"nickname":"sei"}`, 401, "wrong password\n"},
		{"no nickname", "application/x-www-form-urlencoded", "password=open+sesame", 400, "chatroom: invalid nickname: empty\n"},
		{"bad nickname", "application/json", `{"nickname":"a\u0007b","password":"open sesame"}`, 400, "chatroom: invalid nickname: contains control character U+0007\n"},
		{"bad JSON", "application/json", `{"nickname":`, 400, "malformed request\n"},
		{"bad form", "application/x-www-form-urlencoded", "nickname=%zz", 400, "malformed request\n"},
		// net/http then waits half a second before it closes the connection.
		{"too big", "application/json", `{"nickname":"` + strings.Repeat("x", 5000) + `"}`, 413, "request too large\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, srv.Ready, tt.contentType, tt.body)
			if status != tt.status {
				t.Fatalf("POST /login = %d %q, want %d", status, body, tt.status)
			}
			if tt.answer != "" {
				if body != tt.answer {
					t.Errorf("POST /login = %q, want %q", body, tt.answer)
				}
				return
			}
			var got loginResponse
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("POST /login = %q: %v", body, err)
			}
			if got.Token == "" || time.Until(got.Expires) < 59*time.Minute || time.Until(got.Expires) > time.Hour {
				t.Errorf("POST /login = %+v, want a token valid for an hour", got)
			}
		})
	}
	resp, err := http.Get("http://" + srv.Ready + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /login = %d, want 405", resp.StatusCode)
	}
}

func TestChatWithToken(t *testing.T) {
	srv := start(t)
	seiToken := loginAs(t, srv.Ready, "sei")
	annToken := loginAs(t, srv.Ready, "ann")

	// A browser puts the token in the query; the nickname parameter is
	// ignored: the token names the member.
	sei := srv.chat.Connect("admin", chatroomtest.Query("token", seiToken))
	sei.Send("hello")
	sei.Expect(msg("sei", "hello")) // sei has joined
	// Another client sends it in a header.
	ann := srv.chat.Connect("", chatroomtest.Header("Authorization", "Bearer "+annToken))
	ann.Send("hi sei")
	for _, c := range []*chatroomtest.Client{ann, sei} {
		c.Expect(msg("ann", "hi sei"))
	}

	// SIGINT's path: every member receives 1001 and run returns nil.
	if err := srv.Stop(); err != nil {
		t.Errorf("run = %v, want nil", err)
	}
	for _, c := range []*chatroomtest.Client{sei, ann} {
		c.ExpectCloseReason(websocket.StatusGoingAway, "room closed")
	}
}

func TestBadTokens(t *testing.T) {
	keyFile := writeKey(t)
	srv := start(t, "-key-file", keyFile)
	key, err := loadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := (&signer{key: key, ttl: time.Hour, now: time.Now}).issue("sei")
	p, sig, _ := strings.Cut(good, ".")
	forged, _ := (&signer{key: []byte(strings.Repeat("k", 32)), ttl: time.Hour, now: time.Now}).issue("sei")
	expired, _ := (&signer{key: key, ttl: time.Hour, now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}).issue("sei")
	otherSub, _ := (&signer{key: key, ttl: time.Hour, now: time.Now}).issue("admin")
	op, _, _ := strings.Cut(otherSub, ".")

	for _, tt := range []struct{ name, token string }{
		{"none", ""},
		{"garbage", "garbage"},
		{"forged", forged},
		{"expired", expired},
		{"swapped claims", op + "." + sig},
		{"bad base64", p + "." + sig + "!"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// By default, as in the tutorial: accepted, then closed with 4001.
			srv.chat.Connect("", chatroomtest.Query("token", tt.token)).ExpectCloseReason(chatroom.StatusUnauthorized, "Unauthorized")
			srv.chat.Connect("", chatroomtest.Header("Authorization", "Bearer "+tt.token)).ExpectCloseReason(chatroom.StatusUnauthorized, "Unauthorized")
		})
	}
	// The signed token itself is fine.
	c := srv.chat.Connect("", chatroomtest.Query("token", good))
	c.Send("still works")
	c.Expect(msg("sei", "still works"))
}

func TestHTTPUnauthorized(t *testing.T) {
	srv := start(t, "-http-unauthorized")
	c, resp, err := srv.chat.Dial("", chatroomtest.Query("token", "garbage"))
	if c != nil {
		t.Fatal("upgraded with a bad token")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%v, want HTTP 401", err)
	}
	// A good token is let in as before.
	c = srv.chat.Connect("", chatroomtest.Query("token", loginAs(t, srv.Ready, "sei")))
	c.Send("in")
	c.Expect(msg("sei", "in"))
}

// A member is closed when its token expires. The token below expires in one
// to two seconds (its expiry is in whole seconds): the test waits for the
// close, not for a clock.
func TestSessionEndsAtExpiry(t *testing.T) {
	keyFile := writeKey(t)
	srv := start(t, "-key-file", keyFile)
	key, err := loadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := (&signer{key: key, ttl: 2 * time.Second, now: time.Now}).issue("sei")
	c := srv.chat.Connect("", chatroomtest.Query("token", token))
	c.Send("quick")
	c.Expect(msg("sei", "quick"))
	c.ExpectCloseReason(chatroom.StatusUnauthorized, "token expired")
}

// The server closes idle keep-alive connections after -idle-timeout, while
// a member outlives -read-timeout and -write-timeout: those bound ordinary
// requests, such as a login's body, not WebSockets.
func TestTimeouts(t *testing.T) {
	limits := servetest.Short()
	srv := start(t, servetest.Args(limits)...)
	joinedAt := time.Now()
	sei := srv.chat.Connect("", chatroomtest.Query("token", loginAs(t, srv.Ready, "sei")))
	sei.Send("hello")
	sei.Expect(msg("sei", "hello"))

	// GET /login: 405, and the connection is kept.
	t.Log(servetest.ExpectIdleClosed(t, srv.Ready, "/login", 200, limits.IdleTimeout))

	servetest.ExpectOutlived(t, limits, joinedAt)
	sei.Send("still here")
	sei.Expect(msg("sei", "still here"))
}

func TestBadFlags(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-nope"},
		{"extra"},
		{"-password", ""},
		{"-ttl", "0s"},
		{"-key-file", short},
		{"-key-file", filepath.Join(t.TempDir(), "missing")},
		{"-login-burst", "0"},
		{"-login-interval", "0s"},
		{"-idle-timeout", "0s"},
	} {
		if err := run(t.Context(), args, io.Discard, nil); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}

// msg is a frame of the default protocol, {"nickname","message"}.
func msg(nickname, text string) chatroom.Message {
	return chatroom.Message{Nickname: nickname, Text: text}
}

// example is one run of the example on a loopback port.
type example struct {
	*servetest.Server[string]
	chat *chatroomtest.Server // connects the kit's clients to the room at /chat
}

// start runs the example on 127.0.0.1 with the test's password and args,
// and shuts it down when the test ends.
func start(t *testing.T, args ...string) *example {
	t.Helper()
	s := servetest.Start(t, run, append([]string{"-addr", "127.0.0.1:0", "-password", password}, args...)...)
	return &example{Server: s, chat: chatroomtest.Remote(t, "ws://"+s.Ready+"/chat")}
}

// writeKey writes a signing key to a file, as an operator would with
// `openssl rand -hex 32 > key`.
func writeKey(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(strings.Repeat("0123456789abcdef", 4)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func post(t *testing.T, addr, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/login", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, b := servetest.Do(t, req)
	return resp.StatusCode, string(b)
}

// loginAs logs in and returns the token.
func loginAs(t *testing.T, addr, nickname string) string {
	t.Helper()
	status, body := post(t, addr, "application/x-www-form-urlencoded",
		url.Values{"nickname": {nickname}, "password": {password}}.Encode())
	var got loginResponse
	if err := json.Unmarshal([]byte(body), &got); status != 200 || err != nil || got.Nickname != nickname {
		t.Fatalf("login as %s = %d %q (%v)", nickname, status, body, err)
	}
	return got.Token
}
