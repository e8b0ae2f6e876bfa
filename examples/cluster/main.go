// Command cluster runs two chat nodes and an embedded NATS server in one
// process, to show a room spanning nodes:
//
//	cd examples/cluster && go run .   # http://localhost:8011/ and http://localhost:8012/
//
// Open the page of each node in its own tab and join the same room: what one
// tab sends, the other receives, through NATS. Each node is what a separate
// process behind a load balancer would be: its own chatroom.Registry, its
// own HTTP server and its own NATS connection. The NATS server runs
// JetStream, so the rooms' history, frame IDs and presence are the
// cluster's: reload a tab on the other node and it resumes where it was.
//
// Flags: -addrs (the nodes' addresses, comma-separated), -history, and the
// HTTP server's limits of examples/internal/serve (-read-header-timeout,
// -read-timeout, -write-timeout, -idle-timeout, -max-header-bytes), which
// bound ordinary requests and idle keep-alive connections, not WebSockets.
// SIGINT or SIGTERM shuts everything down gracefully.
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
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve"
	"github.com/seed014c2c51/chatroom/examples/internal/webchat"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. If ready is not nil, it receives the nodes'
// listening addresses once they accept connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- []string) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addrs := fs.String("addrs", ":8011,:8012", "comma-separated addresses of the nodes, one node each")
	history := fs.Int("history", 100, "messages each room keeps for joiners and reconnecting clients")
	limits := serve.Defaults()
	limits.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *history < 1 {
		return fmt.Errorf("-history %d: must be at least 1", *history)
	}
	if err := limits.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	storeDir, err := os.MkdirTemp("", "chatroom-cluster-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(storeDir)
	ns, err := startNATS(storeDir)
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	log.Info("cluster: NATS server (embedded, JetStream)", "url", ns.ClientURL())

	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	for i, addr := range strings.Split(*addrs, ",") {
		n, err := startNode(fmt.Sprintf("node%d", i+1), strings.TrimSpace(addr), ns.ClientURL(), *history, limits, log)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	if ready != nil {
		var listening []string
		for _, n := range nodes {
			listening = append(listening, n.ln.Addr().String())
		}
		ready <- listening
	}

	serveErr := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { serveErr <- n.srv.Serve(n.ln) }()
	}
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}

	log.Info("cluster: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, n := range nodes {
		// http.Server.Shutdown neither closes nor waits for WebSocket
		// connections: the registry does.
		err = errors.Join(err, n.srv.Shutdown(shutdownCtx), n.rooms.Shutdown(shutdownCtx))
	}
	for range nodes {
		if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	return err
}

// startNATS starts a NATS server with JetStream on a free loopback port.
func startNATS(storeDir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  storeDir,
		NoSigs:    true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats server: not ready within 10s")
	}
	return ns, nil
}

// node is one chat server: what would be one process behind a load
// balancer.
type node struct {
	nc     *nats.Conn
	broker *natsbroker.JetStreamBroker
	rooms  *chatroom.Registry
	srv    *http.Server
	ln     net.Listener
}

func startNode(name, addr, natsURL string, history int, limits serve.Limits, log *slog.Logger) (*node, error) {
	log = log.With("node", name)
	nc, err := nats.Connect(natsURL, append(natsbroker.ConnectOptions(), nats.Name(name))...)
	if err != nil {
		return nil, fmt.Errorf("%s: nats: %w", name, err)
	}
	b, err := natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{History: history}, natsbroker.WithLogger(log))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option {
		return []chatroom.Option{
			chatroom.WithLogger(log),
			chatroom.WithBroker(b),     // rooms of the same name on every node are one room
			chatroom.WithPresence(),    // the member list spans the nodes
			chatroom.WithErrorFrames(), // bad input: an error frame, not a close
			chatroom.WithHistory(chatroom.History{Len: history}),
		}
	}))
	mux := http.NewServeMux()
	mux.Handle("/rooms/{room}/chat", rooms)
	webchat.Mount(mux)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = b.Close()
		nc.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	log.Info("cluster: node listening", "page", "http://"+displayAddr(ln.Addr())+"/")
	return &node{
		nc:     nc,
		broker: b,
		rooms:  rooms,
		srv:    limits.Server(mux, log),
		ln:     ln,
	}, nil
}

// close releases the node's broker and connection, after its rooms have
// shut down.
func (n *node) close() {
	_ = n.ln.Close()
	_ = n.broker.Close()
	n.nc.Close()
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
