package cluster_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/cluster"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/load"
)

// TestBrokers starts two nodes on every broker, runs a tiny load with the
// senders on the first node, and checks that every message crossed to the
// second, and that Close stops the redis-server it started.
func TestBrokers(t *testing.T) {
	for _, broker := range cluster.Brokers {
		t.Run(broker, func(t *testing.T) {
			if broker == "redis" {
				if _, err := exec.LookPath("redis-server"); err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatal("redis-server is not installed")
					}
					t.Skip("redis-server is not installed")
				}
			}
			c, err := cluster.Start(cluster.Config{Nodes: 2, Broker: broker, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					_ = c.Close()
				}
			}()
			if len(c.Handlers) != 2 {
				t.Fatalf("%d handlers, want 2", len(c.Handlers))
			}
			if (c.BrokerPID != 0) != (broker == "redis") {
				t.Errorf("broker pid %d for %s", c.BrokerPID, broker)
			}
			var urls []string
			for _, h := range c.Handlers {
				mux := http.NewServeMux()
				mux.Handle("/chat", h)
				srv := httptest.NewServer(mux)
				defer srv.Close()
				urls = append(urls, "ws"+strings.TrimPrefix(srv.URL, "http")+"/chat")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := load.Run(ctx, load.Config{
				URLs: urls, SendersFirst: true, Members: 5, Senders: 1, Messages: 10, Window: 2,
				Duration: 15 * time.Second, DrainTimeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Lost != 0 || res.Duplicates != 0 || res.Reordered != 0 || len(res.Errors) > 0 {
				t.Errorf("lost %d, duplicates %d, reordered %d, errors %v", res.Lost, res.Duplicates, res.Reordered, res.Errors)
			}
			if res.Cross == nil || res.Cross.Received != 20 { // members 1..4 alternate, from node 0
				t.Errorf("cross-node deliveries %+v, want 20", res.Cross)
			}
			closed = true
			if err := c.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			if c.BrokerPID != 0 {
				// Reaped by Close: the pid no longer names a process of ours.
				if err := syscall.Kill(c.BrokerPID, 0); !errors.Is(err, syscall.ESRCH) {
					t.Errorf("redis-server %d still there after Close: %v", c.BrokerPID, err)
				}
			}
		})
	}
}

func TestStartRejects(t *testing.T) {
	for _, cfg := range []cluster.Config{
		{Nodes: 0, Broker: "memory"},
		{Nodes: 2, Broker: "carrier-pigeon"},
		{Nodes: 2, Broker: "redis", RedisURL: "redis://192.0.2.1:6379"},
		{Nodes: 2, Broker: "nats", NATSURL: "nats://192.0.2.1:4222"},
		{Nodes: 2, Broker: "redis", RedisServer: "false"}, // exits at once
	} {
		if c, err := cluster.Start(cfg); err == nil {
			_ = c.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}
