package chatroom

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Message is one chat message as every member receives it. On the wire it is
// a single text frame holding exactly
//
//	{"nickname":"...","message":"..."}
//
// with no spaces and no trailing newline.
type Message struct {
	// Nickname is the sender's nickname: the member's, or whatever a message
	// hook or a server-side Broadcast put there.
	Nickname string `json:"nickname"`
	// Text is the message body, the "message" field on the wire.
	Text string `json:"message"`
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
	reasonInvalidUTF8 = "invalid UTF-8"
	reasonInvalidJSON = "invalid JSON"
	reasonNoMessage   = `expected {"message": string}`
)

// decodeInbound extracts the text of a client frame {"message": "..."}.
// Keys match exactly (encoding/json alone would accept "MESSAGE"), unknown
// fields are ignored, and every failure is an ErrInvalidMessage cause that
// carries its close frame (1007 with one of the reasons above).
func decodeInbound(data []byte) (string, error) {
	if !utf8.Valid(data) {
		return "", cause(ErrInvalidMessage, websocket.StatusInvalidFramePayloadData, reasonInvalidUTF8, nil)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			// Valid JSON, but not an object.
			return "", cause(ErrInvalidMessage, websocket.StatusInvalidFramePayloadData, reasonNoMessage, nil)
		}
		return "", cause(ErrInvalidMessage, websocket.StatusInvalidFramePayloadData, reasonInvalidJSON, err)
	}
	raw, ok := fields["message"]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return "", cause(ErrInvalidMessage, websocket.StatusInvalidFramePayloadData, reasonNoMessage, nil)
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		// Unreachable for input json.Unmarshal accepted above; kept so a
		// decoder change can never turn into a broadcast of garbage.
		return "", cause(ErrInvalidMessage, websocket.StatusInvalidFramePayloadData, reasonInvalidJSON, fmt.Errorf("message field: %w", err))
	}
	return text, nil
}
