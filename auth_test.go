package chatroom

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tokenAuth accepts "Bearer <nickname>-token" and names the user by it.
func tokenAuth(r *http.Request) (Identity, error) {
	tokens := map[string]Identity{
		"ann-token": {ID: "u1", Nickname: "ann", Data: "admin"},
		"bob-token": {ID: "bob"},
	}
	id, ok := tokens[r.URL.Query().Get("token")]
	if !ok {
		return Identity{}, errors.New("unknown token")
	}
	return id, nil
}

func TestAuthFailureClosesWith4001(t *testing.T) {
	joinHookRan := false
	tr := newTestRoom(t, WithAuthenticator(tokenAuth), OnJoin(func(context.Context, *Member) error {
		joinHookRan = true
		return nil
	}))
	for _, query := range []string{"", "token=forged", "nickname=ann"} {
		conn, _, err := tr.dialRaw(query, nil)
		if err != nil {
			t.Fatalf("dial %q: %v (the upgrade must succeed so that browsers can read 4001)", query, err)
		}
		c := &client{t: t, conn: conn}
		c.expectClose(StatusUnauthorized, "Unauthorized")
	}
	if joinHookRan || tr.room.Len() != 0 {
		t.Errorf("an unauthenticated client joined")
	}
}

func TestAuthFailureAsHTTP401(t *testing.T) {
	tr := newTestRoom(t, WithAuthenticator(tokenAuth), WithHTTPUnauthorized())
	_, resp, err := tr.dialRaw("token=forged", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial: err=%v resp=%v, want HTTP 401", err, resp)
	}
}

func TestAuthenticatedIdentity(t *testing.T) {
	identities := make(chan Identity, 2)
	tr := newTestRoom(t, WithAuthenticator(tokenAuth), OnJoin(func(_ context.Context, m *Member) error {
		identities <- m.Identity()
		return nil
	}))
	ann := tr.joinWith("token=ann-token&nickname=bob", nil) // the token wins over ?nickname
	bob := tr.joinWith("token=bob-token", nil)
	want := []Identity{{ID: "u1", Nickname: "ann", Data: "admin"}, {ID: "bob", Nickname: "bob"}}
	got := []Identity{<-identities, <-identities}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identities (-want +got):\n%s", diff)
	}
	ann.send("hi")
	if diff := cmp.Diff(frame("ann", "hi"), bob.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A panicking authenticator answers HTTP 500 with nothing of the panic's
// value, which may hold a secret; the log has it.
func TestAuthenticatorPanicAnswers500(t *testing.T) {
	tr := newTestRoom(t, WithAuthenticator(func(*http.Request) (Identity, error) { panic("secret-db-password") }))
	_, resp, err := tr.dialRaw("", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("dial: err=%v resp=%v, want HTTP 500", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), "secret") || !strings.Contains(string(body), "Internal Server Error") {
		t.Errorf("500 body %q, want the status text and nothing of the panic", body)
	}
}
