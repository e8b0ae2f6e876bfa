package load

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/memstats"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/sysutil"
)

// ConnsConfig describes a run of many idle connections (RunConns): Conns
// clients connect and stay idle; then each is sent one message it does
// not read; then Rounds messages go to all, each once the last has reached
// every client.
//
// The clients live in worker processes (WorkerExe run with WorkerFlag) of
// at most PerWorker connections each, so that no process needs more file
// descriptors than its limit allows, and connect from source addresses
// 127.0.0.1, 127.0.0.2, ... with at most PerSource connections each, so
// that no source address runs out of ephemeral ports (Linux routes all of
// 127/8 to the loopback interface). One more client, in this process,
// sends the messages; it counts among Conns.
type ConnsConfig struct {
	URL       string // ws://127.0.0.1:PORT/chat (loopback only)
	Conns     int    // connections, the sender included (at least 2)
	PerWorker int    // connections per worker process (default 15,000)
	PerSource int    // connections per source address (default 20,000)
	Rounds    int    // messages timed to all (default 3)

	// ConnectConcurrency is the dials in flight, over all workers (default
	// 50, as Run's): the server's RSS after connecting keeps the peak of
	// the handshakes in flight, so it depends on this.
	ConnectConcurrency int
	ConnectTimeout     time.Duration // for the whole connection phase (default 180s)
	WaitTimeout        time.Duration // for each later phase (default 30s)
	ServerPID          int           // read the server's VmRSS when > 0
	// MemStats fetches the server's Go heap after a collection from
	// memstats.Path on the URL's host and port (chatserver -memstats).
	MemStats bool
	// WorkerExe is the program to run as a worker with WorkerFlag first
	// (default: this executable, which must call WorkerMain for it).
	WorkerExe string
}

// WorkerFlag, as a program's first argument, asks it to run WorkerMain
// with the remaining arguments.
const WorkerFlag = "-conns-worker"

// Snapshot is the server's and the kernel's memory at one point of a
// RunConns run.
type Snapshot struct {
	RSSKiB   int64            `json:"rss_kib,omitempty"`
	Heap     *memstats.Stats  `json:"heap,omitempty"`
	Sockstat sysutil.Sockstat `json:"sockstat"`
	SlabKiB  int64            `json:"slab_kib"`
	// slabs are /proc/slabinfo's caches, bytes each; nil if unreadable.
	slabs map[string]int64
	// The server's ends of the connections to its port, and the clients'
	// ends, from ss -m; nil if ss failed.
	Server *sysutil.SockMem `json:"server_sockets,omitempty"`
	Client *sysutil.SockMem `json:"client_sockets,omitempty"`
}

// SlabCache is one slab cache's growth per connection, both ends.
type SlabCache struct {
	Name         string  `json:"name"`
	BytesPerConn float64 `json:"bytes_per_conn"`
}

// ConnsResult is what RunConns measured beyond Result's connection and
// RSS fields. Per-connection figures divide by the connections held.
type ConnsResult struct {
	Workers int `json:"workers"`
	Sources int `json:"sources"`
	// ConnectPerSec is the connections made ÷ the time from the first
	// worker's first dial to the last worker's last upgrade.
	ConnectPerSec float64 `json:"connect_per_sec"`

	Before Snapshot `json:"before"`
	Idle   Snapshot `json:"idle"` // connected and settled
	// Busy: after one message to all that no client reads, once every
	// worker client's receive queue holds it (or WaitTimeout).
	Busy Snapshot `json:"busy"`

	HeapPerConnKiB     float64 `json:"heap_per_conn_kib,omitempty"`      // HeapInuse+StackInuse, idle − before
	HeapLivePerConnKiB float64 `json:"heap_live_per_conn_kib,omitempty"` // HeapAlloc after the collection, idle − before
	StackPerConnKiB    float64 `json:"stack_per_conn_kib,omitempty"`     // StackInuse, idle − before
	// BusyRSSPerConnKiB is the server's RSS with the unread message
	// sent, less before, per connection.
	BusyRSSPerConnKiB float64 `json:"busy_rss_per_conn_kib,omitempty"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn,omitempty"` // idle − before
	// Kernel socket memory per connection: the server's end alone (ss),
	// and the whole of TCP's accounting (sockstat mem, both ends of each
	// loopback connection and anything else on the host), idle and busy.
	ServerSockIdleKiB float64 `json:"server_sock_idle_kib"`
	ServerSockBusyKiB float64 `json:"server_sock_busy_kib"`
	ClientSockIdleKiB float64 `json:"client_sock_idle_kib"`
	ClientSockBusyKiB float64 `json:"client_sock_busy_kib"`
	SockstatIdleKiB   float64 `json:"sockstat_idle_kib"`
	SockstatBusyKiB   float64 `json:"sockstat_busy_kib"`
	SlabPerConnKiB    float64 `json:"slab_per_conn_kib"` // idle − before: both ends of a loopback connection
	// SlabCaches: the slab caches that grew (or shrank) by more than 16
	// bytes per connection, idle − before, largest first; empty if
	// /proc/slabinfo is unreadable.
	SlabCaches []SlabCache `json:"slab_caches,omitempty"`
	BusyQueued int         `json:"busy_queued"` // worker clients holding the unread message
	DeliveryMs []float64   `json:"delivery_ms"` // per round: send to the last client's receipt
	Dropped    int         `json:"dropped"`     // worker clients the server disconnected
}

func (c *ConnsConfig) defaults() error {
	if c.PerWorker <= 0 {
		c.PerWorker = 15000
	}
	if c.PerSource <= 0 {
		c.PerSource = 20000
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 50
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 180 * time.Second
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = 30 * time.Second
	}
	if c.Conns < 2 {
		return errors.New("conns must be at least 2: a sender and a receiver")
	}
	if c.Rounds > maxRounds-firstRound {
		return fmt.Errorf("rounds must be at most %d", maxRounds-firstRound)
	}
	if c.WorkerExe == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.WorkerExe = exe
	}
	_, err := checkURL(c.URL)
	return err
}

// Rounds of messages: the barrier's probes, the unread message, then the
// timed rounds from firstRound on. maxRounds bounds the rounds a worker
// keeps counters for.
const (
	probeRound  = 0
	unreadRound = 1
	firstRound  = 2
	maxRounds   = 16
)

// connsMarker starts the text of every message RunConns sends: "conns K
// UNIXNANO", K the round.
var connsMarker = []byte(`"message":"conns `)

// RunConns connects cfg.Conns idle clients and measures the server's
// memory and the kernel's, the connect rate and the time one message takes
// to reach them all (ConnsConfig). The Result holds the connection and RSS
// figures in Result's fields and the rest in Conns. It returns an error
// only when the run could not take place at all; a partial run keeps its
// figures and lists what went wrong in Errors.
func RunConns(ctx context.Context, cfg ConnsConfig) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	u, _ := checkURL(cfg.URL) // checked by defaults
	port, _ := strconv.Atoi(u.Port())
	cr := &ConnsResult{}
	res := &Result{Members: cfg.Conns, Conns: cr}
	c := &connsRun{cfg: cfg, port: port, res: res}
	if cfg.MemStats {
		c.memURL = "http://" + u.Host + memstats.Path
	}
	cr.Before = c.snapshot(ctx)

	// The sender: it reads (and so pongs) all along, and counts as a
	// member; the workers hold the rest.
	sender, err := dialWith(ctx, cfg.URL+"?nickname=sender", dialOptions{bufSize: 4096})
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	defer sender.close()
	go func() {
		buf := make([]byte, 0, 256)
		pong := func(p []byte) error { return sender.writeFrame(ws.OpPong, p) }
		for {
			op, p, err := readMessage(sender.br, buf, pong)
			if err != nil || op == ws.OpClose {
				return
			}
			buf = p
		}
	}()

	err = c.startWorkers(ctx)
	defer c.stopWorkers()
	res.Connected = 1
	for _, w := range c.workers {
		res.Connected += w.hello.Connected
	}
	if err != nil {
		return res, err
	}
	c.measureIdle(ctx)
	if err := c.barrier(ctx, sender); err != nil {
		return res, err
	}
	if err := c.busy(ctx, sender); err != nil {
		return res, err
	}
	for k := firstRound; k < firstRound+cfg.Rounds; k++ {
		ms, err := c.deliver(ctx, sender, k)
		if err != nil {
			return res, err
		}
		cr.DeliveryMs = append(cr.DeliveryMs, ms)
	}
	return res, nil
}

// connsRun is the shared state of one RunConns.
type connsRun struct {
	cfg     ConnsConfig
	port    int
	memURL  string
	res     *Result
	workers []*workerProc
}

func (c *connsRun) errorf(format string, args ...any) {
	if len(c.res.Errors) < 20 {
		c.res.Errors = append(c.res.Errors, fmt.Sprintf(format, args...))
	}
}

// snapshot reads the server's RSS and heap and the kernel's socket
// accounting, noting what it could not read.
func (c *connsRun) snapshot(ctx context.Context) Snapshot {
	var s Snapshot
	var err error
	if c.cfg.ServerPID > 0 {
		if s.RSSKiB, err = sysutil.RSSKiB(c.cfg.ServerPID); err != nil {
			c.errorf("RSS: %v", err)
		}
	}
	// After RSS: the collection may change it.
	if c.memURL != "" {
		if h, err := memstats.Fetch(ctx, c.memURL); err != nil {
			c.errorf("%v", err)
		} else {
			s.Heap = &h
		}
	}
	if s.Sockstat, err = sysutil.ReadSockstat(); err != nil {
		c.errorf("sockstat: %v", err)
	}
	if s.SlabKiB, err = sysutil.SlabKiB(); err != nil {
		c.errorf("slab: %v", err)
	}
	s.slabs, _ = sysutil.SlabCaches() // unreadable without root: skipped
	for _, local := range []bool{true, false} {
		m, err := sysutil.PortSockMem(ctx, c.port, local)
		if err != nil {
			c.errorf("%v", err)
			break
		}
		if local {
			s.Server = &m
		} else {
			s.Client = &m
		}
	}
	return s
}

// measureIdle takes the idle snapshot once the server's RSS has settled.
func (c *connsRun) measureIdle(ctx context.Context) {
	res, cr := c.res, c.res.Conns
	n := float64(res.Connected)
	if c.cfg.ServerPID > 0 {
		settledRSS(ctx, c.cfg.ServerPID)
	}
	cr.Idle = c.snapshot(ctx)
	b, i := cr.Before, cr.Idle
	if c.cfg.ServerPID > 0 {
		res.RSSBeforeKiB, res.RSSAfterKiB = b.RSSKiB, i.RSSKiB
		res.RSSPerConnKiB = float64(i.RSSKiB-b.RSSKiB) / n
	}
	if b.Heap != nil && i.Heap != nil {
		used := func(h *memstats.Stats) float64 { return float64(h.HeapInuse + h.StackInuse) }
		cr.HeapPerConnKiB = (used(i.Heap) - used(b.Heap)) / 1024 / n
		cr.GoroutinesPerConn = float64(i.Heap.Goroutines-b.Heap.Goroutines) / n
		cr.HeapLivePerConnKiB = (float64(i.Heap.HeapAlloc) - float64(b.Heap.HeapAlloc)) / 1024 / n
		cr.StackPerConnKiB = (float64(i.Heap.StackInuse) - float64(b.Heap.StackInuse)) / 1024 / n
	}
	cr.SlabPerConnKiB = float64(i.SlabKiB-b.SlabKiB) / n
	if b.slabs != nil && i.slabs != nil {
		for name, v := range i.slabs {
			if d := float64(v-b.slabs[name]) / n; d > 16 || d < -16 {
				cr.SlabCaches = append(cr.SlabCaches, SlabCache{name, d})
			}
		}
		slices.SortFunc(cr.SlabCaches, func(x, y SlabCache) int { return cmp.Compare(y.BytesPerConn, x.BytesPerConn) })
	}
	cr.SockstatIdleKiB = float64(i.Sockstat.TCPMemPages-b.Sockstat.TCPMemPages) * 4 / n
	cr.ServerSockIdleKiB, cr.ClientSockIdleKiB = perSocketKiB(i.Server), perSocketKiB(i.Client)
}

// perSocketKiB is m's charged memory per socket, in KiB.
func perSocketKiB(m *sysutil.SockMem) float64 {
	if m == nil || m.Sockets == 0 {
		return 0
	}
	return float64(m.Charged()) / 1024 / float64(m.Sockets)
}

// busy pauses the workers' reading, sends one message to all, waits until
// every worker client's receive queue holds it (per ss; without ss, until
// TCP's page count holds still), takes the busy snapshot and lets the
// clients read it.
func (c *connsRun) busy(ctx context.Context, sender *member) error {
	cr := c.res.Conns
	if err := c.command("pause"); err != nil {
		return err
	}
	if err := sender.writeFrame(ws.OpText, connsMessage(unreadRound)); err != nil {
		return fmt.Errorf("sending the unread message: %w", err)
	}
	want := c.res.Connected - 1
	deadline := time.Now().Add(c.cfg.WaitTimeout)
	var lastPages int64 = -1
	still := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if m, err := sysutil.PortSockMem(ctx, c.port, false); err == nil {
			// The sender's end reads, so it does not count.
			if cr.BusyQueued = m.Queued; m.Queued >= want {
				break
			}
			continue
		}
		st, err := sysutil.ReadSockstat()
		if err != nil {
			break
		}
		if st.TCPMemPages == lastPages {
			if still++; still >= 5 {
				break
			}
		} else {
			still = 0
		}
		lastPages = st.TCPMemPages
	}
	cr.Busy = c.snapshot(ctx)
	if cr.Busy.Client != nil {
		cr.BusyQueued = cr.Busy.Client.Queued
	}
	if cr.BusyQueued < want {
		c.errorf("busy: %d of %d clients held the unread message after %s", cr.BusyQueued, want, c.cfg.WaitTimeout)
	}
	n := float64(c.res.Connected)
	if c.cfg.ServerPID > 0 {
		cr.BusyRSSPerConnKiB = float64(cr.Busy.RSSKiB-cr.Before.RSSKiB) / n
	}
	cr.SockstatBusyKiB = float64(cr.Busy.Sockstat.TCPMemPages-cr.Before.Sockstat.TCPMemPages) * 4 / n
	cr.ServerSockBusyKiB, cr.ClientSockBusyKiB = perSocketKiB(cr.Busy.Server), perSocketKiB(cr.Busy.Client)
	if err := c.command("resume"); err != nil {
		return err
	}
	_, err := c.wait(ctx, unreadRound)
	return err
}

// barrier makes sure the server has registered every client before the
// unread message and the timed rounds: a server may answer the upgrade
// before it adds the connection to its room. The sender sends a probe
// every 100 ms until every client has received one, for at most
// WaitTimeout. It comes after the idle snapshot, so that idle means a
// connection that has received nothing.
func (c *connsRun) barrier(ctx context.Context, sender *member) error {
	deadline := time.Now().Add(c.cfg.WaitTimeout)
	for ctx.Err() == nil {
		if err := sender.writeFrame(ws.OpText, connsMessage(probeRound)); err != nil {
			return fmt.Errorf("barrier: %w", err)
		}
		missed := 0
		for _, w := range c.workers {
			rep, err := w.round(probeRound, 100*time.Millisecond)
			if err != nil {
				return fmt.Errorf("barrier: worker %d: %w", w.index, err)
			}
			missed += rep.Of - rep.Got
		}
		if missed == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("barrier: %d clients never received a probe", missed)
		}
	}
	return ctx.Err()
}

// deliver sends round k's message and returns the milliseconds until the
// last client received it.
func (c *connsRun) deliver(ctx context.Context, sender *member, k int) (float64, error) {
	msg := connsMessage(k)
	sent := time.Now()
	if err := sender.writeFrame(ws.OpText, msg); err != nil {
		return 0, fmt.Errorf("round %d: %w", k, err)
	}
	last, err := c.wait(ctx, k)
	if err != nil {
		return 0, err
	}
	return float64(last-sent.UnixNano()) / 1e6, nil
}

// wait asks every worker for round k and returns the latest receipt, in
// UnixNano. Clients that missed it are noted in the errors.
func (c *connsRun) wait(ctx context.Context, k int) (int64, error) {
	var last int64
	var missed, dropped int
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for _, w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := w.round(k, c.cfg.WaitTimeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("worker %d, round %d: %w", w.index, k, err)
				}
				return
			}
			last = max(last, rep.LastNs)
			missed += rep.Of - rep.Got
			dropped += rep.Dropped
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	c.res.Conns.Dropped = dropped
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if missed > 0 {
		c.errorf("round %d: %d clients did not receive the message within %s", k, missed, c.cfg.WaitTimeout)
	}
	return last, nil
}

// command sends cmd to every worker and waits for each one's answer.
func (c *connsRun) command(cmd string) error {
	for _, w := range c.workers {
		if _, err := w.ask(cmd, c.cfg.WaitTimeout); err != nil {
			return fmt.Errorf("worker %d, %s: %w", w.index, cmd, err)
		}
	}
	return nil
}

func connsMessage(k int) []byte {
	b := append([]byte(nil), `{"message":"conns `...)
	b = strconv.AppendInt(b, int64(k), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	return append(b, `"}`...)
}

// sourceAddrs returns n source addresses from 127.0.0.1 on.
func sourceAddrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		v := uint32(127<<24 | 1 + i)
		out[i] = net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String()
	}
	return out
}

// workerProc is one running worker process.
type workerProc struct {
	index int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, closed at EOF
	hello workerHello
}

// ask writes a command line and returns the worker's answer line.
func (w *workerProc) ask(cmd string, timeout time.Duration) (string, error) {
	if _, err := io.WriteString(w.stdin, cmd+"\n"); err != nil {
		return "", err
	}
	select {
	case line, ok := <-w.lines:
		if !ok {
			return "", errors.New("worker exited")
		}
		return line, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no answer within %s", timeout)
	}
}

// round asks the worker to wait up to d for round k at every client.
func (w *workerProc) round(k int, d time.Duration) (roundReport, error) {
	var rep roundReport
	line, err := w.ask(fmt.Sprintf("wait %d %d", k, d.Milliseconds()), d+10*time.Second)
	if err == nil {
		err = json.Unmarshal([]byte(line), &rep)
	}
	return rep, err
}

// workerHello is a worker's first line: how many it connected, and when
// it dialed first and finished last.
type workerHello struct {
	Connected int    `json:"connected"`
	StartNs   int64  `json:"start_ns"`
	EndNs     int64  `json:"end_ns"`
	Error     string `json:"error,omitempty"`
}

// roundReport is a worker's answer to "wait K": how many of its clients
// got round K's message, and when the last of them did.
type roundReport struct {
	Round   int   `json:"round"`
	Got     int   `json:"got"`
	Of      int   `json:"of"`
	LastNs  int64 `json:"last_ns"`
	Dropped int   `json:"dropped"`
}

// startWorkers starts the worker processes, which connect at once, and
// waits for each one's hello.
func (c *connsRun) startWorkers(ctx context.Context) error {
	cfg, cr := c.cfg, c.res.Conns
	clients := cfg.Conns - 1
	nw := (clients + cfg.PerWorker - 1) / cfg.PerWorker
	cr.Sources = (cfg.Conns + cfg.PerSource - 1) / cfg.PerSource
	sources := strings.Join(sourceAddrs(cr.Sources), ",")
	first := 1
	for i := range nw {
		n := clients / nw
		if i < clients%nw {
			n++
		}
		cmd := exec.CommandContext(ctx, cfg.WorkerExe, WorkerFlag,
			"-url", cfg.URL, "-n", strconv.Itoa(n), "-first", strconv.Itoa(first), "-sources", sources,
			"-concurrency", strconv.Itoa(max(cfg.ConnectConcurrency/nw, 1)), "-connect-timeout", cfg.ConnectTimeout.String())
		cmd.Stderr = os.Stderr
		cmd.WaitDelay = 5 * time.Second
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting worker: %w", err)
		}
		w := &workerProc{index: i, cmd: cmd, stdin: stdin, lines: make(chan string, 1)}
		go func() {
			defer close(w.lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				w.lines <- sc.Text()
			}
		}()
		c.workers = append(c.workers, w)
		first += n
	}
	cr.Workers = len(c.workers)
	var firstErr error
	timeout := time.After(cfg.ConnectTimeout + 10*time.Second)
	var start, end int64
	for _, w := range c.workers {
		var line string
		var ok bool
		select {
		case line, ok = <-w.lines:
		case <-timeout:
		case <-ctx.Done():
		}
		err := errors.New("no hello")
		if ok {
			err = json.Unmarshal([]byte(line), &w.hello)
		}
		if err == nil && w.hello.Error != "" {
			err = errors.New(w.hello.Error)
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("worker %d: %w", w.index, err)
		}
		if w.hello.Connected > 0 {
			if start == 0 || w.hello.StartNs < start {
				start = w.hello.StartNs
			}
			end = max(end, w.hello.EndNs)
		}
	}
	connected := 0
	for _, w := range c.workers {
		connected += w.hello.Connected
	}
	if end > start {
		c.res.ConnectSeconds = float64(end-start) / 1e9
		cr.ConnectPerSec = float64(connected) / c.res.ConnectSeconds
	}
	return firstErr
}

// stopWorkers closes the workers' stdin, which ends them, and waits for
// them.
func (c *connsRun) stopWorkers() {
	for _, w := range c.workers {
		_ = w.stdin.Close()
	}
	for _, w := range c.workers {
		_ = w.cmd.Wait()
	}
}

// WorkerMain is a worker process of RunConns: it connects its clients,
// prints a hello line (workerHello as JSON) and then answers commands on
// stdin, one line each, until EOF:
//
//	pause        stop reading (answer "paused")
//	resume       read again (answer "resumed")
//	wait K MS    wait up to MS ms for round K at every client (answer roundReport as JSON)
func WorkerMain(args []string) error {
	fs := flag.NewFlagSet("conns-worker", flag.ContinueOnError)
	rawURL := fs.String("url", "", "server URL")
	n := fs.Int("n", 0, "clients")
	first := fs.Int("first", 0, "global index of the first client")
	sources := fs.String("sources", "127.0.0.1", "comma-separated source addresses")
	concurrency := fs.Int("concurrency", 100, "dials in flight")
	connectTimeout := fs.Duration("connect-timeout", 180*time.Second, "cap on the connection phase")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := sysutil.RaiseFileLimit(); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	w := &worker{}
	var srcs []*net.TCPAddr
	for _, s := range strings.Split(*sources, ",") {
		ip := net.ParseIP(s)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("source %q: want a loopback address", s)
		}
		srcs = append(srcs, &net.TCPAddr{IP: ip})
	}
	hello := w.connect(*rawURL, *n, *first, srcs, *concurrency, *connectTimeout)
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(hello); err != nil {
		return err
	}
	defer w.closeAll()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "pause":
			w.pause()
			fmt.Println("paused")
		case "resume":
			w.unpause()
			fmt.Println("resumed")
		case "wait":
			if len(f) != 3 {
				return fmt.Errorf("bad command %q", sc.Text())
			}
			k, err1 := strconv.Atoi(f[1])
			ms, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil || k < 0 || k >= maxRounds {
				return fmt.Errorf("bad command %q", sc.Text())
			}
			if err := out.Encode(w.wait(k, time.Duration(ms)*time.Millisecond)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
	}
	return sc.Err()
}

// worker holds one worker process's clients.
type worker struct {
	members []*member
	got     [maxRounds]atomic.Int64 // clients that received round K
	last    [maxRounds]atomic.Int64 // UnixNano of the latest receipt of round K
	dropped atomic.Int64
	parked  atomic.Int64 // readers waiting in pausable for unpause
	readers sync.WaitGroup

	mu     sync.Mutex
	resume chan struct{} // non-nil while paused; closed on resume
}

// connect dials n clients, concurrency at a time, client j from
// srcs[(first+j) mod len(srcs)], and starts their readers.
func (w *worker) connect(rawURL string, n, first int, srcs []*net.TCPAddr, concurrency int, timeout time.Duration) workerHello {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hello := workerHello{StartNs: time.Now().UnixNano()}
	members, err := dialAll(ctx, n, concurrency, func(ctx context.Context, j int) (*member, error) {
		id := first + j
		m, err := dialWith(ctx, rawURL+"?nickname=c"+strconv.Itoa(id), dialOptions{
			local: srcs[id%len(srcs)], bufSize: 1024,
			wrap: func(c net.Conn) io.Reader { return pausable{c, w} },
		})
		if err != nil {
			return nil, fmt.Errorf("client %d: %w", id, err)
		}
		m.id = id
		return m, nil
	})
	hello.EndNs = time.Now().UnixNano()
	if err != nil {
		hello.Error = err.Error()
	}
	w.members = members
	hello.Connected = len(w.members)
	for _, m := range w.members {
		w.readers.Add(1)
		go func() {
			defer w.readers.Done()
			w.readLoop(m)
		}()
	}
	return hello
}

// readLoop reads one client's frames, answering pings, and counts the
// rounds' messages, until the connection ends.
func (w *worker) readLoop(m *member) {
	buf := make([]byte, 0, 128)
	pong := func(p []byte) error { return m.writeFrame(ws.OpPong, p) }
	seen := uint64(0) // rounds received, a bit each
	for {
		op, p, err := readMessage(m.br, buf, pong)
		buf = p
		if err != nil || op == ws.OpClose {
			if !m.closing.Load() {
				w.dropped.Add(1)
			}
			return
		}
		i := bytes.Index(p, connsMarker)
		if op != ws.OpText || i < 0 {
			continue
		}
		now := time.Now().UnixNano()
		rest := p[i+len(connsMarker):]
		j := bytes.IndexByte(rest, ' ')
		k, err := strconv.Atoi(string(rest[:max(j, 0)]))
		if err != nil || k < 0 || k >= maxRounds || seen&(1<<k) != 0 {
			continue
		}
		seen |= 1 << k
		w.got[k].Add(1)
		for {
			l := w.last[k].Load()
			if now <= l || w.last[k].CompareAndSwap(l, now) {
				break
			}
		}
	}
}

// wait waits up to d for every client to receive round k.
func (w *worker) wait(k int, d time.Duration) roundReport {
	deadline := time.Now().Add(d)
	want := int64(len(w.members)) - w.dropped.Load()
	for w.got[k].Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		want = int64(len(w.members)) - w.dropped.Load()
	}
	return roundReport{Round: k, Got: int(w.got[k].Load()), Of: len(w.members), LastNs: w.last[k].Load(), Dropped: int(w.dropped.Load())}
}

// pause makes every reader stop at its next read: a read deadline in the
// past ends the read in progress, and pausable waits for unpause. It
// returns once every reader waits there, or after 10 s: a reader woken by
// the deadline but not yet run would still read data that arrives before
// it runs.
func (w *worker) pause() {
	w.mu.Lock()
	if w.resume == nil {
		w.resume = make(chan struct{})
	}
	w.mu.Unlock()
	for _, m := range w.members {
		_ = m.conn.SetReadDeadline(time.Unix(1, 0))
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.parked.Load() < int64(len(w.members))-w.dropped.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// unpause clears the deadlines, then wakes the readers.
func (w *worker) unpause() {
	for _, m := range w.members {
		_ = m.conn.SetReadDeadline(time.Time{})
	}
	w.mu.Lock()
	if w.resume != nil {
		close(w.resume)
		w.resume = nil
	}
	w.mu.Unlock()
}

func (w *worker) resumed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.resume
}

func (w *worker) closeAll() {
	w.unpause()
	for _, m := range w.members {
		m.close()
	}
	w.readers.Wait()
}

// pausable reads from a client's connection; a read that ends at the
// deadline pause set waits for unpause and reads again, so the frame
// reader above it never sees the pause, even in the middle of a frame.
type pausable struct {
	conn net.Conn
	w    *worker
}

func (p pausable) Read(b []byte) (int, error) {
	for {
		n, err := p.conn.Read(b)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		// Only pause sets deadlines, so this one is pause's, even if
		// unpause has run since.
		if ch := p.w.resumed(); ch != nil {
			p.w.parked.Add(1)
			<-ch
			p.w.parked.Add(-1)
		}
	}
}
