// Command chatprom is examples/chat with Prometheus metrics: the same chat
// server, page and flags, and /metrics for a Prometheus server to scrape
// (package chatroomprom, plus the Go runtime's and the process's own).
//
//	go -C examples/chatprom run .   # http://localhost:8000/, http://localhost:8000/metrics
//
// It is a module of its own, so that the root module, which holds
// examples/chat, never depends on client_golang; docs/operations.md has
// the metrics and a Grafana dashboard to import.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomprom"
	"github.com/seed014c2c51/chatroom/examples/internal/chatapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "chatprom:", err)
		os.Exit(1)
	}
}

// run serves the chat with its metrics until ctx ends. If ready is not
// nil, it receives the listening address once the server accepts
// connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The page's rooms are named by its users: no room label, whose values
	// they could multiply (chatroomprom.WithRoomLabel bounds one).
	metrics, err := chatroomprom.New(reg)
	if err != nil {
		return err
	}
	return chatapp.Run(ctx, args, stderr, ready, chatapp.Extension{
		Options: []chatroom.Option{chatroom.WithMetrics(metrics)},
		Mount: func(mux *http.ServeMux) {
			mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		},
	})
}
