// Command chatserver serves the chat protocol at /chat with one of the
// benchmarked designs:
//
//	chatserver -impl chatroom -addr 127.0.0.1:0
//
// It prints "listening HOST:PORT" on stdout and exits on SIGINT, SIGTERM or
// when its standard input is closed (unless -exit-on-stdin=false). With
// -cpuprofile it writes a CPU profile on exit.
//
// With -memstats it also serves GET /debug/memstats on every port: it runs
// a garbage collection and answers the Go runtime's memory figures as JSON
// (memstats.Stats), so that a load generator can tell the heap a connection
// keeps from what RSS shows. It is off by default: a collection on demand
// has no place in a served benchmark.
//
// With -nodes N it serves a cluster instead: N chatroom nodes, each a Room
// named "lobby" on its own loopback port, joined by a broker (package
// internal/cluster):
//
//	chatserver -nodes 2 -broker memory   # one broker.Memory
//	chatserver -nodes 2 -broker nats     # a nats-server embedded in this process, or -nats-url
//	chatserver -nodes 2 -broker redis    # a redis-server it starts from PATH, or -redis-url
//
// With -store S it serves chatroom on one node with a history in S, one
// of stores.Names: in the room's memory, in SQLite (a new file), or in
// PostgreSQL (a server of its own, started in a new temporary directory and
// stopped on exit), written behind or, with a "-durable" suffix,
// History.Durable:
//
//	chatserver -store sqlite-durable
//
// It then prints "listening HOST:PORT,HOST:PORT,..." (node order; port P
// in -addr gives P, P+1, ...), preceded by "broker-pid PID" when it started
// redis-server, whose CPU time is not its own. The "listening" line ends
// the startup report. The nodes share this process, so they share its CPU;
// the broker hop between them is real for NATS and Redis (loopback TCP).
// redis-server is stopped on exit, and killed by the kernel should this
// process die first. -presence deltas serves the room with
// WithPresenceDeltas; with -broker redis, each node's heartbeats are
// metered, and reported on exit, one line a node:
//
//	heartbeats NODE sent N send_cpu_s X received N receive_cpu_s Y
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/cluster"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/memstats"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers"
	chatroomsrv "github.com/seed014c2c51/chatroom/benchmarks/internal/servers/chatroom"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/stores"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/sysutil"
)

type options struct {
	impl, addr, cpuprofile string
	store                  string
	stdinExit, memstats    bool
	cluster                cluster.Config
}

func main() {
	var o options
	flag.StringVar(&o.impl, "impl", "chatroom", fmt.Sprintf("design to serve, one of %v (with -nodes, only chatroom)", servers.Names()))
	flag.StringVar(&o.addr, "addr", "127.0.0.1:0", "listen address (loopback only); with -nodes, port P gives P, P+1, ... and 0 free ports")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile to this file on exit")
	flag.BoolVar(&o.stdinExit, "exit-on-stdin", true, "exit when standard input is closed")
	flag.BoolVar(&o.memstats, "memstats", false, "also serve "+memstats.Path+": a GC, then the Go runtime's memory figures as JSON")
	flag.IntVar(&o.cluster.Nodes, "nodes", 0, "serve a cluster of this many chatroom nodes joined by -broker (0: one server, no broker)")
	flag.StringVar(&o.cluster.Broker, "broker", "memory", fmt.Sprintf("with -nodes: the broker, one of %v", cluster.Brokers))
	flag.StringVar(&o.cluster.NATSURL, "nats-url", "", "with -broker nats: connect to this server (nats://127.0.0.1:PORT) instead of embedding one")
	flag.StringVar(&o.cluster.RedisURL, "redis-url", "", "with -broker redis: connect to this server (redis://127.0.0.1:PORT) instead of starting redis-server")
	flag.StringVar(&o.cluster.Presence, "presence", "off", fmt.Sprintf("with -nodes: presence, one of %v (WithPresence, WithPresenceDeltas)", cluster.Presences))
	flag.DurationVar(&o.cluster.Heartbeat, "heartbeat", 0, "with -nodes: chatroom.WithHeartbeat (0: the library's default)")
	flag.StringVar(&o.store, "store", "", fmt.Sprintf("chatroom on one node: keep the room's history in this store, one of %v (default: no history)", stores.Names))
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("chatserver: ")

	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	host, portStr, err := net.SplitHostPort(o.addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing non-loopback address %q", o.addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("address %q: %w", o.addr, err)
	}
	if o.cluster.Nodes > 0 && o.impl != "chatroom" {
		return fmt.Errorf("-nodes serves chatroom nodes only, not %q", o.impl)
	}
	if o.store != "" && (o.impl != "chatroom" || o.cluster.Nodes > 0) {
		return fmt.Errorf("-store is for chatroom on one node, not %q with -nodes %d", o.impl, o.cluster.Nodes)
	}
	if _, err := sysutil.RaiseFileLimit(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}

	// What to serve, and how to stop it.
	var handlers []http.Handler
	var stop func()
	if o.cluster.Nodes > 0 {
		cl, err := cluster.Start(o.cluster)
		if err != nil {
			return err
		}
		// However run returns, the broker process goes with it.
		defer cl.Kill()
		if cl.BrokerPID > 0 {
			fmt.Printf("broker-pid %d\n", cl.BrokerPID)
		}
		for _, h := range cl.Handlers {
			mux := http.NewServeMux()
			mux.Handle(servers.Path, h)
			handlers = append(handlers, mux)
		}
		stop = func() {
			printMeters(cl.Meters) // first: closing a big room may outlast stopWithin
			if err := cl.Close(); err != nil {
				log.Printf("closing the cluster: %v", err)
			}
		}
	} else if o.store != "" {
		st, err := stores.Open(context.Background(), o.store, "lobby")
		if err != nil {
			return err
		}
		// However run returns, PostgreSQL goes with it.
		defer func() {
			if err := st.Close(); err != nil {
				log.Printf("closing the store: %v", err)
			}
		}()
		h, s := chatroomsrv.New(chatroom.WithName("lobby"), chatroom.WithHistory(st.History))
		mux := http.NewServeMux()
		mux.Handle(servers.Path, h)
		handlers, stop = []http.Handler{mux}, s
	} else {
		h, s, err := servers.New(o.impl)
		if err != nil {
			return err
		}
		handlers, stop = []http.Handler{h}, s
	}

	if o.memstats {
		for i, h := range handlers {
			mux := http.NewServeMux()
			mux.Handle(memstats.Path, memstats.Handler())
			mux.Handle("/", h)
			handlers[i] = mux
		}
	}

	var lns []net.Listener
	for i := range handlers {
		p := 0
		if port != 0 {
			p = port + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			stopWithin(stop, 3*time.Second)
			return err
		}
		lns = append(lns, ln)
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				log.Printf("closing profile: %v", err)
			}
		}()
	}
	serveErr := make(chan error, len(lns))
	var srvs []*http.Server
	var addrs []string
	for i, ln := range lns {
		srv := &http.Server{Handler: handlers[i], ReadHeaderTimeout: 10 * time.Second}
		srvs = append(srvs, srv)
		addrs = append(addrs, ln.Addr().String())
		go func() { serveErr <- srv.Serve(ln) }() // ends when srv is closed
	}
	fmt.Printf("listening %s\n", strings.Join(addrs, ","))

	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGINT, syscall.SIGTERM)
	stdinDone := make(chan struct{})
	if o.stdinExit {
		// Ends at EOF on stdin, or with the process.
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinDone)
		}()
	}
	var runErr error
	select {
	case <-quit:
	case <-stdinDone:
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	for _, srv := range srvs {
		_ = srv.Close() // the listener; hijacked connections are the design's
	}
	stopWithin(stop, 3*time.Second)
	return runErr
}

// printMeters reports each node's heartbeats on stdout, one line a node:
//
//	heartbeats NODE sent N send_cpu_s X received N receive_cpu_s Y
func printMeters(meters []*cluster.HeartbeatMeter) {
	for i, m := range meters {
		fmt.Printf("heartbeats %d sent %d send_cpu_s %.6f received %d receive_cpu_s %.6f\n",
			i, m.Sent.Load(), m.SendCPU().Seconds(), m.Received.Load(), m.ReceiveCPU().Seconds())
	}
}

// stopWithin runs stop, waiting for it at most d: a design may be stuck on a
// blocked write. The process exits soon after, which ends stop if it is
// still running.
func stopWithin(stop func(), d time.Duration) {
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(d):
	}
}
