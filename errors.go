package chatroom

import (
	"errors"
	"fmt"

	"github.com/coder/websocket"
)

// Leave reasons. The reason an OnLeave hook receives is a LeaveError that
// wraps exactly one of them: branch on it with errors.Is, and read the close
// status the member left with from the LeaveError. ErrQueueOverflow and
// ErrWriteTimeout both wrap ErrSlowConsumer, so errors.Is(reason,
// ErrSlowConsumer) holds for either.
var (
	// ErrRoomClosed is the leave reason of every member the room closes
	// because Shutdown (close status 1001 "room closed") or Close (no close
	// frame) has begun. Methods that need an open room (Room.Broadcast,
	// Room.SendTo, Registry.Open) return it too, unwrapped: it is one event,
	// seen from a hook or from a caller.
	ErrRoomClosed = errors.New("chatroom: room closed")

	// ErrClientClosed is the leave reason when the client went away: it sent
	// a close frame, whose status the LeaveError holds, or its connection
	// broke (LeaveError.Code is websocket.StatusAbnormalClosure).
	ErrClientClosed = errors.New("chatroom: client closed the connection")

	// ErrSlowConsumer is what the two ways of falling behind have in common:
	// a member leaves with ErrQueueOverflow or ErrWriteTimeout, never with
	// ErrSlowConsumer alone, and both are errors.Is ErrSlowConsumer. Either
	// way it is closed with status 1008 "too slow".
	ErrSlowConsumer = errors.New("chatroom: member too slow")

	// ErrQueueOverflow is the leave reason when a member's send queue would
	// exceed its bounds (WithSendQueue): others sent faster than it read.
	ErrQueueOverflow = fmt.Errorf("%w: send queue overflowed", ErrSlowConsumer)

	// ErrWriteTimeout is the leave reason when one write to a member's
	// socket blocked for longer than the write timeout (WithWriteTimeout):
	// it has stopped reading.
	ErrWriteTimeout = fmt.Errorf("%w: write timed out", ErrSlowConsumer)

	// ErrPingTimeout is the leave reason when a member did not answer a
	// keepalive ping in time (WithKeepalive). Its connection is dropped
	// without a close frame: it would not be read.
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
)

// Refusals: why a connection is refused before it becomes a member. No
// leave hook runs for it; the room logs one refused before the upgrade at
// Debug, one refused after it ("chatroom: join refused") at Info.
var (
	// ErrInvalidNickname wraps every nickname validation failure (see
	// ValidateNickname, which returns it, and WithAuthenticator). The
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

	// ErrInvalidRoomName wraps every room name validation failure: HTTP 400
	// before the upgrade, and the error of ValidateRoomName and
	// Registry.Open.
	ErrInvalidRoomName = errors.New("chatroom: invalid room name")

	// ErrTooManyRooms is the reason a Registry refuses to create a room
	// beyond WithMaxRooms: HTTP 503 before the upgrade, and the error of
	// Registry.Open.
	ErrTooManyRooms = errors.New("chatroom: too many rooms")
)

// Errors returned by methods, besides ErrRoomClosed (a leave reason too),
// ErrInvalidRoomName and ErrTooManyRooms (refusals too).
var (
	// ErrMemberLeft is returned by Member.Send once the member is leaving.
	ErrMemberLeft = errors.New("chatroom: member has left")

	// ErrNoSuchMember is returned by Room.SendTo when no member has the
	// nickname.
	ErrNoSuchMember = errors.New("chatroom: no such member")

	// ErrNoSuchRoom is returned by Registry methods given the name of a room
	// that does not exist.
	ErrNoSuchRoom = errors.New("chatroom: no such room")

	// ErrNotStored: with History.Durable, the room delivered the frame but
	// its Store could not write it (Broadcast wraps the store's error).
	ErrNotStored = errors.New("chatroom: frame not written to the store")
)

// ErrHandled, returned by an OnMessage hook, drops the message as any
// refusal does, but tells the room the hook has dealt with it (a bot that
// answered a command, say): the sender gets no error frame even with
// WithErrorFrames. It is for hooks to return; the room returns it from
// nowhere.
var ErrHandled = errors.New("chatroom: message handled by the hook")

// A LeaveError is why a member left: the reason an OnLeave hook receives is
// always one. It wraps exactly one of the leave reasons (errors.Is) and
// holds the close status the connection ended with:
//
//	var le chatroom.LeaveError
//	if errors.As(reason, &le) && le.Code == websocket.StatusNormalClosure { ... }
//
// The room makes LeaveErrors; a host has no reason to. It is a value, as
// websocket.CloseError is, so that a hook can keep or change its copy.
type LeaveError struct {
	// Code and Reason are the close frame that ended the connection: for
	// ErrClientClosed the one the client sent (websocket.StatusNoStatusRcvd
	// if it sent no status), otherwise the one the room sent. Code is
	// websocket.StatusAbnormalClosure, 1006, which no close frame carries,
	// when the connection ended without one: the client's connection
	// broke, or the room dropped it (ErrPingTimeout, Room.Close). The
	// client reads the same code and reason (a browser's CloseEvent too),
	// unless the connection broke before the close frame reached it.
	Code   websocket.StatusCode
	Reason string

	kind   error // the leave reason, one of the sentinels above
	send   bool  // the room closes with Code and Reason; else it drops the connection
	detail error // optional underlying error, for logs and errors.Is
}

// Error describes the reason, the close reason and the underlying error.
func (e LeaveError) Error() string {
	s := e.kind.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.detail != nil {
		s += ": " + e.detail.Error()
	}
	return s
}

// Unwrap returns the leave reason and, if there is one, the underlying
// error (a websocket.CloseError the client sent, the error of a hook).
func (e LeaveError) Unwrap() []error {
	if e.detail == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.detail}
}

// cause returns the reason a member leaves or is refused, with the close
// frame the room sends: code 0 sends none and drops the connection. For
// ErrClientClosed the client's own close frame, if detail holds one, is
// recorded instead.
func cause(kind error, code websocket.StatusCode, reason string, detail error) error {
	e := LeaveError{Code: code, Reason: reason, kind: kind, send: code != 0, detail: detail}
	if kind == ErrClientClosed {
		e.send = false
		e.Code, e.Reason = websocket.StatusAbnormalClosure, ""
		var ce websocket.CloseError
		if errors.As(detail, &ce) {
			e.Code, e.Reason = ce.Code, ce.Reason
		}
	} else if code == 0 {
		e.Code = websocket.StatusAbnormalClosure
	}
	return e
}

// closeFrame returns the close status and reason to send for err, or 0 to
// drop the connection without a close frame; anything that is not a
// LeaveError is an internal error.
func closeFrame(err error) (websocket.StatusCode, string) {
	var e LeaveError
	if errors.As(err, &e) {
		if !e.send {
			return 0, ""
		}
		return e.Code, e.Reason
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

// The names ReasonLabel gives the leave reasons, for metrics labels and log
// attributes; ReasonLabels lists them.
const (
	ReasonNormal       = "normal"       // ErrClientClosed with status 1000, 1001, or none (1005)
	ReasonAbnormal     = "abnormal"     // ErrClientClosed otherwise: the connection broke (1006), or another status
	ReasonSlow         = "slow"         // ErrSlowConsumer: ErrQueueOverflow or ErrWriteTimeout
	ReasonPingTimeout  = "ping_timeout" // ErrPingTimeout
	ReasonInvalid      = "invalid"      // ErrInvalidMessage, ErrUnsupportedData
	ReasonTooBig       = "too_big"      // ErrMessageTooBig
	ReasonRateLimited  = "rate_limited" // ErrRateLimited
	ReasonRefused      = "refused"      // ErrRefused (a join or message hook, Member.Close), ErrNicknameTaken
	ReasonUnauthorized = "unauthorized" // ErrUnauthorized
	ReasonHookPanic    = "hook_panic"   // ErrHookPanic
	ReasonShutdown     = "shutdown"     // ErrRoomClosed: Shutdown, Close
	ReasonOther        = "other"        // anything else
)

// ReasonLabels returns every name ReasonLabel returns, in the order of the
// Reason constants.
func ReasonLabels() []string {
	return []string{ReasonNormal, ReasonAbnormal, ReasonSlow, ReasonPingTimeout, ReasonInvalid, ReasonTooBig,
		ReasonRateLimited, ReasonRefused, ReasonUnauthorized, ReasonHookPanic, ReasonShutdown, ReasonOther}
}

// ReasonLabel names why a member left, or why a connection was refused
// after the upgrade, with one of a fixed set of names (the Reason
// constants): the one mapping from leave reasons to a metric's label or a
// log line's "reason" attribute, so that their cardinality is bounded.
func ReasonLabel(reason error) string {
	kind := reason
	e, ok := reason.(LeaveError) // as the room gives it: no allocation
	if ok {
		kind = e.kind // the one leave reason, whatever the detail wraps
	}
	if errors.Is(kind, ErrClientClosed) {
		if !ok {
			e = leaveErrorIn(reason)
		}
		switch e.Code {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
			return ReasonNormal
		}
		return ReasonAbnormal
	}
	for _, r := range [...]struct {
		kind  error
		label string
	}{
		{ErrSlowConsumer, ReasonSlow},
		{ErrPingTimeout, ReasonPingTimeout},
		{ErrInvalidMessage, ReasonInvalid},
		{ErrUnsupportedData, ReasonInvalid},
		{ErrMessageTooBig, ReasonTooBig},
		{ErrRateLimited, ReasonRateLimited},
		{ErrHookPanic, ReasonHookPanic},
		{ErrUnauthorized, ReasonUnauthorized},
		{ErrRefused, ReasonRefused},
		{ErrNicknameTaken, ReasonRefused},
		{ErrRoomClosed, ReasonShutdown},
	} {
		if errors.Is(kind, r.kind) {
			return r.label
		}
	}
	return ReasonOther
}

// leaveErrorIn returns the LeaveError in err's chain, or the zero one.
func leaveErrorIn(err error) LeaveError {
	var e LeaveError
	errors.As(err, &e)
	return e
}
