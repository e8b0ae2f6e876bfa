// Package chatapp is the chat server of examples/chat: a Registry of rooms
// for the page, the tutorial's room, and the HTTP server around them. It is
// a package, not the command, so that a build in a module of its own can
// add to it what the root module must not depend on: examples/chatprom
// serves the same chat with Prometheus metrics at /metrics.
package chatapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve"
	"github.com/seed014c2c51/chatroom/examples/internal/webchat"
)

// Limits of the rooms the page uses.
const (
	maxRooms        = 1000 // rooms at once; more are refused with 503
	ratePerSecond   = 10   // messages per member per second, on average
	rateBurst       = 20   // and in a burst; beyond, an error frame answers
	shutdownTimeout = 10 * time.Second
)

// Extension is what a build of the example adds to it: options for every
// room (the tutorial's and the page's), and handlers on its mux.
type Extension struct {
	Options []chatroom.Option
	Mount   func(mux *http.ServeMux)
}

// Run serves until ctx ends, then shuts down within 10 seconds. If ready is
// not nil, it receives the listening address once the server accepts
// connections. args are the command's flags, ext what the build adds.
func Run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string, ext Extension) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8000", "address to listen on")
	origins := fs.String("origins", "", "comma-separated origin host patterns allowed to connect, e.g. localhost:3000")
	history := fs.Int("history", 100, "messages each room keeps for joiners and reconnecting clients (0: none)")
	limits := serve.Defaults()
	limits.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *history < 0 {
		return fmt.Errorf("-history %d: must not be negative", *history)
	}
	if err := limits.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	allowed := splitList(*origins)

	// The tutorial's room: the default protocol, byte for byte.
	tutorial := chatroom.New(append([]chatroom.Option{chatroom.WithLogger(log), chatroom.WithOriginPatterns(allowed...)}, ext.Options...)...)
	// The page's rooms: every frame in the envelope (type, id, time).
	rooms := chatroom.NewRegistry(
		chatroom.WithMaxRooms(maxRooms),
		chatroom.WithRoomOptions(func(string) []chatroom.Option {
			opts := []chatroom.Option{
				chatroom.WithLogger(log),
				chatroom.WithOriginPatterns(allowed...),
				chatroom.WithPresence(),        // member list, join and leave notices
				chatroom.WithUniqueNicknames(), // one "sei" per room, in any case: 4009 for another
				chatroom.WithErrorFrames(),     // bad input and rate limit: an error frame, not a close
				chatroom.WithRateLimit(ratePerSecond, rateBurst),
			}
			if *history > 0 { // -history 0 keeps none
				opts = append(opts, chatroom.WithHistory(chatroom.History{Len: *history}))
			}
			return append(opts, ext.Options...)
		}),
	)
	mux := newMux(tutorial, rooms)
	if ext.Mount != nil {
		ext.Mount(mux)
	}
	srv := limits.Server(mux, log)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("chat: listening", "addr", ln.Addr().String(), "page", "http://"+DisplayAddr(ln.Addr())+"/")
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
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// http.Server.Shutdown neither closes nor waits for WebSocket
	// connections, which it no longer tracks once upgraded: the rooms do.
	err = srv.Shutdown(shutdownCtx)
	var wg sync.WaitGroup
	var tutorialErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		tutorialErr = tutorial.Shutdown(shutdownCtx)
	}()
	err = errors.Join(err, rooms.Shutdown(shutdownCtx))
	wg.Wait()
	err = errors.Join(err, tutorialErr)
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// newMux routes the page, its files, the page's rooms and the tutorial's
// room.
func newMux(tutorial *chatroom.Room, rooms *chatroom.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/chat", tutorial)
	mux.Handle("/rooms/{room}/chat", rooms)
	webchat.Mount(mux)
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

// DisplayAddr turns a listening address into one a browser can open.
func DisplayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
