package redisbroker

import (
	"strings"
	"testing"
	"testing/quick"

	"github.com/redis/go-redis/v9"
)

// slotTag returns what Redis Cluster hashes for key: the text between the
// first '{' and the first '}' after it, if not empty, else the whole key.
func slotTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

func TestKeysShareASlot(t *testing.T) {
	for _, prefix := range []string{"chatroom", "", "a{b}c", "{", "}"} {
		for _, room := range []string{"lobby", "", "{", "}", "{}", "a{b}", "%", "%7B", "日本語"} {
			k := keysFor(keyPrefix(prefix), room)
			tag := slotTag(k.history)
			if tag == k.history || tag == "" {
				t.Errorf("prefix %q, room %q: key %q has no hash tag", prefix, room, k.history)
			}
			for _, key := range []string{k.log, k.presence, k.nicknames, k.channel} {
				if slotTag(key) != tag {
					t.Errorf("prefix %q, room %q: %q and %q are in different slots", prefix, room, k.history, key)
				}
			}
		}
	}
}

func TestKeysDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, room := range []string{"", "%", "%25", "{", "%7B", "}", "%7D", "a", "a}:log", "a}:history", "A"} {
		k := keysFor(keyPrefix("p"), room)
		for _, key := range []string{k.history, k.log, k.presence, k.nicknames, k.channel} {
			if other, ok := seen[key]; ok {
				t.Errorf("rooms %q and %q share %q", other, room, key)
			}
			seen[key] = room
		}
	}
	// escape is injective.
	f := func(a, b string) bool { return a == b || hashTag(a) != hashTag(b) }
	if err := quick.Check(f, nil); err != nil {
		t.Error(err)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	f := func(id uint64, data []byte) bool {
		p, ok := decodePayload(string(encodePayload(id, data)))
		return ok && p.ID == id && p.Keep == (id != 0) && string(p.Data) == string(data)
	}
	if err := quick.Check(f, nil); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "\x01short", "\x02123456789"} {
		if _, ok := decodePayload(bad); ok {
			t.Errorf("decodePayload(%q) accepted it", bad)
		}
	}
}

func TestNewRejectsRing(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	defer func() {
		if recover() == nil {
			t.Error("New accepted a *redis.Ring")
		}
	}()
	New(ring)
}
