// Command loadgen drives a chat server on loopback with many members and
// reports throughput, latency, loss, duplicates, reordering and the
// server's memory per connection:
//
//	loadgen -url ws://127.0.0.1:PORT/chat -members 1000 -senders 1 -messages 2000 -window 16
//	loadgen -url ws://127.0.0.1:PORT/chat -members 200 -senders 20 -rate 50 -messages 250 -slow 1
//
// With -server-pid it reads the server's VmRSS before connecting and once
// the members are connected and the reading has settled.
//
// Against a cluster (chatserver -nodes N), give every node's URL, as a
// comma-separated list or by repeating -url; the members are spread over
// them round-robin. -senders-first puts every sender on the first URL, so
// that each delivery to a member on another node crosses the broker; the
// result then also reports the local and the cross-node deliveries apart.
// -broker-pid adds the CPU time of a broker process of its own
// (redis-server):
//
//	loadgen -url ws://127.0.0.1:P1/chat,ws://127.0.0.1:P2/chat -senders-first -members 200 -senders 10 -rate 100 -messages 500
//
// With -conns N it measures idle connections instead (load.RunConns): N
// clients connect from worker processes (this program again, at most
// -conns-per-worker each, under the file descriptor limit) and from source
// addresses 127.0.0.1, 127.0.0.2, ... (at most -conns-per-source each,
// inside the ephemeral port range), and stay idle; it reports the connect
// rate, the server's RSS (-server-pid) and Go heap (-memstats, against
// chatserver -memstats) per connection, the kernel's socket memory per idle
// connection and per busy one (holding one unread message), and the time
// one message takes to reach all of them:
//
//	loadgen -url ws://127.0.0.1:PORT/chat -conns 19000 -server-pid PID -memstats
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/load"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/sysutil"
)

func main() {
	var cfg load.Config
	flag.Func("url", "server URL, ws://127.0.0.1:PORT/chat (loopback only); several comma-separated or repeated: the nodes of one cluster", func(s string) error {
		cfg.URLs = append(cfg.URLs, load.SplitURLs(s)...)
		return nil
	})
	flag.BoolVar(&cfg.SendersFirst, "senders-first", false, "with several URLs: connect every sender to the first one (the others round-robin over all)")
	flag.IntVar(&cfg.Members, "members", 100, "connections, senders and slow members included")
	flag.IntVar(&cfg.Senders, "senders", 1, "members that send")
	flag.Float64Var(&cfg.Rate, "rate", 0, "messages per second per sender; 0 = as fast as -window allows")
	flag.IntVar(&cfg.Window, "window", 16, "with -rate 0: own messages in flight per sender")
	flag.IntVar(&cfg.Messages, "messages", 1000, "messages per sender")
	flag.DurationVar(&cfg.Duration, "duration", 60*time.Second, "hard cap on sending and waiting for deliveries")
	flag.IntVar(&cfg.Pad, "pad", 0, "bytes of padding added to every message text")
	flag.IntVar(&cfg.Slow, "slow", 0, "members that connect and never read")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to read VmRSS and CPU time from")
	flag.IntVar(&cfg.BrokerPID, "broker-pid", 0, "broker process (redis-server) to read CPU time from")
	flag.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 50, "dials in flight")
	flag.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 60*time.Second, "cap on the connection phase")
	flag.DurationVar(&cfg.DrainTimeout, "drain-timeout", 10*time.Second, "wait for deliveries after the last send")
	flag.DurationVar(&cfg.SlowWait, "slow-wait", 15*time.Second, "after sending, wait this long for the server to cut slow members before reading from them")
	var cc load.ConnsConfig
	flag.IntVar(&cc.Conns, "conns", 0, "measure this many idle connections instead (load.RunConns); -members and the sending flags do not apply")
	flag.IntVar(&cc.PerWorker, "conns-per-worker", 15000, "with -conns: connections per worker process, under its file descriptor limit")
	flag.IntVar(&cc.PerSource, "conns-per-source", 20000, "with -conns: connections per source address 127.0.0.X, inside the ephemeral port range")
	flag.IntVar(&cc.Rounds, "rounds", 3, "with -conns: messages timed to all")
	flag.BoolVar(&cc.MemStats, "memstats", false, "with -conns: read the server's Go heap from /debug/memstats (chatserver -memstats)")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	log.SetFlags(0)
	log.SetPrefix("loadgen: ")
	if len(os.Args) > 1 && os.Args[1] == load.WorkerFlag {
		if err := load.WorkerMain(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	flag.Parse()

	if _, err := sysutil.RaiseFileLimit(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var res *load.Result
	var err error
	if cc.Conns > 0 {
		if len(cfg.URLs) != 1 {
			log.Fatal("-conns takes one -url")
		}
		cc.URL, cc.ServerPID, cc.ConnectConcurrency = cfg.URLs[0], cfg.ServerPID, cfg.ConnectConcurrency
		cc.WaitTimeout = cfg.DrainTimeout
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "connect-timeout" { // else RunConns' own default, sized for 100,000
				cc.ConnectTimeout = cfg.ConnectTimeout
			}
		})
		res, err = load.RunConns(ctx, cc)
	} else {
		res, err = load.Run(ctx, cfg)
	}
	if err != nil && res == nil {
		log.Fatal(err)
	}
	if *asJSON {
		out := struct {
			*load.Result
			Error string `json:"error,omitempty"`
		}{Result: res}
		if err != nil {
			out.Error = err.Error()
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			log.Fatal(err)
		}
	} else {
		printText(res)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func printText(r *load.Result) {
	if c := r.Conns; c != nil {
		printConns(r, c)
		return
	}
	fmt.Printf("members %d (senders %d, slow %d), connected %d in %.2fs\n",
		r.Members, r.Senders, r.Slow, r.Connected, r.ConnectSeconds)
	if r.Nodes > 1 {
		fmt.Printf("nodes %d, members per node %v, senders on the first node only: %v\n", r.Nodes, r.MembersPerNode, r.SendersFirst)
	}
	if r.RSSAfterKiB > 0 {
		fmt.Printf("server RSS %d KiB -> %d KiB: %.1f KiB/conn\n", r.RSSBeforeKiB, r.RSSAfterKiB, r.RSSPerConnKiB)
	}
	if r.Sent > 0 {
		fmt.Printf("sent %d, expected %d, received %d, lost %d, duplicates %d, reordered %d, malformed %d, dropped %d, timed out %v\n",
			r.Sent, r.Expected, r.Received, r.Lost, r.Duplicates, r.Reordered, r.Malformed, r.Dropped, r.TimedOut)
		fmt.Printf("%.0f deliveries/s over %.3fs; latency p50 %.2fms p99 %.2fms p999 %.2fms max %.2fms\n",
			r.DeliveriesPerSec, r.ElapsedSeconds, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max)
		for _, s := range []struct {
			name  string
			split *load.Split
		}{{"within a node", r.Local}, {"cross-node", r.Cross}} {
			if s.split != nil {
				fmt.Printf("  %s: received %d of %d, lost %d; latency p50 %.2fms p99 %.2fms max %.2fms\n",
					s.name, s.split.Received, s.split.Expected, s.split.Lost, s.split.Latency.P50, s.split.Latency.P99, s.split.Latency.Max)
			}
		}
		if r.Nodes > 1 || r.BrokerCPUSeconds > 0 {
			fmt.Printf("CPU seconds while sending: server %.2f, broker %.2f, loadgen %.2f\n", r.ServerCPUSeconds, r.BrokerCPUSeconds, r.LoadgenCPUSeconds)
		}
	}
	for i, s := range r.SlowMembers {
		fmt.Printf("slow member %d: cut %v code %d %q, received %d afterwards; %s\n",
			i, s.Cut, s.CloseCode, s.CloseReason, s.Received, s.Note)
	}
	for _, e := range r.Errors {
		fmt.Println("error:", e)
	}
}

func printConns(r *load.Result, c *load.ConnsResult) {
	fmt.Printf("connections %d of %d from %d workers over %d source addresses in %.2fs: %.0f/s\n",
		r.Connected, r.Members, c.Workers, c.Sources, r.ConnectSeconds, c.ConnectPerSec)
	if r.RSSAfterKiB > 0 {
		fmt.Printf("server RSS %d KiB -> %d KiB: %.2f KiB/conn\n", r.RSSBeforeKiB, r.RSSAfterKiB, r.RSSPerConnKiB)
	}
	if c.Idle.Heap != nil {
		fmt.Printf("server Go heap after GC: live %.2f, in use %.2f, stacks %.2f KiB/conn; %.2f goroutines/conn; RSS busy %.2f KiB/conn\n",
			c.HeapLivePerConnKiB, c.HeapPerConnKiB-c.StackPerConnKiB, c.StackPerConnKiB, c.GoroutinesPerConn, c.BusyRSSPerConnKiB)
	}
	fmt.Printf("kernel socket memory KiB/conn, idle / busy: server end %.2f / %.2f, client end %.2f / %.2f, sockstat (both ends) %.2f / %.2f; busy: %d clients holding the unread message\n",
		c.ServerSockIdleKiB, c.ServerSockBusyKiB, c.ClientSockIdleKiB, c.ClientSockBusyKiB, c.SockstatIdleKiB, c.SockstatBusyKiB, c.BusyQueued)
	fmt.Printf("slab: %.2f KiB per loopback connection (both ends)\n", c.SlabPerConnKiB)
	for _, sc := range c.SlabCaches {
		fmt.Printf("  %-24s %6.0f bytes/conn\n", sc.Name, sc.BytesPerConn)
	}
	fmt.Printf("one message to all: %v ms; clients dropped by the server %d\n", c.DeliveryMs, c.Dropped)
	for _, e := range r.Errors {
		fmt.Println("error:", e)
	}
}
