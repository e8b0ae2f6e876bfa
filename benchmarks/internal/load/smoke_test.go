package load_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/load"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers"
	"github.com/seed014c2c51/chatroom/broker"
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

// startCluster serves nodes rooms named "lobby" joined by a broker.Memory,
// each on its own 127.0.0.1 port, and returns their ws:// URLs.
func startCluster(t *testing.T, nodes int) []string {
	t.Helper()
	b := broker.NewMemory(100)
	var urls []string
	for range nodes {
		room := chatroom.New(chatroom.WithName("lobby"), chatroom.WithBroker(b))
		mux := http.NewServeMux()
		mux.Handle(servers.Path, room)
		srv := httptest.NewServer(mux)
		t.Cleanup(func() {
			srv.Close()
			_ = room.Close()
		})
		urls = append(urls, "ws"+strings.TrimPrefix(srv.URL, "http")+servers.Path)
	}
	t.Cleanup(func() { _ = b.Close() }) // after the rooms: cleanups run last first
	return urls
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

// TestCluster spreads the members over the nodes of a cluster joined by a
// broker.Memory, with the senders spread too and all on the first node, and
// checks the accounting, the split of local and cross-node deliveries
// included.
func TestCluster(t *testing.T) {
	for _, first := range []bool{false, true} {
		name := "spread"
		if first {
			name = "senders-first"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			urls := startCluster(t, 3)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := load.Config{
				URL: strings.Join(urls, ","), Members: 8, Senders: 2, Messages: 20, Window: 4,
				SendersFirst: first, Duration: 20 * time.Second, DrainTimeout: 10 * time.Second,
			}
			if first {
				cfg.URL, cfg.URLs = "", urls // the other way to name them
			}
			res, err := load.Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			check(t, res, 40)
			cfg.URLs = urls // for NodeOf

			wantPerNode := []int{3, 3, 2} // members 0..7 round-robin
			if first {
				wantPerNode = []int{4, 2, 2} // senders 0, 1 on node 0; members 2..7 round-robin
			}
			if res.Nodes != 3 || res.SendersFirst != first || !slices.Equal(res.MembersPerNode, wantPerNode) {
				t.Errorf("nodes %d, senders first %v, members per node %v; want 3, %v, %v",
					res.Nodes, res.SendersFirst, res.MembersPerNode, first, wantPerNode)
			}
			if res.Local == nil || res.Cross == nil {
				t.Fatalf("local %v, cross %v: want both", res.Local, res.Cross)
			}
			// Each sender's 20 messages reach the readers of its own node
			// locally and the others across nodes.
			var wantLocal int64
			for s := range cfg.Senders {
				for m := range cfg.Members {
					if cfg.NodeOf(m) == cfg.NodeOf(s) {
						wantLocal += 20
					}
				}
			}
			if res.Local.Expected != wantLocal || res.Cross.Expected != 40*8-wantLocal {
				t.Errorf("expected local %d, cross %d; want %d, %d", res.Local.Expected, res.Cross.Expected, wantLocal, 40*8-wantLocal)
			}
			if res.Local.Received != res.Local.Expected || res.Cross.Received != res.Cross.Expected || res.Local.Lost+res.Cross.Lost != 0 {
				t.Errorf("received local %d, cross %d; lost %d, %d", res.Local.Received, res.Cross.Received, res.Local.Lost, res.Cross.Lost)
			}
			if res.Cross.Latency.P50 <= 0 {
				t.Errorf("cross-node latency p50 %v ms", res.Cross.Latency.P50)
			}
		})
	}
}

func TestConfigRejectsNonLoopback(t *testing.T) {
	_, err := load.Run(context.Background(), load.Config{URL: "ws://192.0.2.1:80/chat", Members: 1})
	if err == nil {
		t.Fatal("want an error for a non-loopback URL")
	}
	_, err = load.Run(context.Background(), load.Config{URL: "ws://127.0.0.1:80/chat,ws://192.0.2.1:80/chat", Members: 1})
	if err == nil {
		t.Fatal("want an error for a non-loopback URL among several")
	}
}
