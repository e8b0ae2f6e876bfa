package broker

import (
	"context"
	"testing"
	"time"
)

// Memory forgets a key after DedupWindow unless it is among the last it
// keeps publications of, and keeps at most maxMemoryKeys per room.
func TestMemoryKeysBounded(t *testing.T) {
	b := NewMemory(1)
	now := time.Unix(1e9, 0)
	b.now = func() time.Time { return now }
	ctx := context.Background()
	publish := func(key string) []Duplicate {
		t.Helper()
		dups, err := b.PublishOnce(ctx, "lobby", []Publication{{Key: key}, {Key: key}})
		if err != nil {
			t.Fatal(err)
		}
		return dups
	}
	if dups := publish("k"); len(dups) != 1 || dups[0] != (Duplicate{Index: 1}) {
		t.Fatalf("a key twice in one batch: duplicates %+v, want the second, unkept (ID 0)", dups)
	}
	now = now.Add(DedupWindow)
	if dups := publish("k"); len(dups) != 2 {
		t.Fatalf("past the window, the last key kept (as its publication): duplicates %+v, want both", dups)
	}
	publish("j")
	if dups := publish("k"); len(dups) != 1 {
		t.Fatalf("past the window, not the last: duplicates %+v, want the second only", dups)
	}
	for i := range maxMemoryKeys + 10 {
		_, _ = b.PublishOnce(ctx, "lobby", []Publication{{Key: string(rune(i))}})
	}
	if n := len(b.rooms["lobby"].keys); n > maxMemoryKeys+1 {
		t.Errorf("%d keys kept, want at most %d", n, maxMemoryKeys)
	}
}
