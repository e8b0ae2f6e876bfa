package redisbroker

import "strings"

// roomKeys are the Redis keys and the pub/sub channel of one room. They all
// carry the same hash tag, {room}, so that in Redis Cluster they live in one
// slot: the scripts touch several of them at once, which Cluster allows only
// within a slot.
type roomKeys struct {
	history   string // hash: last, base, dropped (see publishScript)
	log       string // stream of kept publications, entry IDs "<id>-0"
	presence  string // sorted set: node → expiry, in ms of the server's clock
	nicknames string // hash: node → JSON array of nicknames
	keys      string // hash: publication key → the ID it got (see publishScript)
	keysAt    string // sorted set: publication key → when, in ms of the server's clock
	channel   string // pub/sub channel
}

// keysFor returns the keys of room under prefix (already escaped, with its
// trailing ':' if not empty).
func keysFor(prefix, room string) roomKeys {
	base := prefix + "{" + hashTag(room) + "}:"
	return roomKeys{
		history:   base + "history",
		log:       base + "log",
		presence:  base + "presence",
		nicknames: base + "nicknames",
		keys:      base + "keys",
		keysAt:    base + "keysat",
		channel:   base + "pub",
	}
}

// hashTag returns the part of a room's keys between the braces. Redis Cluster
// hashes the text between the first '{' and the first '}' after it, and
// hashes the whole key when that text is empty; so braces in the name are
// escaped (with '%', itself escaped, which keeps distinct names distinct),
// and the empty name, which a host's own validator may allow, becomes a lone
// "%", which escaping never produces.
func hashTag(room string) string {
	if room == "" {
		return "%"
	}
	return escape(room)
}

// escape replaces '%', '{' and '}' with %25, %7B and %7D.
func escape(s string) string {
	if !strings.ContainsAny(s, "%{}") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			b.WriteString("%25")
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// keyPrefix returns the escaped form of a key prefix as keysFor takes it:
// braces in the prefix would otherwise become the hash tag.
func keyPrefix(p string) string {
	if p == "" {
		return ""
	}
	return escape(p) + ":"
}
