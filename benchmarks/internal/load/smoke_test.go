package load_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/load"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers"
)

// startServer serves design name in-process on 127.0.0.1 and returns its
// ws:// URL.
func startServer(t *testing.T, name string) string {
	t.Helper()
	h, stop, err := servers.New(name)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		stop()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + servers.Path
}

func check(t *testing.T, res *load.Result, wantSent int64) {
	t.Helper()
	readers := int64(res.Members - res.Slow)
	if res.Sent != wantSent {
		t.Errorf("sent %d, want %d", res.Sent, wantSent)
	}
	if res.Lost != 0 || res.Received != wantSent*readers {
		t.Errorf("received %d of %d (lost %d, late %d): missing %v", res.Received, wantSent*readers, res.Lost, res.Late, res.MissingSample)
	}
	if res.Duplicates != 0 || res.Reordered != 0 || res.Malformed != 0 || res.Dropped != 0 {
		t.Errorf("duplicates %d, reordered %d, malformed %d, dropped %d", res.Duplicates, res.Reordered, res.Malformed, res.Dropped)
	}
	if res.TimedOut {
		t.Error("timed out")
	}
	if len(res.Errors) > 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}

// TestSmoke runs a tiny bounded load against every design and expects every
// message delivered once, in each sender's order.
func TestSmoke(t *testing.T) {
	for _, name := range servers.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := startServer(t, name)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := load.Run(ctx, load.Config{
				URL: url, Members: 5, Senders: 2, Messages: 20, Window: 4,
				Duration: 20 * time.Second, DrainTimeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			check(t, res, 40)
			if res.Latency.P50 <= 0 || res.DeliveriesPerSec <= 0 {
				t.Errorf("latency p50 %v ms, %v deliveries/s", res.Latency.P50, res.DeliveriesPerSec)
			}
		})
	}
}

// TestPacedWithSlowMember covers the rate-paced senders, padding and a
// member that never reads, on two designs.
func TestPacedWithSlowMember(t *testing.T) {
	for _, name := range []string{"chatroom", "centrifuge-batched"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := startServer(t, name)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := load.Run(ctx, load.Config{
				URL: url, Members: 6, Senders: 2, Slow: 1, Rate: 100, Messages: 10, Pad: 100,
				Duration: 20 * time.Second, DrainTimeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			check(t, res, 20)
			if len(res.SlowMembers) != 1 || res.SlowMembers[0].Cut {
				t.Errorf("slow members %+v: want one, not cut", res.SlowMembers)
			}
		})
	}
}

func TestConfigRejectsNonLoopback(t *testing.T) {
	_, err := load.Run(context.Background(), load.Config{URL: "ws://192.0.2.1:80/chat", Members: 1})
	if err == nil {
		t.Fatal("want an error for a non-loopback URL")
	}
}
