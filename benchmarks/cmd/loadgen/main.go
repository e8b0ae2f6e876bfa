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
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("loadgen: ")

	if _, err := sysutil.RaiseFileLimit(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := load.Run(ctx, cfg)
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
