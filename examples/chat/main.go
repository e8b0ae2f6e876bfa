// Command chat is the flagship example of package chatroom: a chat server
// with named rooms and a single-page client.
//
//	cd examples/chat && go run .              # http://localhost:8000/, history in chat.db
//	go run . -addr :9000 -history 500 -origins localhost:3000 -db ""   # history in memory
//
// It serves
//
//	/                     the chat page (embedded, from ../internal/webchat/static:
//	                      index.html, app.js, style.css)
//	/rooms/{room}/chat    the page's rooms: a chatroom.Registry with presence,
//	                      join/leave notices, error frames, unique nicknames
//	                      (4009 "nickname taken") and history, so a client that
//	                      reconnects with ?since=<id> gets what it missed
//	/chat                 the tutorial's single room, speaking the default protocol
//	                      ({"nickname","message"} and nothing else), for the
//	                      tutorial's own front ends
//	/metrics              the rooms' Prometheus metrics (package chatroomprom),
//	                      with the Go runtime's and the process's; docs/operations.md
//	                      has the list and a Grafana dashboard to import
//
// -origins lets a front end served from another origin (such as the
// tutorial's own on port 3000) connect. The HTTP server's timeouts and
// header limit are those of examples/internal/serve (-read-header-timeout,
// -read-timeout, -write-timeout, -idle-timeout, -max-header-bytes); they
// bound ordinary requests and idle keep-alive connections, not WebSockets.
// SIGINT or SIGTERM shuts it down gracefully: members receive close status
// 1001.
package main

import (
	"context"
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
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomprom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve"
	"github.com/seed014c2c51/chatroom/examples/internal/webchat"
	"github.com/seed014c2c51/chatroom/sqlitestore"
)

// Limits of the rooms the page uses.
const (
	maxRooms        = 1000 // rooms at once; more are refused with 503
	shutdownTimeout = 10 * time.Second
	openTimeout     = 5 * time.Second // to load a room's history from -db
)

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
	history := fs.Int("history", 100, "messages each room keeps for joiners and reconnecting clients (0: none)")
	perSecond := fs.Float64("rate", 10, "messages each member may send per second, on average (0: no limit)")
	burst := fs.Int("burst", 20, "and in a burst; beyond, an error frame answers")
	announce := fs.Bool("announce-rate", true, "tell the page the rate limit (WithAnnouncedRateLimit), so that it paces itself")
	dbPath := fs.String("db", "chat.db", `SQLite file that keeps the rooms' history across restarts ("": in memory only)`)
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
	if *perSecond < 0 || *burst < 0 {
		return fmt.Errorf("-rate %v -burst %d: must not be negative", *perSecond, *burst)
	}
	if *perSecond == 0 {
		*burst = 0 // no limit: a burst alone would contradict it
	}
	if err := limits.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	allowed := splitList(*origins)
	var db *sqlitestore.DB
	if *dbPath != "" && *history > 0 {
		var err error
		db, err = sqlitestore.Open(ctx, *dbPath, sqlitestore.Options{Window: *history, Logger: log})
		if err != nil {
			return err
		}
		defer db.Close() // after the rooms: run's other defers and Shutdown come first
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The page's rooms are named by its users: no room label, whose values
	// they could multiply (chatroomprom.WithRoomLabel bounds one).
	metrics, err := chatroomprom.New(reg)
	if err != nil {
		return err
	}

	// The tutorial's room: the default protocol, byte for byte.
	tutorial := chatroom.New(chatroom.WithLogger(log), chatroom.WithOriginPatterns(allowed...), chatroom.WithMetrics(metrics))
	// The page's rooms: every frame in the envelope (type, id, time).
	rooms := chatroom.NewRegistry(
		chatroom.WithMaxRooms(maxRooms),
		chatroom.WithRoomOptions(func(name string) []chatroom.Option {
			opts := []chatroom.Option{
				chatroom.WithLogger(log),
				chatroom.WithOriginPatterns(allowed...),
				chatroom.WithMetrics(metrics),
				chatroom.WithPresence(),        // member list, join and leave notices
				chatroom.WithUniqueNicknames(), // one "sei" per room, in any case: 4009 for another
				chatroom.WithErrorFrames(),     // bad input and rate limit: an error frame, not a close
				chatroom.WithRateLimit(*perSecond, *burst),
			}
			if *announce {
				opts = append(opts, chatroom.WithAnnouncedRateLimit())
			}
			if *history > 0 { // -history 0 keeps none
				opts = append(opts, chatroom.WithHistory(roomHistory(db, name, *history, log)))
			}
			return opts
		}),
	)
	mux := newMux(tutorial, rooms)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := limits.Server(mux, log)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("chat: listening", "addr", ln.Addr().String(), "page", "http://"+displayAddr(ln.Addr())+"/")
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

// roomHistory is the history of the page's room name: in db if there is
// one, else (or if the database fails) in memory. Frames are acknowledged
// once written (Durable), so a message that a client has seen echoed before
// its next one survives a crash.
func roomHistory(db *sqlitestore.DB, name string, n int, log *slog.Logger) chatroom.History {
	if db == nil {
		return chatroom.History{Len: n}
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	st, err := db.Room(ctx, name, sqlitestore.Retention{})
	if err != nil {
		log.Error("chat: history in memory only", "room", name, "err", err)
		return chatroom.History{Len: n}
	}
	return chatroom.History{Store: st, Durable: true}
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
