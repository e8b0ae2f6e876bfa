package chatroom

import (
	"time"

	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
)

// Status codes of this library's own, in the private range 4000–4999 that
// RFC 6455 leaves to applications. Close frames and error frames carry them.
const (
	// StatusUnauthorized closes a connection the authenticator refused,
	// with reason "Unauthorized", as the tutorial does (see WithAuthenticator).
	StatusUnauthorized websocket.StatusCode = 4001
	// StatusNicknameTaken closes a connection whose nickname is already
	// present, with reason "nickname taken" (see WithUniqueNicknames).
	StatusNicknameTaken websocket.StatusCode = 4009
	// StatusNoSuchMember is the code of the error frame that answers a
	// direct message to a nickname not present in the room.
	StatusNoSuchMember websocket.StatusCode = 4404
)

// WithEnvelope puts every frame in the envelope: besides "nickname" and
// "message" it carries "type" (see MessageType), "time" (RFC 3339, UTC,
// milliseconds, from the server's clock) and "id" (see Message.ID):
//
//	{"type":"message","id":1763884800000001,"time":"2026-11-23T08:00:00.000Z","nickname":"sei","message":"hi"}
//
// What clients send does not change, except that a message may carry a
// "ref", which the room answers with an ack frame (TypeAck) once it took the
// message, and which makes a resend of it harmless (PROTOCOL.md,
// "Acknowledgements and resends"). Off by default: the default protocol is
// exactly {"nickname","message"}, and ignores "ref". WithNotices, WithPresence, WithErrorFrames
// and WithDirectMessages turn it on, since their frames need a type.
//
// A room numbers its frames from the time it was created, so that a room
// created again (after a restart, say) numbers above the old one and a
// resuming client learns that its history is gone (see WithHistory), or
// takes the numbers of a broker that keeps the cluster's history
// (WithBroker). PROTOCOL.md says how IDs are made.
func WithEnvelope() Option {
	return func(c *config) { c.envelope = true }
}

// WithClock sets the clock that stamps envelope frames and numbers a new
// room's frames (default time.Now). Tests and examples use it for
// reproducible output. It has no effect without the envelope or a history.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithName names the room, for logs, for stores and for hooks (Room.Name);
// by default it has no name. A Registry names its rooms itself: among its
// rooms' options (WithRoomOptions), WithName has no effect.
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithErrorFrames answers bad input with an error frame to the sender
// instead of closing its connection:
//
//	{"type":"error","id":7,"time":"…","message":"invalid JSON","code":1007}
//
// The code is the close status the same fault closes with otherwise: 1003
// for a binary frame, 1007 for a frame that is not {"message": string}, 1008
// for "rate limit exceeded" (WithRateLimit) and for "message refused" (the
// message hook returned an error). The message is dropped and the member
// stays. A message over the size limit still closes with 1009, since the
// rest of it is never read. It turns on WithEnvelope.
func WithErrorFrames() Option {
	return func(c *config) { c.errorFrames = true }
}

// WithExcludeSender sends members' messages to every member but the
// connection that sent them, as the tutorial's broadcast_to_room(exclude=…)
// does. By default the sender receives its own messages too, which is how a
// client of the original protocol learns that its message went out. A
// direct message (WithDirectMessages) still reaches the sender's
// connection: it is the sender's only record of it.
func WithExcludeSender() Option {
	return func(c *config) { c.excludeSender = true }
}

// stamps reports whether frames get an ID and a time: when clients see
// them, or when a history keeps them.
func (c *config) stamps() bool { return c.envelope || c.history != nil }

// encode returns msg in the room's protocol as a complete WebSocket text
// frame, header included, in one allocation: encoded once, the same bytes
// go to every member (coder/websocket has no prepared-message API).
func (rm *Room) encode(msg Message) []byte {
	n := msg.encodedLen()
	if rm.cfg.envelope {
		n = msg.envelopeLen()
	}
	buf := make([]byte, socket.MaxFrameHeader, socket.MaxFrameHeader+n)
	return socket.TextFrame(rm.appendPayload(buf, msg))
}

// appendPayload appends msg in the room's protocol to b.
func (rm *Room) appendPayload(b []byte, msg Message) []byte {
	if rm.cfg.envelope {
		return msg.appendEnvelope(b)
	}
	return msg.appendJSON(b)
}

// errorFrame is the error frame that answers a member's bad input.
func errorFrame(code websocket.StatusCode, reason string) Message {
	return Message{Type: TypeError, Code: int(code), Text: reason}
}
