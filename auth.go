package chatroom

import (
	"errors"
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

// WithAuthenticator is how the host says who a request is, instead of the
// client: it is the one way to name members from a token, a session or a
// header. By default (and with nil) the client names itself with the
// "nickname" query parameter, "unknown_{client IP}" when it gives none.
//
// authenticate runs on every upgrade request before anything else: it
// reads what the host trusts (a token in the query, a header, a session
// cookie) and returns who the client is, or an error. The Identity's
// nickname replaces the nickname query parameter, so a client cannot pass
// itself off as another; it must pass the nickname validator
// (WithNicknameValidator), as given, or the request is refused with HTTP
// 400. Hooks read the identity with Member.Identity.
//
// An error refuses the client, in the tutorial's way by default: the
// connection is accepted and at once closed with StatusUnauthorized (4001)
// and reason "Unauthorized", because browser code can read a close code
// but never an HTTP status. With WithHTTPUnauthorized the request is
// refused with HTTP 401 instead. An error that wraps ErrInvalidNickname
// says that the client is known but its name will not do: it is answered
// with HTTP 400 and the error's text, as a nickname the validator refuses
// is. Either way the client never becomes a member and no hook runs. The
// authenticator runs on the request's goroutine and may block, bounded by
// r.Context(). A panic in it answers HTTP 500.
func WithAuthenticator(authenticate func(r *http.Request) (Identity, error)) Option {
	return func(c *config) { c.authenticate = authenticate }
}

// WithHTTPUnauthorized refuses a request the authenticator rejects with
// HTTP 401 before the upgrade, instead of accepting it and closing with
// 4001. Non-browser clients see the status directly; browsers see only a
// failed connection. It has no effect without WithAuthenticator.
func WithHTTPUnauthorized() Option {
	return func(c *config) { c.authHTTP = true }
}

// Identity returns who the authenticator said the member is. Without
// WithAuthenticator it holds only the nickname.
func (m *Member) Identity() Identity { return m.identity }

// runAuthenticator runs the authenticator, turning a panic into an error.
// An error that does not wrap ErrInvalidNickname is returned wrapped in
// ErrUnauthorized.
func (c *config) runAuthenticator(r *http.Request) (id Identity, panicked bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("chatroom: authenticator panicked", "panic", p)
			panicked, err = true, fmt.Errorf("%w: authenticator panicked: %v", ErrHookPanic, p)
		}
	}()
	id, err = c.authenticate(r)
	switch {
	case errors.Is(err, ErrInvalidNickname):
	case err != nil:
		err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
	case id.Nickname == "":
		id.Nickname = id.ID
	}
	return id, false, err
}
