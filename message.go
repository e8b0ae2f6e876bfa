package chatroom

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
)

// Message is one frame as members receive it.
//
// In the default protocol only Nickname and Text go on the wire, as a single
// text frame holding exactly
//
//	{"nickname":"...","message":"..."}
//
// with no spaces and no trailing newline. With the envelope (WithEnvelope, or
// an option that needs it) every frame also carries Type, ID and Time, and
// the other fields where the type uses them; PROTOCOL.md shows each frame.
// The JSON tags describe the envelope, so a Go client can decode any frame
// into a Message with encoding/json.
type Message struct {
	// Type says what the frame is; see the MessageType constants. Empty means
	// TypeMessage.
	Type MessageType `json:"type,omitempty"`
	// ID is the frame's number, which the room assigns (a value set by the
	// host is ignored). Room frames (chat and server messages, join and
	// leave notices) take increasing IDs of their own; a frame for some
	// members only (the member list, an error, a truncated notice, a direct
	// message) carries the ID of the last room frame before it. IDs are not
	// contiguous. A client resumes from the greatest it has seen
	// (WithHistory).
	ID uint64 `json:"id,omitempty"`
	// Time is when the room sent the frame, by the server's clock (see
	// WithClock). The room sets it; a value set by the host is ignored.
	Time time.Time `json:"time,omitzero"`
	// Nickname is the sender's nickname: the member's, or whatever a message
	// hook or a server-side Broadcast put there.
	Nickname string `json:"nickname"`
	// Text is the message body, the "message" field on the wire.
	Text string `json:"message"`
	// To is the recipient's nickname of a direct message (TypeDirect).
	To string `json:"to,omitempty"`
	// Members lists the nicknames present, in the order they joined
	// (TypeMembers).
	Members []string `json:"members,omitempty"`
	// Joined and Left are the nicknames that came and went since the last
	// presence frame (TypePresence, WithPresenceDeltas).
	Joined []string `json:"joined,omitempty"`
	Left   []string `json:"left,omitempty"`
	// Count is the number of nicknames present, however many Members
	// lists (TypeMembers and TypePresence, WithPresenceDeltas).
	Count int `json:"count,omitempty"`
	// Rate is the room's rate limit, on the members frame a joiner
	// receives (TypeMembers, WithAnnouncedRateLimit).
	Rate *RateLimit `json:"rate,omitempty"`
	// Code is the status code of an error frame (TypeError): the close code
	// the same fault would have closed the connection with, or one of the
	// codes PROTOCOL.md lists.
	Code int `json:"code,omitempty"`
	// Ref is the reference a client gave its message ("ref"), on the ack
	// (TypeAck) and error frames that answer it, to its sender only. The
	// room sets it; a value set by the host is ignored.
	Ref string `json:"ref,omitempty"`
	// RefKey is, on a chat message that a member sent with a ref, how the
	// room recognises a resend of it: the sender (its identity's ID, or
	// its nickname without authentication) and the ref. A room without a
	// broker sets it on the frames it hands its Store, and a room created
	// on a Store reads it back from the frames the Store still holds
	// (Since(0)), so that a resend after a restart is acknowledged, not
	// delivered again (PROTOCOL.md, "Acknowledgements and resends"). A
	// Store keeps it like the other fields; one that drops it only loses
	// that recognition across restarts. It is never on the wire, and a
	// value set by the host is ignored.
	RefKey string `json:"-"`
}

// RateLimit is a room's rate limit as WithAnnouncedRateLimit announces it:
// each member may send PerSecond messages a second on average, in bursts of
// up to Burst (WithRateLimit).
type RateLimit struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst"`
}

// MessageType is the "type" field of an envelope frame.
type MessageType string

// The frame types of the envelope. PROTOCOL.md shows one frame of each.
const (
	// TypeMessage is a chat message sent to the whole room.
	TypeMessage MessageType = "message"
	// TypeDirect is a direct message: it reaches the recipient's connections
	// and, when a member sent it, the sender's connection.
	TypeDirect MessageType = "direct"
	// TypeJoin announces a nickname that joined the room (WithNotices).
	TypeJoin MessageType = "join"
	// TypeLeave announces a nickname that left the room (WithNotices).
	TypeLeave MessageType = "leave"
	// TypeMembers lists the members present; a joiner receives it first
	// (WithPresence).
	TypeMembers MessageType = "members"
	// TypePresence carries the join and leave notices of a short window
	// together, with the count of nicknames present (WithPresenceDeltas).
	TypePresence MessageType = "presence"
	// TypeSystem is a message from the server rather than from a member.
	TypeSystem MessageType = "system"
	// TypeError reports input the room did not accept, to the sender only
	// (WithErrorFrames, and direct messages to an absent nickname).
	TypeError MessageType = "error"
	// TypeTruncated tells a resuming client that part of what it missed is
	// no longer in the history; the frames that follow are all that is left.
	TypeTruncated MessageType = "truncated"
	// TypeAck tells a client's connection that the room took the message
	// it sent with a "ref": ID is the ID the message got (see WithEnvelope).
	TypeAck MessageType = "ack"
	// TypeHistory answers a client's scrollback request with older
	// messages (WithHistory, with the envelope); PROTOCOL.md shows it.
	TypeHistory MessageType = "history"
)

// orDefault returns t, or TypeMessage when t is empty.
func (t MessageType) orDefault() MessageType {
	if t == "" {
		return TypeMessage
	}
	return t
}

// appendJSON appends the wire form of m to b. It produces the same bytes as
// encoding/json with HTML escaping turned off (so "<" stays "<"), without
// reflection, because every broadcast is encoded once and shared by every
// member's writer.
func (m Message) appendJSON(b []byte) []byte {
	b = append(b, `{"nickname":`...)
	b = appendJSONString(b, m.Nickname)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, m.Text)
	return append(b, '}')
}

// encodedLen estimates the size of m's wire form so the buffer is allocated once.
func (m Message) encodedLen() int {
	return len(`{"nickname":"","message":""}`) + len(m.Nickname) + len(m.Text) + 8
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// and U+2028 and U+2029 are escaped, as encoding/json does, so the output is
// also safe to embed in JavaScript.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Close reasons sent with status 1007. They are part of the documented protocol.
const (
	reasonInvalidUTF8 = socket.ReasonInvalidUTF8
	reasonInvalidJSON = "invalid JSON"
	reasonNoMessage   = `expected {"message": string}`
)

// inbound is a decoded client frame.
type inbound struct {
	text    string
	to      string          // recipient of a direct message; "" for the whole room
	ref     string          // the client's reference for the message (see ack.go); "" without
	history *historyRequest // a scrollback request instead of a message
}

// decodeInbound extracts the text of a client frame {"message": "..."}, as
// decodeClient does for a room without direct messages or refs.
func decodeInbound(data []byte) (string, error) {
	in, err := decodeClient(data, clientFields{})
	return in.text, err
}

// clientFields says which optional fields of a client frame the room reads:
// "to" (WithDirectMessages), "ref" (the envelope) and a "type" of
// "history" (scrollback).
type clientFields struct {
	direct     bool
	ref        bool
	scrollback bool
}

// Close reasons for a "to" field. They are part of the documented protocol.
const (
	reasonNoDirect = "direct messages are not enabled"
	reasonBadTo    = `expected "to": nickname`
)

// decodeClient decodes a client frame {"message": "...", "to": "...",
// "ref": "..."}. Keys match exactly (encoding/json alone would accept
// "MESSAGE"), unknown fields are ignored, and every failure is an
// ErrInvalidMessage cause that carries its close frame (1007 with one of the
// reasons above). A "to" field is refused unless direct messages are
// enabled: broadcasting a message its sender meant to be private would be
// worse than refusing it. With scrollback, a frame whose type is "history"
// is a scrollback request (decodeHistoryRequest). A "ref" is read with
// fields.ref only (else it is an unknown field); a valid one is returned in
// the inbound even when the rest of the frame fails, so that the error
// frame can carry it.
func decodeClient(data []byte, fields clientFields) (inbound, error) {
	var in inbound
	invalid := func(reason string, err error) (inbound, error) {
		return inbound{ref: in.ref}, cause(ErrInvalidMessage, websocket.StatusInvalidFramePayloadData, reason, err)
	}
	if !utf8.Valid(data) {
		return invalid(reasonInvalidUTF8, nil)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			// Valid JSON, but not an object.
			return invalid(reasonNoMessage, nil)
		}
		return invalid(reasonInvalidJSON, err)
	}
	if raw, ok := obj["type"]; ok && fields.scrollback {
		var typ string
		if json.Unmarshal(raw, &typ) == nil && typ == string(TypeHistory) {
			req, err := decodeHistoryRequest(obj)
			if err != nil {
				return invalid(reasonBadHistory, err)
			}
			in.history = &req
			return in, nil
		}
	}
	if raw, ok := obj["ref"]; ok && fields.ref {
		ref, ok := decodeRef(raw)
		if !ok {
			return invalid(reasonInvalidRef, nil)
		}
		in.ref = ref
	}
	raw, ok := obj["message"]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return invalid(reasonNoMessage, nil)
	}
	if err := json.Unmarshal(raw, &in.text); err != nil {
		// Unreachable for input json.Unmarshal accepted above; kept so a
		// decoder change can never turn into a broadcast of garbage.
		return invalid(reasonInvalidJSON, fmt.Errorf("message field: %w", err))
	}
	if raw, ok := obj["to"]; ok {
		if !fields.direct {
			return invalid(reasonNoDirect, nil)
		}
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &in.to) != nil || in.to == "" {
			return invalid(reasonBadTo, nil)
		}
	}
	return in, nil
}

// timeLayout is RFC 3339 in UTC with milliseconds, the precision browsers'
// Date keeps.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendEnvelope appends the envelope form of m to b: type, id and time
// first, then the fields m's type uses.
func (m Message) appendEnvelope(b []byte) []byte {
	typ := m.Type.orDefault()
	b = append(b, `{"type":`...)
	b = appendJSONString(b, string(typ))
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, m.ID, 10)
	b = append(b, `,"time":"`...)
	b = m.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, '"')
	// A chat message always has both fields, even when empty, as in the
	// default protocol; other frames only those they use.
	chat := typ == TypeMessage || typ == TypeDirect
	if chat || m.Nickname != "" {
		b = append(b, `,"nickname":`...)
		b = appendJSONString(b, m.Nickname)
	}
	if m.To != "" {
		b = append(b, `,"to":`...)
		b = appendJSONString(b, m.To)
	}
	if chat || m.Text != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, m.Text)
	}
	if typ == TypeMembers {
		b = appendJSONList(append(b, `,"members":`...), m.Members)
	}
	if typ == TypePresence {
		b = appendJSONList(append(b, `,"joined":`...), m.Joined)
		b = appendJSONList(append(b, `,"left":`...), m.Left)
	}
	if m.Count != 0 {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(m.Count), 10)
	}
	if m.Rate != nil {
		b = append(b, `,"rate":{"perSecond":`...)
		b = strconv.AppendFloat(b, m.Rate.PerSecond, 'f', -1, 64) // as encoding/json does from 1e-6 to 1e21
		b = append(b, `,"burst":`...)
		b = strconv.AppendInt(b, int64(m.Rate.Burst), 10)
		b = append(b, '}')
	}
	if m.Code != 0 {
		b = append(b, `,"code":`...)
		b = strconv.AppendInt(b, int64(m.Code), 10)
	}
	if m.Ref != "" {
		b = append(b, `,"ref":`...)
		b = appendJSONString(b, m.Ref)
	}
	return append(b, '}')
}

// appendJSONList appends names as a JSON array of strings.
func appendJSONList(b []byte, names []string) []byte {
	b = append(b, '[')
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
	}
	return append(b, ']')
}

// envelopeLen estimates the size of m's envelope form.
func (m Message) envelopeLen() int {
	n := len(`{"type":"","id":,"time":"","nickname":"","to":"","message":"","members":[],"code":,"ref":""}`) +
		len(m.Type) + 20 + len(timeLayout) + len(`,"count":`) + 20 + len(`,"rate":{"perSecond":,"burst":}`) + 48 + len(m.Nickname) + len(m.To) + len(m.Text) + len(m.Ref) + 16
	for _, list := range [][]string{m.Members, m.Joined, m.Left} {
		n += len(`,"joined":[]`)
		for _, s := range list {
			n += len(s) + 3
		}
	}
	return n
}
