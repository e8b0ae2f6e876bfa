// Package chatproto holds the wire format shared by every benchmarked server:
// a client sends {"message": "..."} and every member receives
// {"nickname":"...","message":"..."} as one text frame.
package chatproto

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"unicode/utf8"
)

// ReadLimit is the largest client frame, in bytes, a server accepts.
const ReadLimit = 32 << 10

// ErrInvalid is returned by Decode for a frame that is not UTF-8 JSON with a
// string "message" field.
var ErrInvalid = errors.New("chatproto: expected {\"message\": string}")

type inbound struct {
	Message *string `json:"message"`
}

// Decode returns the "message" field of a client frame.
func Decode(data []byte) (string, error) {
	if !utf8.Valid(data) {
		return "", ErrInvalid
	}
	var in inbound
	if err := json.Unmarshal(data, &in); err != nil || in.Message == nil {
		return "", ErrInvalid
	}
	return *in.Message, nil
}

// Encode returns the broadcast frame {"nickname":"...","message":"..."},
// compact and without a trailing newline.
func Encode(nickname, message string) []byte {
	b := make([]byte, 0, len(`{"nickname":"","message":""}`)+len(nickname)+len(message)+8)
	return AppendFrame(b, nickname, message)
}

// AppendFrame appends the broadcast frame for nickname and message to b.
func AppendFrame(b []byte, nickname, message string) []byte {
	b = append(b, `{"nickname":`...)
	b = appendString(b, nickname)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	return append(b, '}')
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string. s must be valid UTF-8 (Decode
// guarantees it); HTML characters are not escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Nickname returns the "nickname" query parameter of r, or
// "unknown_{client IP}" when it is absent or empty.
func Nickname(r *http.Request) string {
	if n := r.URL.Query().Get("nickname"); n != "" {
		return n
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "unknown_" + host
}
