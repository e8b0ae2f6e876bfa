package redisbroker

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"
)

func presence(t *testing.T, b *Broker, room string) map[string][]string {
	t.Helper()
	got, err := b.Presence(context.Background(), room)
	if err != nil {
		t.Fatalf("Presence(%q): %v", room, err)
	}
	if got == nil {
		t.Fatalf("Presence(%q) returned a nil map", room)
	}
	return got
}

func setPresence(t *testing.T, b *Broker, room, node string, ttl time.Duration, nicknames ...string) {
	t.Helper()
	if err := b.SetPresence(context.Background(), room, node, nicknames, ttl); err != nil {
		t.Fatalf("SetPresence(%q, %q): %v", room, node, err)
	}
}

func TestPresence(t *testing.T) {
	r := newRedis(t)
	n1, n2 := r.broker(t), r.broker(t)
	if got := presence(t, n1, "p"); len(got) != 0 {
		t.Errorf("empty room: %v", got)
	}
	setPresence(t, n1, "p", "node1", time.Minute, "sei", "アキ", "zoë")
	setPresence(t, n2, "p", "node2", time.Minute, "kim")
	setPresence(t, n2, "other", "node2", time.Minute, "elsewhere")
	want := map[string][]string{"node1": {"sei", "アキ", "zoë"}, "node2": {"kim"}}
	for _, b := range []*Broker{n1, n2} {
		if got := presence(t, b, "p"); !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("Presence = %v, want %v", got, want)
		}
	}

	setPresence(t, n1, "p", "node1", time.Minute, "zoë", "sei")
	want["node1"] = []string{"zoë", "sei"}
	if got := presence(t, n2, "p"); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after an update, Presence = %v, want %v", got, want)
	}

	setPresence(t, n2, "p", "node2", time.Minute)
	delete(want, "node2")
	if got := presence(t, n1, "p"); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after a removal, Presence = %v, want %v", got, want)
	}

	// A record that expires at once is no record.
	setPresence(t, n1, "p", "node1", 0, "x")
	if got := presence(t, n2, "p"); len(got) != 0 {
		t.Errorf("after SetPresence with a zero TTL, Presence = %v, want nothing", got)
	}
}

func TestPresenceExpires(t *testing.T) {
	r := newRedis(t)
	c := r.client(t, "")
	b := r.brokerOn(t, c)
	k := keysFor(keyPrefix(r.prefix), "e")
	setPresence(t, b, "e", "stays", time.Minute, "a")
	const ttl = 200 * time.Millisecond
	start := time.Now()
	setPresence(t, b, "e", "goes", ttl, "b")

	// Expiry has no event to wait for: poll, within a deadline.
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := presence(t, b, "e")
		if _, ok := got["goes"]; !ok {
			if elapsed := time.Since(start); elapsed < ttl-50*time.Millisecond {
				t.Errorf("expired after %v, before its TTL of %v", elapsed, ttl)
			}
			if _, ok := got["stays"]; !ok {
				t.Error("the record with a long TTL expired too")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record did not expire")
		}
		<-tick.C
	}

	// Renewal keeps a record: renewed before each TTL ends, it stays.
	setPresence(t, b, "e", "renewed", time.Minute, "c")
	if _, ok := presence(t, b, "e")["renewed"]; !ok {
		t.Error("renewed record missing")
	}

	// Once every record is gone, so are the keys.
	setPresence(t, b, "e", "stays", time.Minute)
	setPresence(t, b, "e", "renewed", time.Minute)
	for _, key := range []string{k.presence, k.nicknames} {
		if keyExists(t, c, key) {
			t.Errorf("%s remains after every record was removed", key)
		}
	}

	// And the keys expire with their last record.
	setPresence(t, b, "e", "short", ttl, "d")
	for _, key := range []string{k.presence, k.nicknames} {
		if pttl, err := c.PTTL(context.Background(), key).Result(); err != nil || pttl <= 0 || pttl > ttl {
			t.Errorf("PTTL %s = %v, %v; want at most %v", key, pttl, err, ttl)
		}
	}
}
