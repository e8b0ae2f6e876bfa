// Command mux shows chat rooms mounted inside an existing application: next
// to its other routes, under its API prefix, behind its middleware.
//
//	go run ./examples/mux                          # port 8001, API key "demo-key"
//	go run ./examples/mux -addr :9000 -api-key s3cret
//
// It serves
//
//	GET /healthz                    "ok"; no API key needed
//	GET /api/v1/rooms               the open rooms as JSON: [{"name":"lobby","members":2}]
//	GET /api/v1/rooms/{room}/ws     the room named {room}, over WebSocket: a
//	                                chatroom.Registry, which reads the {room}
//	                                wildcard of the pattern by default
//
// Every request passes through a logging middleware that wraps the
// http.ResponseWriter to record the status. The WebSocket upgrade must
// hijack the connection through that wrapper, which works because the
// wrapper has an Unwrap method (a wrapper with a Hijack method of its own
// works too; one with neither makes every upgrade fail with HTTP 501).
// Everything under /api/v1/ also passes through an API-key middleware: the
// X-API-Key header, or the api_key query parameter for browsers, which
// cannot set headers on a WebSocket. A request without the key is refused
// with HTTP 401 before any upgrade.
//
// The HTTP server's timeouts and header limit are those of
// examples/internal/serve (-read-header-timeout, -read-timeout,
// -write-timeout, -idle-timeout, -max-header-bytes); they bound ordinary
// requests and idle keep-alive connections, not WebSockets.
//
// SIGINT or SIGTERM shuts the server down gracefully: members receive close
// status 1001.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve"
)

const (
	maxRooms        = 100 // rooms at once; a request for one more gets 503
	shutdownTimeout = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "mux:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down within 10 seconds. If ready is
// not nil, it receives the listening address once the server accepts
// connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("mux", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8001", "address to listen on")
	apiKey := fs.String("api-key", "demo-key", "the key clients must present under /api/v1/")
	limits := serve.Defaults()
	limits.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *apiKey == "" {
		return errors.New("-api-key must not be empty")
	}
	if err := limits.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	rooms := chatroom.NewRegistry(
		chatroom.WithMaxRooms(maxRooms),
		chatroom.WithRoomOptions(func(string) []chatroom.Option { return []chatroom.Option{chatroom.WithLogger(log)} }),
	)
	srv := limits.Server(newHandler(rooms, *apiKey, log), log)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("mux: listening", "addr", ln.Addr().String())
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

	log.Info("mux: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// http.Server.Shutdown neither closes nor waits for WebSocket
	// connections, which it no longer tracks once upgraded: the registry
	// closes its rooms' members with 1001 and waits for them.
	err = errors.Join(srv.Shutdown(shutdownCtx), rooms.Shutdown(shutdownCtx))
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// newHandler is the application: its own routes and the rooms, side by
// side on one ServeMux, the API behind the key, everything behind the log.
func newHandler(rooms *chatroom.Registry, apiKey string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /api/v1/rooms", requireAPIKey(apiKey, listRooms(rooms)))
	// The Registry names the room after the {room} wildcard. With another
	// router, or another wildcard name, tell it how with
	// chatroom.WithRoomName.
	mux.Handle("GET /api/v1/rooms/{room}/ws", requireAPIKey(apiKey, rooms))
	return logRequests(log, mux)
}

// roomJSON is how the API shows a chatroom.RoomInfo.
type roomJSON struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// listRooms answers with the open rooms, by name.
func listRooms(rooms *chatroom.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list := []roomJSON{} // [] rather than null when there is none
		for _, info := range rooms.Rooms() {
			list = append(list, roomJSON{Name: info.Name, Members: info.Members})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(list)
	})
}

// requireAPIKey refuses, with HTTP 401, requests that do not carry key in
// the X-API-Key header or the api_key query parameter. Like any middleware
// that answers before calling the handler, it refuses a WebSocket before the
// upgrade: non-browser clients see the status, browsers only a failed
// connection (see examples/auth for a refusal that browser code can read).
func requireAPIKey(key string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("X-API-Key")
		if got == "" {
			got = r.URL.Query().Get("api_key")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(key)) != 1 {
			http.Error(w, "missing or invalid API key", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logRequests logs one line per request, with the status the handler sent.
// For a WebSocket that status is 101 Switching Protocols: from then on the
// connection belongs to the room, which logs joins and leaves itself (at
// Debug, see chatroom.WithLogger). It logs the path but not the query,
// which may hold the API key.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		log.Info("http", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController, and so the WebSocket upgrade, the
// server's own ResponseWriter to hijack the connection from. Without it (or
// a Hijack method) the wrapper hides http.Hijacker, and every upgrade
// through this middleware fails with HTTP 501 Not Implemented.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
