package chatroom

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// On a HistoryBroker, the broker's frames scale by idStride, and the frames
// a node delivers on its own in between take the numbers between, until
// none is left.
func TestNumberingByBroker(t *testing.T) {
	n := numbering{byBroker: true}
	var got []uint64
	take := func(b uint64) bool {
		id, ok := n.next(b)
		if ok {
			got = append(got, id)
		}
		return ok
	}
	take(7)
	take(0)
	take(0)
	take(9)
	if diff := cmp.Diff([]uint64{7 * idStride, 7*idStride + 1, 7*idStride + 2, 9 * idStride}, got); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	for range idStride - 1 {
		if !take(0) {
			t.Fatalf("no ID left after %d frames of the node's own", len(got)-4)
		}
	}
	if take(0) {
		t.Errorf("an ID given beyond the %d between two of the broker's", idStride-1)
	}
	if !take(10) || got[len(got)-1] != 10*idStride {
		t.Errorf("the broker's next frame: got %d, want %d", got[len(got)-1], 10*idStride)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("ID %d after %d: not increasing", got[i], got[i-1])
		}
	}
	if id, _ := n.next(1 << 60); id != maxBrokerID*idStride || id >= 1<<53 {
		t.Errorf("a broker number beyond maxBrokerID gave %d, want %d", id, maxBrokerID*idStride)
	}
}

// The room's own numbering starts from its clock, above what it gave
// before, and tells its IDs from others'.
func TestNumberingOwn(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	var n numbering
	n.restart(now, "lobby")
	before := n.last
	a, _ := n.next(0)
	b, _ := n.next(0)
	if a != before+idStride || b != a+idStride || !n.own(before) || !n.own(a) || !n.own(b) {
		t.Fatalf("IDs %d, %d after %d: not the room's own", a, b, before)
	}
	if n.own(b+idStride) || n.own(a+1) || n.own(before-idStride) {
		t.Error("an ID the room never gave counts as its own")
	}
	n.restart(now, "lobby") // the same clock: numbering goes on above
	c, _ := n.next(0)
	if c <= b || n.own(a) {
		t.Errorf("after a restart: ID %d (before %d), old ID own: %v", c, b, n.own(a))
	}
}

func TestBrokerSince(t *testing.T) {
	if after, local := brokerSince(5 * idStride); after != 5 || local {
		t.Errorf("brokerSince(5×stride) = %d, %v", after, local)
	}
	if after, local := brokerSince(5*idStride + 3); after != 5 || !local {
		t.Errorf("brokerSince(5×stride+3) = %d, %v", after, local)
	}
}

// newest keeps the last n messages within the byte bound, and always the
// last one.
func TestNewest(t *testing.T) {
	msgs := []Message{{ID: 1, Text: "aaaa"}, {ID: 2, Text: "bbbb"}, {ID: 3, Text: "cccc"}, {ID: 4, Text: "dddddddddd"}}
	ids := func(ms []Message) (out []uint64) {
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	for _, tc := range []struct {
		n, bytes int
		want     []uint64
	}{
		{10, 1000, []uint64{1, 2, 3, 4}},
		{2, 1000, []uint64{3, 4}},
		{10, 18, []uint64{2, 3, 4}},
		{10, 1, []uint64{4}},
	} {
		if diff := cmp.Diff(tc.want, ids(newest(msgs, tc.n, tc.bytes))); diff != "" {
			t.Errorf("newest(n=%d, bytes=%d) (-want +got):\n%s", tc.n, tc.bytes, diff)
		}
	}
}
