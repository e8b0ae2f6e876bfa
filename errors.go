package chatroom

import (
	"errors"

	"github.com/coder/websocket"
)

// Sentinel errors. The leave hook receives an error that wraps exactly one of
// the reasons below; branch on them with errors.Is.
var (
	// ErrRoomClosed is returned by Broadcast and Send once Shutdown or Close
	// has begun, and is the leave reason of every member the room closes
	// (close status 1001).
	ErrRoomClosed = errors.New("chatroom: room closed")

	// ErrClientClosed is the leave reason when the client went away: it sent
	// a close frame or its connection broke. The client's close status, if
	// any, is in the chain: websocket.CloseStatus(err).
	ErrClientClosed = errors.New("chatroom: client closed the connection")

	// ErrSlowConsumer is the leave reason when a member fell too far behind:
	// its send queue overflowed, or one write to it took longer than the
	// write timeout (close status 1008, reason "too slow").
	ErrSlowConsumer = errors.New("chatroom: member too slow")

	// ErrPingTimeout is the leave reason when a member did not answer a
	// keepalive ping in time. Its connection is dropped without a close
	// frame: it would not be read.
	ErrPingTimeout = errors.New("chatroom: ping timeout")

	// ErrInvalidMessage is the leave reason when a client sent a text frame
	// that is not valid UTF-8 or not a JSON object with a string "message"
	// field (close status 1007).
	ErrInvalidMessage = errors.New("chatroom: invalid message")

	// ErrUnsupportedData is the leave reason when a client sent a binary
	// frame (close status 1003).
	ErrUnsupportedData = errors.New("chatroom: binary messages are not supported")

	// ErrMessageTooBig is the leave reason when a client sent a message over
	// the size limit set by WithMaxMessageSize (close status 1009).
	ErrMessageTooBig = errors.New("chatroom: message too big")

	// ErrRateLimited is the leave reason when a client sent messages faster
	// than WithRateLimit allows (close status 1008, reason "rate limit exceeded").
	ErrRateLimited = errors.New("chatroom: rate limit exceeded")

	// ErrHookPanic is the leave reason when a hook panicked while handling
	// this member (close status 1011). The panic value is in the error text.
	ErrHookPanic = errors.New("chatroom: hook panicked")

	// ErrRefused is the leave reason when the message hook refused a message
	// with an error that carries a websocket.CloseError, and the reason the
	// member is closed by Member.Close. The close status is the one given.
	ErrRefused = errors.New("chatroom: closed by the host")

	// ErrMemberLeft is returned by Member.Send once the member is leaving.
	ErrMemberLeft = errors.New("chatroom: member has left")

	// ErrInvalidNickname wraps every nickname validation failure. The
	// handler answers it with HTTP 400 before upgrading.
	ErrInvalidNickname = errors.New("chatroom: invalid nickname")

	// ErrUnauthorized is the reason a connection is refused when the
	// authenticator returned an error (close status 4001 "Unauthorized", or
	// HTTP 401 with WithHTTPUnauthorized). The authenticator's error is in
	// the chain.
	ErrUnauthorized = errors.New("chatroom: unauthorized")

	// ErrNicknameTaken is the reason a connection is refused when its
	// nickname is already present and WithUniqueNicknames is in force
	// (close status 4009 "nickname taken").
	ErrNicknameTaken = errors.New("chatroom: nickname taken")

	// ErrNoSuchMember is returned by Room.SendTo when no member has the
	// nickname.
	ErrNoSuchMember = errors.New("chatroom: no such member")

	// ErrNoSuchRoom is returned by Registry methods given the name of a room
	// that does not exist.
	ErrNoSuchRoom = errors.New("chatroom: no such room")

	// ErrTooManyRooms is the reason a Registry refuses to create a room
	// beyond WithMaxRooms (HTTP 503 before the upgrade).
	ErrTooManyRooms = errors.New("chatroom: too many rooms")

	// ErrInvalidRoomName wraps every room name validation failure (HTTP 400
	// before the upgrade).
	ErrInvalidRoomName = errors.New("chatroom: invalid room name")

	// ErrHandled, returned by an OnMessage hook, drops the message as any
	// refusal does, but tells the room the hook has dealt with it (a bot
	// that answered a command, say): the sender gets no error frame even
	// with WithErrorFrames.
	ErrHandled = errors.New("chatroom: message handled by the hook")
)

// closeCause is why a member leaves together with the close frame that tells
// the client. It wraps one of the sentinel errors above.
type closeCause struct {
	kind   error
	code   websocket.StatusCode // 0: send no close frame, just drop the connection
	reason string               // at most 123 bytes, the limit of a close frame
	detail error                // optional underlying error, for logs and errors.Is
}

func (c *closeCause) Error() string {
	s := c.kind.Error()
	if c.reason != "" {
		s += ": " + c.reason
	}
	if c.detail != nil {
		s += ": " + c.detail.Error()
	}
	return s
}

func (c *closeCause) Unwrap() []error {
	if c.detail == nil {
		return []error{c.kind}
	}
	return []error{c.kind, c.detail}
}

func cause(kind error, code websocket.StatusCode, reason string, detail error) error {
	return &closeCause{kind: kind, code: code, reason: reason, detail: detail}
}

// closeFrame returns the close status and reason to send for err; anything
// that is not a closeCause is an internal error.
func closeFrame(err error) (websocket.StatusCode, string) {
	var c *closeCause
	if errors.As(err, &c) {
		return c.code, c.reason
	}
	return websocket.StatusInternalError, "internal error"
}

// truncateReason cuts a close reason to the 123 bytes a close frame can carry,
// on a rune boundary.
func truncateReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
