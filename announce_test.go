package chatroom

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The members frame a joiner receives carries the rate limit, exactly as
// PROTOCOL.md shows it, and a client that keeps to it is never refused.
func TestAnnouncedRateLimit(t *testing.T) {
	tr := newTestRoom(t, WithPresence(), WithErrorFrames(), WithRateLimit(2.5, 3), WithAnnouncedRateLimit(), WithClock(fixedClock))
	sei := tr.join("sei")
	want := fmt.Sprintf(`{"type":"members","id":%d,"time":"2026-11-23T08:00:00.000Z","members":["sei"],"rate":{"perSecond":2.5,"burst":3}}`, firstTestID-idStride)
	if diff := cmp.Diff(want, sei.read()); diff != "" {
		t.Errorf("members frame (-want +got):\n%s", diff)
	}
	_ = sei.readMsg() // join sei
	// A burst of exactly the announced size is taken whole.
	for i := range 3 {
		sei.send(fmt.Sprint("m", i))
	}
	for i := range 3 {
		if got := sei.readMsg(); got.Type != TypeMessage || got.Text != fmt.Sprint("m", i) {
			t.Fatalf("frame %d: %+v, want message m%d", i, got, i)
		}
	}
}

// Without the option, or without a rate limit, the members frame is as
// before: no rate field.
func TestAnnouncedRateLimitOff(t *testing.T) {
	for name, opts := range map[string][]Option{
		"not announced": {WithPresence(), WithRateLimit(10, 20)},
		"no limit":      {WithPresence(), WithAnnouncedRateLimit()},
	} {
		t.Run(name, func(t *testing.T) {
			tr := newTestRoom(t, append(opts, WithClock(fixedClock))...)
			sei := tr.join("sei")
			want := fmt.Sprintf(`{"type":"members","id":%d,"time":"2026-11-23T08:00:00.000Z","members":["sei"]}`, firstTestID-idStride)
			if diff := cmp.Diff(want, sei.read()); diff != "" {
				t.Errorf("members frame (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnnouncedRateLimitNeedsPresence(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(WithAnnouncedRateLimit()) without WithPresence did not panic")
		}
	}()
	New(WithRateLimit(1, 1), WithAnnouncedRateLimit())
}
