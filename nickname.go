package chatroom

import (
	"fmt"
	"net"
	"net/http"
	"unicode"
	"unicode/utf8"
)

// MaxNicknameLength is the longest nickname, in characters (runes), that
// ValidateNickname accepts.
const MaxNicknameLength = 64

// nicknameParam is the query parameter that carries the nickname.
const nicknameParam = "nickname"

// ValidateNickname is the default check of a nickname chosen by a client. It
// accepts valid UTF-8 of 1 to MaxNicknameLength characters with no control
// characters (Unicode category Cc) and no bidirectional override or isolate
// characters (U+202A–U+202E, U+2066–U+2069), which could make one nickname
// render as another. The error wraps ErrInvalidNickname.
func ValidateNickname(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrInvalidNickname)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidNickname)
	case utf8.RuneCountInString(s) > MaxNicknameLength:
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidNickname, MaxNicknameLength)
	}
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) {
			return fmt.Errorf("%w: contains control character %U", ErrInvalidNickname, r)
		}
	}
	return nil
}

func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// RemoteIP returns the IP address of the peer of r's connection, without the
// port: "127.0.0.1", "::1". It is the default of WithClientIP.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// nickname decides the nickname of the member that r asks to become. An
// absent or empty "nickname" parameter means "unknown_{client IP}", as in the
// original protocol; that generated name is not validated.
func (c *config) nickname(r *http.Request) (name, clientIP string, err error) {
	clientIP = c.clientIP(r)
	if c.nicknameFunc != nil {
		name, err = c.nicknameFunc(r, clientIP)
		return name, clientIP, err
	}
	name = r.URL.Query().Get(nicknameParam)
	if name == "" {
		return "unknown_" + clientIP, clientIP, nil
	}
	return name, clientIP, c.validate(name)
}
