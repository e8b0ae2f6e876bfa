// Command compare runs the whole server comparison with one command, from
// the benchmarks module:
//
//	go run ./cmd/compare                 # full size, about 6 minutes
//	go run ./cmd/compare -quick          # small sizes, for CI and smoke tests
//	go run ./cmd/compare -impls chatroom,melody -scenarios fanout
//
// It builds chatserver and loadgen into a temporary directory, then for each
// design and scenario starts a fresh chatserver process on 127.0.0.1, runs
// loadgen against it with a hard timeout, and stops the server. It writes
// results.json, results.md and fanout.svg to the -out directory (results,
// or results/quick for -quick). A design
// that fails a scenario is reported as failed; the run goes on.
//
// The crossnode scenario measures delivery across the nodes of a cluster
// instead of comparing designs: it runs chatroom (if -impls has it) on one
// node without a broker, then on -nodes nodes joined by each broker of
// -brokers (chatserver -nodes N -broker B: the nodes share one process;
// NATS is embedded in it, redis-server is a process of its own), with the
// same load and every sender on the first node. -brokers takes none (one
// node), memory, nats (core NATS), jetstream (NATS JetStream, not run by
// default) and redis:
//
//	go run ./cmd/compare -impls chatroom -scenarios crossnode
//	go run ./cmd/compare -impls chatroom -scenarios crossnode -brokers none,nats -repeat 3
//
// The presence scenario serves one room with WithPresenceDeltas on 3 nodes
// over Redis, 10,000 members (300 with -quick) chatting at 100 messages/s,
// and reports each node's heartbeats and their CPU time, as chatserver
// metered them:
//
//	go run ./cmd/compare -impls chatroom -scenarios presence
//
// The connections scenario holds 19,000 idle connections (300 with
// -quick; -conns sets another number) to each design, from loadgen's
// worker processes over several source addresses, and reports the connect
// rate, the server's RSS and Go heap per connection (chatserver -memstats),
// the kernel's socket memory per idle and per busy connection, and the time
// one message takes to reach them all:
//
//	go run ./cmd/compare -impls chatroom,gws -scenarios connections -repeat 3 -conns 5000
//
// The fanout and steady scenarios also run chatroom keeping the room's
// history in each store of -stores (chatserver -store: memory, sqlite,
// sqlite-durable, pg, pg-durable; PostgreSQL a server of its own that
// chatserver starts), set beside chatroom without history in one table:
//
//	go run ./cmd/compare -impls chatroom -scenarios fanout,steady -stores memory,sqlite,pg-durable
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/load"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/stores"
)

// Scenario is one load shape, run against every design, or, if it has
// Variants, against chatroom in each variant.
type Scenario struct {
	Name    string        `json:"name"`
	Title   string        `json:"title"`
	Args    []string      `json:"loadgen_args"` // besides -url, -json, -server-pid and -broker-pid
	Timeout time.Duration `json:"timeout_ns"`   // for loadgen, connection phase included
	// ServerArgs are added to chatserver's, such as -memstats.
	ServerArgs []string  `json:"server_args,omitempty"`
	Variants   []Variant `json:"variants,omitempty"`
	// Stores are chatroom on one node with a history store, run besides
	// the designs (fanout and steady).
	Stores []Variant `json:"stores,omitempty"`
}

// Variant is one way of serving chatroom in a cluster scenario.
type Variant struct {
	Name     string `json:"name"`               // the runs' impl
	Nodes    int    `json:"nodes"`              // chatserver -nodes; 0: one server, no broker
	Broker   string `json:"broker,omitempty"`   // chatserver -broker
	Presence string `json:"presence,omitempty"` // chatserver -presence
	Store    string `json:"store,omitempty"`    // chatserver -store
}

// storeScenarios are the scenarios that -stores applies to.
var storeScenarios = []string{"fanout", "steady"}

// quickStores is -stores' default with -quick, which runs them under
// fanout only: PostgreSQL's start (initdb) is most of their time.
const quickStores = "sqlite-durable,pg-durable"

// storeVariants returns chatroom on one node with each store of names.
func storeVariants(names []string) []Variant {
	var vs []Variant
	for _, n := range names {
		vs = append(vs, Variant{Name: "chatroom-store-" + n, Store: n})
	}
	return vs
}

// presenceVariants are the presence scenario's: a room with
// WithPresenceDeltas on 3 nodes over Redis, whose heartbeats chatserver
// meters.
var presenceVariants = []Variant{{Name: "chatroom-deltas-redis-3", Nodes: 3, Broker: "redis", Presence: "deltas"}}

// brokerNames are the values of -brokers; "none" is chatroom on one node.
var brokerNames = []string{"none", "memory", "nats", "jetstream", "redis"}

// defaultBrokers is -brokers' default.
const defaultBrokers = "none,memory,nats,redis"

// variants returns the crossnode variants for -brokers and -nodes.
func variants(brokers []string, nodes int) []Variant {
	var vs []Variant
	for _, b := range brokers {
		if b == "none" {
			vs = append(vs, Variant{Name: "chatroom"})
		} else {
			vs = append(vs, Variant{Name: fmt.Sprintf("chatroom-%s-%d", b, nodes), Nodes: nodes, Broker: b})
		}
	}
	return vs
}

// Run is the outcome of one design (or variant) under one scenario.
type Run struct {
	Impl     string       `json:"impl"`
	Nodes    int          `json:"nodes,omitempty"`
	Broker   string       `json:"broker,omitempty"`
	Store    string       `json:"store,omitempty"`
	Scenario string       `json:"scenario"`
	Rep      int          `json:"rep"` // 1..-repeat
	OK       bool         `json:"ok"`
	Error    string       `json:"error,omitempty"`
	Seconds  float64      `json:"wall_seconds"`
	Result   *load.Result `json:"result,omitempty"`
	// Heartbeats is each node's, as chatserver metered them (-broker
	// redis).
	Heartbeats []NodeHeartbeats `json:"heartbeats,omitempty"`
}

// NodeHeartbeats is one node's heartbeats over a run, from chatserver's
// "heartbeats" line: how many it sent and took in, and the CPU seconds
// spent on each (see cluster.HeartbeatMeter).
type NodeHeartbeats struct {
	Node           int     `json:"node"`
	Sent           int64   `json:"sent"`
	SendCPUSeconds float64 `json:"send_cpu_seconds"`
	Received       int64   `json:"received"`
	RecvCPUSeconds float64 `json:"receive_cpu_seconds"`
}

// parseHeartbeats reads "NODE sent N send_cpu_s X received N
// receive_cpu_s Y", the rest of a heartbeats line.
func parseHeartbeats(line string) (NodeHeartbeats, error) {
	var h NodeHeartbeats
	_, err := fmt.Sscanf(line, "%d sent %d send_cpu_s %g received %d receive_cpu_s %g",
		&h.Node, &h.Sent, &h.SendCPUSeconds, &h.Received, &h.RecvCPUSeconds)
	return h, err
}

// Report is everything results.json holds.
type Report struct {
	Started   time.Time  `json:"started"`
	Seconds   float64    `json:"wall_seconds"`
	Quick     bool       `json:"quick"`
	Repeat    int        `json:"repeat"`
	GoVersion string     `json:"go_version"`
	CPUs      int        `json:"cpus"`
	Impls     []string   `json:"impls"`
	Scenarios []Scenario `json:"scenarios"`
	Runs      []Run      `json:"runs"`
}

func scenarios(quick bool) []Scenario {
	itoa := strconv.Itoa
	if quick {
		return []Scenario{
			{Name: "fanout", Title: "fan-out: 50 members, 1 sender, 100 messages, window 16",
				Args: []string{"-members", "50", "-senders", "1", "-messages", "100", "-window", "16", "-duration", "20s"}, Timeout: 45 * time.Second},
			{Name: "idle", Title: "idle memory: 50 connections",
				Args: []string{"-conns", "50"}, Timeout: 30 * time.Second},
			{Name: "many", Title: "many senders: 50 members, 5 senders x 50 msg/s x 50 messages",
				Args: []string{"-members", "50", "-senders", "5", "-rate", "50", "-messages", "50", "-duration", "15s"}, Timeout: 40 * time.Second},
			{Name: "slow", Title: "slow member: 50 members, 5 senders x 50 msg/s x 50 messages of 1 KiB, 1 never reads",
				Args: []string{"-members", "50", "-senders", "5", "-rate", "50", "-messages", "50", "-pad", "1024", "-slow", "1", "-duration", "15s", "-drain-timeout", "3s", "-slow-wait", "3s"}, Timeout: 45 * time.Second},
			{Name: "steady", Title: "the slow scenario with every member reading",
				Args: []string{"-members", "50", "-senders", "5", "-rate", "50", "-messages", "50", "-pad", "1024", "-duration", "15s", "-drain-timeout", "3s"}, Timeout: 45 * time.Second},
			{Name: "crossnode", Title: "cross-node: 50 members, 5 senders x 50 msg/s x 50 messages, senders on the first node",
				Args: []string{"-members", "50", "-senders", "5", "-rate", "50", "-messages", "50", "-duration", "15s", "-drain-timeout", "3s"}, Timeout: 30 * time.Second},
			{Name: "presence", Title: "presence: 300 members with WithPresenceDeltas over 3 nodes, 10 senders x 10 msg/s x 20 messages",
				Args: []string{"-members", "300", "-senders", "10", "-rate", "10", "-messages", "20", "-duration", "20s", "-drain-timeout", "3s"}, Timeout: 45 * time.Second},
			connectionsScenario(300, 30*time.Second),
		}
	}
	// The slow member's messages carry 1 KiB of padding: 12 s at 1000 msg/s
	// is about 12 MiB, three times what loopback's socket buffers (4 MiB
	// tcp_wmem) absorb, so every server has to deal with a blocked write
	// after about 4 s. Without padding the kernel swallowed all of it.
	const slowSeconds = 12
	return []Scenario{
		{Name: "fanout", Title: "fan-out: 1000 members, 1 sender, 2000 messages as fast as a window of 16 allows",
			Args: []string{"-members", "1000", "-senders", "1", "-messages", "2000", "-window", "16", "-duration", "60s"}, Timeout: 150 * time.Second},
		{Name: "idle", Title: "idle memory: 1000 connections, nothing sent",
			Args: []string{"-conns", "1000"}, Timeout: 90 * time.Second},
		{Name: "many", Title: "many senders: 200 members, 20 senders x 50 msg/s for 5 s",
			Args: []string{"-members", "200", "-senders", "20", "-rate", "50", "-messages", "250", "-duration", "20s"}, Timeout: 90 * time.Second},
		{Name: "slow", Title: "slow member: 200 members, 20 senders x 50 msg/s for " + itoa(slowSeconds) + " s, messages padded to 1 KiB, 1 member never reads (SO_RCVBUF 4 KiB)",
			Args: []string{"-members", "200", "-senders", "20", "-rate", "50", "-messages", itoa(50 * slowSeconds), "-pad", "1024", "-slow", "1", "-duration", "40s", "-drain-timeout", "5s"}, Timeout: 150 * time.Second},
		{Name: "steady", Title: "the slow scenario with every member reading: the baseline for the others' p99",
			Args: []string{"-members", "200", "-senders", "20", "-rate", "50", "-messages", itoa(50 * slowSeconds), "-pad", "1024", "-duration", "40s", "-drain-timeout", "5s"}, Timeout: 120 * time.Second},
		// The many-senders load, so that its single-node run can be set
		// beside the many scenario's chatroom figures.
		{Name: "crossnode", Title: "cross-node: 200 members, 20 senders x 50 msg/s for 5 s, senders on the first node",
			Args: []string{"-members", "200", "-senders", "20", "-rate", "50", "-messages", "250", "-duration", "20s"}, Timeout: 90 * time.Second},
		// A big room: 10,000 members join (no join limit) and 100 messages/s
		// go to all of them for 10 s, while the heartbeats are metered.
		{Name: "presence", Title: "presence: 10,000 members with WithPresenceDeltas over 3 nodes, 10 senders x 10 msg/s for 10 s",
			Args: []string{"-members", "10000", "-senders", "10", "-rate", "10", "-messages", "100", "-duration", "90s", "-drain-timeout", "20s",
				"-connect-timeout", "180s"}, Timeout: 300 * time.Second},
		connectionsScenario(defaultConns, 300*time.Second),
	}
}

// defaultConns is the connections scenario's size without -quick: as many
// as one server process holds here, under RLIMIT_NOFILE's hard limit of
// 20,000. -conns sets another (100,000 needs that limit raised for the
// server).
const defaultConns = 19000

// connectionsScenario is n idle connections (loadgen -conns) against a
// chatserver -memstats.
func connectionsScenario(n int, timeout time.Duration) Scenario {
	return Scenario{Name: "connections",
		Title:      fmt.Sprintf("idle connections: %d from worker processes over %d source address(es); then one unread message each; then one message to all, 3 times", n, (n+19999)/20000),
		Args:       []string{"-conns", strconv.Itoa(n), "-memstats"},
		ServerArgs: []string{"-memstats"}, Timeout: timeout}
}

func main() {
	implsFlag := flag.String("impls", strings.Join(servers.Names(), ","), "comma-separated designs to run")
	scenFlag := flag.String("scenarios", "fanout,idle,many,slow,steady,crossnode,presence,connections", "comma-separated scenarios to run")
	conns := flag.Int("conns", 0, fmt.Sprintf("connections: idle connections per run (default %d, 300 with -quick)", defaultConns))
	brokersFlag := flag.String("brokers", defaultBrokers, fmt.Sprintf("crossnode: comma-separated variants, of %v; none is chatroom on one node without a broker", brokerNames))
	nodes := flag.Int("nodes", 2, "crossnode: nodes per cluster")
	storesFlag := flag.String("stores", strings.Join(stores.Names, ","), fmt.Sprintf("fanout and steady: also run chatroom with its history in each of these stores, of %v (\"\": none; with -quick, unless set, the durable ones under fanout only)", stores.Names))
	quick := flag.Bool("quick", false, "small sizes, for CI and smoke tests")
	outDir := flag.String("out", "results", "directory for results.json, results.md and fanout.svg (results/quick with -quick)")
	repeat := flag.Int("repeat", 1, "run every design and scenario this many times; tables show the median run")
	profDir := flag.String("cpuprofile-dir", "", "if set, every server writes a CPU profile IMPL-SCENARIO.pprof here")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("compare: ")

	impls := splitList(*implsFlag)
	for _, im := range impls {
		if !slices.Contains(servers.Names(), im) {
			log.Fatalf("unknown design %q (have %v)", im, servers.Names())
		}
	}
	brokers := splitList(*brokersFlag)
	for _, b := range brokers {
		if !slices.Contains(brokerNames, b) {
			log.Fatalf("unknown broker %q (have %v)", b, brokerNames)
		}
	}
	if *nodes < 1 {
		log.Fatal("-nodes must be at least 1")
	}
	outSet, storesSet := false, false
	flag.Visit(func(f *flag.Flag) {
		outSet = outSet || f.Name == "out"
		storesSet = storesSet || f.Name == "stores"
	})
	storeScens := storeScenarios
	if *quick && !storesSet {
		*storesFlag = quickStores // a few seconds, as CI runs -quick
		storeScens = []string{"fanout"}
	}
	storeNames := splitList(*storesFlag)
	for _, st := range storeNames {
		if !slices.Contains(stores.Names, st) {
			log.Fatalf("unknown store %q (have %v)", st, stores.Names)
		}
	}
	var scens []Scenario
	wanted := splitList(*scenFlag)
	for _, s := range scenarios(*quick) {
		if !slices.Contains(wanted, s.Name) {
			continue
		}
		if s.Name == "crossnode" {
			// chatroom only: skipped when -impls leaves it out.
			if !slices.Contains(impls, "chatroom") || len(brokers) == 0 {
				continue
			}
			s.Variants = variants(brokers, *nodes)
		}
		if s.Name == "presence" {
			if !slices.Contains(impls, "chatroom") {
				continue
			}
			s.Variants = presenceVariants
		}
		if s.Name == "connections" && *conns > 0 {
			s = connectionsScenario(*conns, s.Timeout+time.Duration(*conns)*time.Second/100)
		}
		if slices.Contains(storeScens, s.Name) && slices.Contains(impls, "chatroom") {
			s.Stores = storeVariants(storeNames)
		}
		scens = append(scens, s)
	}
	if *quick && !outSet {
		*outDir = filepath.Join("results", "quick") // keep the full run's results
	}
	if *repeat < 1 {
		*repeat = 1
	}
	if len(scens) == 0 || len(impls) == 0 {
		log.Fatal("nothing to run: check -impls and -scenarios")
	}
	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			log.Fatal(err)
		}
	}

	ctx, stop := signalContext()
	defer stop()
	started := time.Now()
	bin, err := os.MkdirTemp("", "chatbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(bin)
	if err := build(ctx, bin); err != nil {
		log.Fatal(err)
	}

	rep := &Report{
		Started: started, Quick: *quick, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Impls: impls, Scenarios: scens, Repeat: *repeat,
	}
	// Every design under the ordinary scenarios, then every variant under
	// the cluster scenarios.
	type job struct {
		sc Scenario
		v  Variant
	}
	var jobs []job
	for _, im := range impls {
		for _, sc := range scens {
			if sc.Variants == nil {
				jobs = append(jobs, job{sc, Variant{Name: im}})
			}
		}
	}
	for _, sc := range scens {
		for _, v := range append(sc.Stores, sc.Variants...) {
			jobs = append(jobs, job{sc, v})
		}
	}
	total, n := len(jobs)**repeat, 0
	for k := 1; k <= *repeat; k++ {
		for _, j := range jobs {
			if ctx.Err() != nil {
				break
			}
			n++
			fmt.Fprintf(os.Stderr, "[%2d/%d] %-20s %-9s ", n, total, j.v.Name, j.sc.Name)
			prof := ""
			if *profDir != "" {
				prof = filepath.Join(*profDir, fmt.Sprintf("%s-%s-%d.pprof", j.v.Name, j.sc.Name, k))
			}
			r := runOne(ctx, bin, j.v, j.sc, prof)
			r.Rep = k
			rep.Runs = append(rep.Runs, r)
			fmt.Fprintln(os.Stderr, summary(r))
		}
	}
	rep.Seconds = time.Since(started).Seconds()
	if err := writeReport(*outDir, rep); err != nil {
		log.Fatal(err)
	}
	fmt.Print(markdown(rep))
	fmt.Fprintf(os.Stderr, "wrote %s in %.0fs\n", *outDir, rep.Seconds)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// build compiles chatserver and loadgen into dir.
func build(ctx context.Context, dir string) error {
	modDir, err := moduleDir(ctx)
	if err != nil {
		return err
	}
	for _, cmd := range []string{"chatserver", "loadgen"} {
		c := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, cmd), "./cmd/"+cmd)
		c.Dir = modDir
		c.Stderr = os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("building %s: %w", cmd, err)
		}
	}
	return nil
}

// moduleDir finds the benchmarks module from the working directory.
func moduleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	data, err := os.ReadFile(gomod)
	if err != nil || !strings.Contains(string(data), "module github.com/seed014c2c51/chatroom/benchmarks\n") {
		return "", fmt.Errorf("run compare from the benchmarks module (go.mod found: %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

// server is a running chatserver process.
type server struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	addrs     []string // one per node
	brokerPID int      // redis-server it started, or 0
	done      chan struct{}
	// heartbeats are the lines chatserver printed after its address, read
	// once tailDone is closed (after the process exited).
	heartbeats []string
	tailDone   chan struct{}
}

func startServer(ctx context.Context, bin string, v Variant, extra []string, profile string) (*server, error) {
	args := []string{"-impl", v.Name, "-addr", "127.0.0.1:0"}
	if v.Nodes > 0 {
		args = []string{"-impl", "chatroom", "-nodes", strconv.Itoa(v.Nodes), "-broker", v.Broker, "-addr", "127.0.0.1:0"}
		if v.Presence != "" {
			args = append(args, "-presence", v.Presence)
		}
	}
	if v.Store != "" {
		args = []string{"-impl", "chatroom", "-store", v.Store, "-addr", "127.0.0.1:0"}
	}
	args = append(args, extra...)
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	cmd := exec.Command(filepath.Join(bin, "chatserver"), args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, stdin: stdin, done: make(chan struct{}), tailDone: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()

	// The startup report: "broker-pid PID" lines, then "listening
	// ADDR[,ADDR...]"; then, at exit, "heartbeats ..." lines. The goroutine
	// ends when the server's stdout does, which stop ensures.
	lines := make(chan string, 1)
	go func() {
		defer close(s.tailDone)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-s.done: // nobody is listening any more
				return
			}
			if strings.HasPrefix(sc.Text(), "listening ") {
				break
			}
		}
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "heartbeats "); ok {
				s.heartbeats = append(s.heartbeats, l)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	timeout := time.After(startTimeout)
wait:
	for {
		select {
		case l, ok := <-lines:
			if pid, found := strings.CutPrefix(l, "broker-pid "); found {
				s.brokerPID, _ = strconv.Atoi(pid)
				continue
			}
			addrs, found := strings.CutPrefix(l, "listening ")
			if !ok || !found {
				s.stop()
				return nil, fmt.Errorf("chatserver did not report its address (got %q)", l)
			}
			s.addrs = strings.Split(addrs, ",")
			return s, nil
		case <-timeout:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	s.stop()
	return nil, fmt.Errorf("chatserver did not start within %s", startTimeout)
}

// startTimeout bounds a chatserver's start, PostgreSQL's included.
const startTimeout = 30 * time.Second

// stop closes the server's stdin, then sends SIGTERM, then SIGKILL.
func (s *server) stop() {
	_ = s.stdin.Close()
	select {
	case <-s.done:
		return
	case <-time.After(3 * time.Second):
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return
	case <-time.After(3 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

func runOne(ctx context.Context, bin string, v Variant, sc Scenario, profile string) (r Run) {
	start := time.Now()
	r = Run{Impl: v.Name, Nodes: v.Nodes, Broker: v.Broker, Store: v.Store, Scenario: sc.Name}
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	srv, err := startServer(ctx, bin, v, sc.ServerArgs, profile)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer srv.stop()

	urls := make([]string, len(srv.addrs))
	for i, a := range srv.addrs {
		urls[i] = "ws://" + a + servers.Path
	}
	args := append([]string{"-url", strings.Join(urls, ","), "-json"}, sc.Args...)
	args = append(args, "-server-pid", strconv.Itoa(srv.cmd.Process.Pid))
	if sc.Variants != nil {
		args = append(args, "-senders-first")
	}
	if srv.brokerPID > 0 {
		args = append(args, "-broker-pid", strconv.Itoa(srv.brokerPID))
	}
	lctx, cancel := context.WithTimeout(ctx, sc.Timeout)
	defer cancel()
	cmd := exec.CommandContext(lctx, filepath.Join(bin, "loadgen"), args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var parsed struct {
		load.Result
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &parsed); err != nil {
		switch {
		case lctx.Err() != nil:
			r.Error = fmt.Sprintf("loadgen timed out after %s", sc.Timeout)
		case runErr != nil:
			r.Error = fmt.Sprintf("loadgen: %v: %s", runErr, lastLine(stderr.String()))
		default:
			r.Error = fmt.Sprintf("loadgen output: %v", err)
		}
		return r
	}
	r.Result = &parsed.Result
	select {
	case <-srv.done:
		r.Error = "server exited during the run"
		return r
	default:
	}
	if parsed.Error != "" {
		r.Error = parsed.Error
		return r
	}
	r.OK = true
	if sc.Name == "presence" {
		srv.stop()
		select {
		case <-srv.tailDone:
		case <-time.After(5 * time.Second):
			r.OK, r.Error = false, "chatserver's stdout did not end"
			return r
		}
		for _, l := range srv.heartbeats {
			h, err := parseHeartbeats(l)
			if err != nil {
				r.OK, r.Error = false, fmt.Sprintf("heartbeats line %q: %v", l, err)
				return r
			}
			r.Heartbeats = append(r.Heartbeats, h)
		}
	}
	return r
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// summary is the progress line of one run.
func summary(r Run) string {
	if !r.OK {
		return fmt.Sprintf("FAILED (%.1fs): %s", r.Seconds, r.Error)
	}
	res := r.Result
	switch {
	case r.Scenario == "idle":
		return fmt.Sprintf("%.1f KiB/conn (%.1fs)", res.RSSPerConnKiB, r.Seconds)
	case res.Conns != nil:
		return fmt.Sprintf("%d connected at %.0f/s, RSS %.2f KiB/conn, heap live %.2f + stacks %.2f KiB/conn, to all %s ms (%.1fs)",
			res.Connected, res.Conns.ConnectPerSec, res.RSSPerConnKiB, res.Conns.HeapLivePerConnKiB, res.Conns.StackPerConnKiB, msList(res.Conns.DeliveryMs), r.Seconds)
	default:
		s := fmt.Sprintf("%.0f deliveries/s, p50 %.2fms p99 %.2fms, lost %d (%.1fs)",
			res.DeliveriesPerSec, res.Latency.P50, res.Latency.P99, res.Lost, r.Seconds)
		if len(res.SlowMembers) > 0 {
			s += "; slow: " + slowFate(res.SlowMembers[0])
		}
		return s
	}
}
