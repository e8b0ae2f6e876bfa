// Command chat serves one chat room at /chat and a page to try it at /.
//
//	go run ./examples/chat                          # http://localhost:8000/
//	go run ./examples/chat -addr :9000 -origins localhost:3000
//
// -origins lets a front end served from another origin (such as the
// tutorial's own on port 3000) connect. SIGINT or SIGTERM shuts it down
// gracefully: members receive close status 1001.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom"
)

//go:embed index.html
var indexHTML []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down within 10 seconds. If ready is
// not nil, it receives the listening address once the server accepts
// connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8000", "address to listen on")
	origins := fs.String("origins", "", "comma-separated origin host patterns allowed to connect, e.g. localhost:3000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	room := chatroom.New(chatroom.WithLogger(log), chatroom.WithOriginPatterns(splitList(*origins)...))
	srv := &http.Server{Handler: newMux(room), ReadHeaderTimeout: 10 * time.Second}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("chat: listening", "addr", ln.Addr().String(), "page", "http://"+displayAddr(ln.Addr()))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}

	log.Info("chat: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// http.Server.Shutdown does not close WebSocket connections; the room does.
	err = errors.Join(srv.Shutdown(shutdownCtx), room.Shutdown(shutdownCtx))
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// newMux routes the room at /chat and the page at /.
func newMux(room *chatroom.Room) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/chat", room)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(indexHTML)
	})
	return mux
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// displayAddr turns a listening address into one a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
