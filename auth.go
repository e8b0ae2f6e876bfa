package chatroom

import (
	"fmt"
	"net/http"
)

// Identity is who an authenticator says a client is.
type Identity struct {
	// ID is the host's identifier for the user (an account ID, a token's
	// subject). The room never shows it to other members.
	ID string
	// Nickname is the name the other members see. Empty means ID.
	Nickname string
	// Data is anything the host wants at hand in hooks: roles, claims.
	Data any
}

const reasonUnauthorized = "Unauthorized"

// WithAuthenticator checks every upgrade request with authenticate before
// anything else: it reads a token from the query, a header or a cookie (the
// host's choice) and returns who the client is, or an error.
//
// The Identity's nickname replaces the nickname query parameter, so a client
// cannot pass itself off as another; it must still pass the nickname
// validator. Hooks read it with Member.Identity.
//
// On an error the default is the tutorial's: the connection is accepted and
// at once closed with StatusUnauthorized (4001) and reason "Unauthorized",
// because browser code can read a close code but never an HTTP status. With
// WithHTTPUnauthorized the request is refused with HTTP 401 instead. Either
// way the client never becomes a member and no hook runs. The authenticator
// runs on the request's goroutine and may block, bounded by r.Context(). A
// panic in it answers HTTP 500.
func WithAuthenticator(authenticate func(r *http.Request) (Identity, error)) Option {
	return func(c *config) { c.authenticate = authenticate }
}

// WithHTTPUnauthorized refuses a request the authenticator rejects with
// HTTP 401 before the upgrade, instead of accepting it and closing with
// 4001. Non-browser clients see the status directly; browsers see only a
// failed connection.
func WithHTTPUnauthorized() Option {
	return func(c *config) { c.authHTTP = true }
}

// Identity returns who the authenticator said the member is. Without
// WithAuthenticator it holds only the nickname.
func (m *Member) Identity() Identity { return m.identity }

// runAuthenticator runs the authenticator, turning a panic into an error.
func (c *config) runAuthenticator(r *http.Request) (id Identity, panicked bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("chatroom: authenticator panicked", "panic", p)
			panicked, err = true, fmt.Errorf("%w: authenticator panicked: %v", ErrHookPanic, p)
		}
	}()
	id, err = c.authenticate(r)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
	} else if id.Nickname == "" {
		id.Nickname = id.ID
	}
	return id, false, err
}
