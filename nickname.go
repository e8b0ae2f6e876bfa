package chatroom

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// MaxNicknameLength is the longest nickname, in characters (runes) of its
// prepared form (PrepareNickname), that ValidateNickname accepts.
const MaxNicknameLength = 64

// nicknameParam is the query parameter that carries the nickname.
const nicknameParam = "nickname"

// reservedPrefix begins the names the room makes for clients that give no
// nickname ("unknown_{client IP}"); a client may not choose one.
const reservedPrefix = "unknown_"

// PrepareNickname returns s in the form the room shows it: s enforced by the
// PRECIS Nickname profile of RFC 8266 (precis.Nickname). The profile maps
// every Unicode space (no-break, ideographic, …) to U+0020, trims leading and
// trailing spaces, collapses runs of spaces into one and normalises to NFKC:
// a decomposed (NFD) "José" becomes the composed one, fullwidth "Ｂｏｂ"
// becomes "Bob", "ﬁ" becomes "fi". Case is kept. A name already in that form,
// such as "sei", "Ann" or "田中", is returned unchanged, byte for byte, and
// preparing a prepared name gives it back.
//
// It refuses what the profile refuses: control characters; invisible
// format characters such as zero-width space (U+200B), BOM (U+FEFF), soft
// hyphen (U+00AD), the bidirectional marks, overrides and isolates (U+200F,
// U+202E, …) and variation selectors; a zero-width joiner (U+200D) or
// non-joiner (U+200C) except where RFC 5892 allows one, as after a virama,
// so emoji written with a joiner or a variation selector (a family, a red
// heart with U+FE0F) are refused too; private-use and unassigned code
// points; and names that are empty or only spaces. It also refuses a
// prepared form longer than MaxNicknameLength characters. The error wraps
// ErrInvalidNickname.
//
// The room prepares the nicknames clients choose. A host that assigns
// nicknames (WithAuthenticator) may call it to show them in the same form.
func PrepareNickname(s string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidNickname)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidNickname)
	}
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) {
			return "", fmt.Errorf("%w: contains control character %U", ErrInvalidNickname, r)
		}
	}
	p, err := precis.Nickname.String(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidNickname, err)
	}
	if utf8.RuneCountInString(p) > MaxNicknameLength {
		return "", fmt.Errorf("%w: longer than %d characters", ErrInvalidNickname, MaxNicknameLength)
	}
	return p, nil
}

// ValidateNickname is the default check of a nickname chosen by a client:
// it accepts what PrepareNickname accepts (the PRECIS Nickname profile of
// RFC 8266, at most MaxNicknameLength characters once prepared), so that no
// nickname holds invisible or direction-changing characters that would make
// it render as another. The error wraps ErrInvalidNickname.
func ValidateNickname(s string) error {
	_, err := PrepareNickname(s)
	return err
}

func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// nicknameKey is the form in which WithUniqueNicknames compares nicknames:
// the PRECIS Nickname profile's comparison key (prepared, then case-folded),
// or, for a name the profile refuses (one a host assigned), the name in
// lower case.
func nicknameKey(name string) string {
	if k, err := precis.Nickname.CompareKey(name); err == nil {
		return k
	}
	return strings.ToLower(name)
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

// nickname decides the nickname of the member that asks to become name
// (its "nickname" query parameter), without an authenticator. An absent
// or empty "nickname" parameter means
// "unknown_{client IP}", as in the original protocol; that generated name
// is not validated. A nickname the client chose is prepared
// (PrepareNickname) if the profile accepts it, then checked by the
// validator; one that begins with "unknown_", in any case, is refused.
func (c *config) nickname(name, clientIP string) (string, error) {
	if name == "" {
		return reservedPrefix + clientIP, nil
	}
	if prepared, err := PrepareNickname(name); err == nil {
		name = prepared
	}
	if err := c.validate(name); err != nil {
		return "", err
	}
	if strings.HasPrefix(nicknameKey(name), reservedPrefix) {
		return "", fmt.Errorf("%w: names beginning with %q are reserved for clients that give none", ErrInvalidNickname, reservedPrefix)
	}
	return name, nil
}
