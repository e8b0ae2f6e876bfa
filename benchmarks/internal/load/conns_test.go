package load_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/load"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/memstats"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers"
)

// TestMain lets RunConns run this test binary as its worker processes.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == load.WorkerFlag {
		if err := load.WorkerMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunConns holds a few idle connections over two worker processes and
// four source addresses, against two designs served with memstats, and
// checks what arrived where.
func TestRunConns(t *testing.T) {
	_, ssErr := exec.LookPath("ss")
	for _, name := range []string{"chatroom", "gws"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h, stop, err := servers.New(name)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var sources []string
			mux := http.NewServeMux()
			mux.Handle(memstats.Path, memstats.Handler())
			mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == servers.Path {
					host, _, _ := net.SplitHostPort(r.RemoteAddr)
					mu.Lock()
					if !slices.Contains(sources, host) {
						sources = append(sources, host)
					}
					mu.Unlock()
				}
				h.ServeHTTP(w, r)
			}))
			srv := httptest.NewServer(mux)
			t.Cleanup(func() {
				srv.Close()
				stop()
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := load.RunConns(ctx, load.ConnsConfig{
				URL:   "ws" + strings.TrimPrefix(srv.URL, "http") + servers.Path,
				Conns: 7, PerWorker: 3, PerSource: 2, Rounds: 2, MemStats: true,
				ConnectTimeout: 30 * time.Second, WaitTimeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			c := res.Conns
			if ssErr != nil {
				t.Logf("no ss (%v): the socket figures stay empty", ssErr)
			} else if len(res.Errors) > 0 {
				t.Errorf("errors: %v", res.Errors)
			}
			got := []int{res.Connected, c.Workers, c.Sources, len(c.DeliveryMs), c.Dropped}
			if diff := cmp.Diff([]int{7, 2, 4, 2, 0}, got); diff != "" {
				t.Errorf("connected, workers, sources, rounds, dropped (-want +got):\n%s", diff)
			}
			slices.Sort(sources)
			if diff := cmp.Diff([]string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}, sources); diff != "" {
				t.Errorf("source addresses (-want +got):\n%s", diff)
			}
			for _, ms := range c.DeliveryMs {
				if ms <= 0 {
					t.Errorf("delivery times %v ms", c.DeliveryMs)
				}
			}
			if c.ConnectPerSec <= 0 || c.Idle.Heap == nil || c.Idle.Heap.Goroutines <= c.Before.Heap.Goroutines {
				t.Errorf("connect/s %v, heap before %+v, idle %+v", c.ConnectPerSec, c.Before.Heap, c.Idle.Heap)
			}
			if ssErr == nil {
				// The server's 7 ends; the workers' 6 hold the unread
				// message, the sender reads its own.
				if c.Idle.Server.Sockets != 7 || c.Busy.Client.Sockets != 7 || c.BusyQueued != 6 {
					t.Errorf("server sockets %d, client sockets %d, busy queued %d; want 7, 7, 6",
						c.Idle.Server.Sockets, c.Busy.Client.Sockets, c.BusyQueued)
				}
			}
		})
	}
}

func TestRunConnsRejects(t *testing.T) {
	for _, cfg := range []load.ConnsConfig{
		{URL: "ws://192.0.2.1:80/chat", Conns: 2},
		{URL: "ws://127.0.0.1:80/chat", Conns: 1},
		{URL: "ws://127.0.0.1:80/chat", Conns: 2, Rounds: 100},
	} {
		if _, err := load.RunConns(context.Background(), cfg); err == nil {
			t.Errorf("%+v: want an error", cfg)
		}
	}
}
