// Package load drives a chat server with many WebSocket members and measures
// what they receive: throughput, latency, loss, duplicates and reordering.
//
// Members 0..Senders-1 send; the last Slow members connect and never read;
// every other member reads with one goroutine and a small gobwas/ws frame
// reader. A message text is "SENDER SEQ UNIXNANO", so each receiver computes
// latency and checks each sender's sequence for gaps, duplicates and order.
//
// With several URLs (the nodes of one cluster, serving one room) the
// members are spread over them round-robin, or, with SendersFirst, the
// senders all connect to the first URL and the other members round-robin
// over all of them. Accounting is the same as with one URL, since member
// and sender numbers are global; the result also splits the deliveries into
// those within one node and those that crossed nodes.
package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/sysutil"
)

// Config describes one load run. Every loop it starts is bounded by
// Messages and by Duration.
type Config struct {
	URL      string        // ws://127.0.0.1:PORT/chat (loopback only); several comma-separated, or use URLs
	URLs     []string      // the nodes of one cluster; if set, URL is ignored
	Members  int           // connections, senders and slow members included
	Senders  int           // members that send (the first ones)
	Slow     int           // members that never read (the last ones)
	Rate     float64       // messages per second per sender; 0 = as fast as the window allows
	Window   int           // with Rate 0: own messages in flight per sender
	Messages int           // messages per sender
	Duration time.Duration // hard cap on sending plus waiting for deliveries
	Pad      int           // bytes of padding appended to every message text
	// SendersFirst connects every sender to the first URL, so that every
	// delivery to a member on another URL crosses nodes. Otherwise member i
	// connects to URL i mod len(URLs).
	SendersFirst bool

	ConnectConcurrency int           // dials in flight (default 50)
	ConnectTimeout     time.Duration // for the whole connection phase (default 60s)
	DrainTimeout       time.Duration // wait for deliveries after the last send (default 10s)
	ServerPID          int           // read the server's VmRSS and CPU time when > 0
	BrokerPID          int           // a broker process of its own (redis-server): report its CPU time when > 0
	SlowReadBuffer     int           // SO_RCVBUF of slow members (default 4096)
	SlowWait           time.Duration // after sending, wait this long for slow members to be cut (default 15s)
}

// Latency holds delivery latency quantiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// SlowReport tells what became of a member that never read.
type SlowReport struct {
	Received    int64  `json:"received"`             // data frames read after the run
	Cut         bool   `json:"cut"`                  // the server closed the connection
	CloseCode   int    `json:"close_code,omitempty"` // from its close frame, if any
	CloseReason string `json:"close_reason,omitempty"`
	Note        string `json:"note,omitempty"`
	// Seconds after the first send: when the member's receive queue last
	// grew, and when the server cut the connection (0: not seen while
	// sending; the drain afterwards may still find it cut).
	StalledAfter float64 `json:"stalled_after_s,omitempty"`
	// When the server's kernel send queue for the member last grew: its
	// writes block from about then.
	BlockedAfter float64 `json:"blocked_after_s,omitempty"`
	CutAfter     float64 `json:"cut_after_s,omitempty"`
}

// Split is the part of a run's deliveries that stayed within one node, or
// crossed from the sender's node to another.
type Split struct {
	Expected int64   `json:"expected"` // sent × readers concerned
	Received int64   `json:"received"` // distinct deliveries while the run lasted
	Lost     int64   `json:"lost"`
	Latency  Latency `json:"latency"`
}

// Result is the outcome of a run.
type Result struct {
	Members  int     `json:"members"`
	Senders  int     `json:"senders"`
	Slow     int     `json:"slow"`
	Rate     float64 `json:"rate"`
	Window   int     `json:"window"`
	Messages int     `json:"messages"`
	Pad      int     `json:"pad,omitempty"`

	// With several URLs: how many, where the senders were, and the members
	// connected to each URL.
	Nodes          int   `json:"nodes,omitempty"`
	SendersFirst   bool  `json:"senders_first,omitempty"`
	MembersPerNode []int `json:"members_per_node,omitempty"`

	Connected      int     `json:"connected"`
	ConnectSeconds float64 `json:"connect_seconds"`

	Sent       int64 `json:"sent"`       // messages the senders wrote
	Expected   int64 `json:"expected"`   // Sent × readers
	Received   int64 `json:"received"`   // distinct deliveries while the run lasted
	Late       int64 `json:"late"`       // deliveries after the run stopped waiting (also in Lost)
	Frames     int64 `json:"frames"`     // data frames read, duplicates included
	Lost       int64 `json:"lost"`       // Expected - Received: not delivered in time, or never
	Duplicates int64 `json:"duplicates"` // a sender's message seen again by a member
	Reordered  int64 `json:"reordered"`  // a sender's message after a later one
	Malformed  int64 `json:"malformed"`  // frames that did not parse
	// Presence counts the presence frames read (a room with
	// chatroom.WithPresence): members, join, leave and presence frames.
	Presence int64 `json:"presence_frames,omitempty"`
	Dropped  int   `json:"dropped"`   // readers the server disconnected during the run
	TimedOut bool  `json:"timed_out"` // gave up waiting for deliveries

	ElapsedSeconds   float64 `json:"elapsed_seconds"` // first send to last delivery (or give-up)
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	Latency          Latency `json:"latency"`

	// CPU time used from the first send to the end of the run, in seconds.
	ServerCPUSeconds  float64 `json:"server_cpu_seconds,omitempty"`
	BrokerCPUSeconds  float64 `json:"broker_cpu_seconds,omitempty"` // Config.BrokerPID's
	LoadgenCPUSeconds float64 `json:"loadgen_cpu_seconds,omitempty"`

	// With several URLs: deliveries to members on the sender's node, and to
	// members on another node.
	Local *Split `json:"local,omitempty"`
	Cross *Split `json:"cross_node,omitempty"`

	RSSBeforeKiB  int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB   int64   `json:"rss_after_kib,omitempty"`
	RSSPerConnKiB float64 `json:"rss_per_conn_kib,omitempty"`

	// Conns holds what RunConns measured besides the connection and RSS
	// fields above.
	Conns *ConnsResult `json:"conns,omitempty"`

	// MissingSample names up to 10 lost deliveries as "member<-sender#seq".
	MissingSample []string     `json:"missing_sample,omitempty"`
	SlowMembers   []SlowReport `json:"slow_members,omitempty"`
	Errors        []string     `json:"errors,omitempty"`
}

func (c *Config) defaults() error {
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 50
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 60 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.Window <= 0 {
		c.Window = 16
	}
	if c.SlowWait <= 0 {
		c.SlowWait = 15 * time.Second
	}
	if c.SlowReadBuffer <= 0 {
		c.SlowReadBuffer = 4096
	}
	switch {
	case c.Members <= 0:
		return errors.New("members must be positive")
	case c.Senders < 0 || c.Slow < 0 || c.Messages < 0 || c.Rate < 0 || c.Pad < 0:
		return errors.New("senders, slow, messages, rate and pad must not be negative")
	case c.Pad > 16<<10:
		return errors.New("pad must be at most 16 KiB (servers read at most 32 KiB)")
	case c.Senders+c.Slow > c.Members:
		return errors.New("senders + slow must not exceed members")
	}
	if len(c.URLs) == 0 {
		c.URLs = SplitURLs(c.URL)
	}
	if len(c.URLs) == 0 {
		return errors.New("no server URL")
	}
	for _, raw := range c.URLs {
		if _, err := checkURL(raw); err != nil {
			return err
		}
	}
	return nil
}

// checkURL parses raw and makes sure it is a ws:// URL on a loopback IP.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("url %q: want ws://", raw)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("url %q: host must be a loopback IP", raw)
	}
	return u, nil
}

// SplitURLs splits a comma-separated list of URLs, dropping empty entries.
func SplitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// NodeOf returns the index in c.URLs of the URL member i connects to.
func (c *Config) NodeOf(i int) int {
	n := len(c.URLs)
	switch {
	case n <= 1:
		return 0
	case !c.SendersFirst:
		return i % n
	case i < c.Senders:
		return 0
	default:
		return (i - c.Senders) % n
	}
}

// run is the shared state of one Run.
type run struct {
	cfg       Config
	members   []*member
	delivered atomic.Int64 // distinct deliveries, flushed in batches
	firstSend atomic.Int64 // UnixNano of the first send
	stopped   atomic.Bool  // the run stopped waiting; later deliveries are late
	sent      atomic.Int64
	readers   sync.WaitGroup

	errMu  sync.Mutex
	errors []string
}

func (r *run) errorf(format string, args ...any) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if len(r.errors) < 20 {
		r.errors = append(r.errors, fmt.Sprintf(format, args...))
	}
}

// Run connects cfg.Members members, measures the server's memory when
// cfg.ServerPID is set, sends, waits for the deliveries and reports. It
// returns an error only when the run could not take place at all.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg}
	res := &Result{
		Members: cfg.Members, Senders: cfg.Senders, Slow: cfg.Slow,
		Rate: cfg.Rate, Window: cfg.Window, Messages: cfg.Messages, Pad: cfg.Pad,
	}
	if len(cfg.URLs) > 1 {
		res.Nodes, res.SendersFirst = len(cfg.URLs), cfg.SendersFirst
		res.MembersPerNode = make([]int, len(cfg.URLs))
		for i := range cfg.Members {
			res.MembersPerNode[cfg.NodeOf(i)]++
		}
	}
	defer func() { res.Errors = r.errors }()

	if cfg.ServerPID > 0 {
		rss, err := sysutil.RSSKiB(cfg.ServerPID)
		if err != nil {
			return nil, err
		}
		res.RSSBeforeKiB = rss
	}

	start := time.Now()
	err := r.connect(ctx)
	defer r.closeAll()
	res.ConnectSeconds = time.Since(start).Seconds()
	res.Connected = len(r.members)
	if err != nil {
		return res, err
	}

	if cfg.ServerPID > 0 {
		res.RSSAfterKiB = settledRSS(ctx, cfg.ServerPID)
		res.RSSPerConnKiB = float64(res.RSSAfterKiB-res.RSSBeforeKiB) / float64(cfg.Members)
	}

	if cfg.Senders > 0 && cfg.Messages > 0 {
		if err := r.barrier(ctx); err != nil {
			return res, err
		}
		stopWatch := make(chan struct{})
		for _, m := range r.members {
			if m.slow {
				m.watchDone = make(chan struct{})
				go m.watchSlow(time.Now(), stopWatch)
			}
		}
		r.send(ctx, res)
		// Give the server SlowWait to cut the slow members before anything
		// reads from them: reading would unblock its writes.
		giveUp := time.After(cfg.SlowWait)
		for _, m := range r.members {
			if m.watchDone == nil {
				continue
			}
			select {
			case <-m.watchDone:
			case <-giveUp:
			}
		}
		close(stopWatch)
		for _, m := range r.members {
			if m.watchDone != nil {
				<-m.watchDone
			}
		}
	}
	if cfg.Slow > 0 {
		r.inspectSlow(res)
	}
	r.closeAll()
	r.readers.Wait()
	r.collect(res)
	return res, nil
}

// settledRSS polls the server's VmRSS until two readings 100 ms apart
// differ by under 1%, for at most 2 s.
func settledRSS(ctx context.Context, pid int) int64 {
	prev, _ := sysutil.RSSKiB(pid)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		cur, err := sysutil.RSSKiB(pid)
		if err != nil {
			return prev
		}
		diff := cur - prev
		if diff < 0 {
			diff = -diff
		}
		prev = cur
		if diff*100 < cur {
			break
		}
	}
	return prev
}

// connect dials every member, cfg.ConnectConcurrency at a time, and starts
// the readers.
func (r *run) connect(ctx context.Context) error {
	cfg := r.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	members, err := dialAll(ctx, cfg.Members, cfg.ConnectConcurrency, func(ctx context.Context, i int) (*member, error) {
		slow := i >= cfg.Members-cfg.Slow
		m, err := dial(ctx, cfg.URLs[cfg.NodeOf(i)], i, slow, cfg.SlowReadBuffer)
		if err != nil {
			return nil, fmt.Errorf("member %d: %w", i, err)
		}
		m.node = cfg.NodeOf(i)
		return m, nil
	})
	r.members = members
	if err != nil {
		return err
	}
	for _, m := range r.members {
		m.init(cfg)
		if !m.slow {
			r.readers.Add(1)
			go func(m *member) {
				defer r.readers.Done()
				m.readLoop(r)
			}(m)
		}
	}
	return nil
}

// dialAll runs dialOne for 0..n-1, concurrency at a time, until the first
// error or the end of ctx, and returns the members it connected, in order,
// and that error.
func dialAll(ctx context.Context, n, concurrency int, dialOne func(context.Context, int) (*member, error)) ([]*member, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	members := make([]*member, n)
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for i := range members {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m, err := dialOne(ctx, i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				cancel()
				return
			}
			members[i] = m
		}()
	}
	wg.Wait()
	var out []*member
	for _, m := range members {
		if m != nil {
			out = append(out, m)
		}
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("connecting: %w", ctx.Err())
	}
	return out, firstErr
}

func dial(ctx context.Context, rawURL string, id int, slow bool, rcvbuf int) (*member, error) {
	o := dialOptions{bufSize: 8192}
	if slow {
		o = dialOptions{rcvbuf: rcvbuf, bufSize: 4096}
	}
	m, err := dialWith(ctx, rawURL+"?nickname=m"+strconv.Itoa(id), o)
	if err != nil {
		return nil, err
	}
	m.id, m.slow = id, slow
	return m, nil
}

// dialOptions shape one client connection.
type dialOptions struct {
	rcvbuf  int          // SO_RCVBUF if > 0
	local   *net.TCPAddr // source address to bind, if set
	bufSize int          // of the member's bufio.Reader
	// wrap, if set, stands between the connection and the member's reader.
	wrap func(net.Conn) io.Reader
}

// dialWith connects to u and returns a member with its reader set up.
func dialWith(ctx context.Context, u string, o dialOptions) (*member, error) {
	d := ws.Dialer{
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{}
			if o.local != nil {
				nd.LocalAddr = o.local
			}
			if o.rcvbuf > 0 || o.local != nil {
				nd.Control = func(_, _ string, c syscall.RawConn) error {
					var serr error
					err := c.Control(func(fd uintptr) {
						if o.rcvbuf > 0 {
							serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.rcvbuf)
						}
						if o.local != nil && serr == nil {
							// Pick the source port at connect, from the whole
							// 4-tuple, rather than at bind, where each source
							// address would keep its ports for itself.
							serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
						}
					})
					if err != nil {
						return err
					}
					return serr
				}
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
	conn, br, _, err := d.Dial(ctx, u)
	if err != nil {
		return nil, err
	}
	var src io.Reader = conn
	if o.wrap != nil {
		src = o.wrap(conn)
	}
	if br != nil {
		src = io.MultiReader(br, src)
	}
	m := &member{conn: conn}
	m.br = bufio.NewReaderSize(src, o.bufSize)
	return m, nil
}

// barrier makes sure the server has registered every reading member before
// the measurement: a server may answer the upgrade before it adds the
// connection to its room, so a message sent at once could miss the last
// members. Member 0 broadcasts "probe N" every 20 ms until every reader has
// received one, for at most 10 s. Probes are not counted.
func (r *run) barrier(ctx context.Context) error {
	sender := r.members[0]
	deadline := time.Now().Add(10 * time.Second)
	payload := make([]byte, 0, 32)
	for n := 0; ; n++ {
		waiting := 0
		for _, m := range r.members {
			if !m.slow && !m.probed.Load() {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("join barrier: %d members never received a probe", waiting)
		}
		if n%5 == 0 { // every 100 ms; poll every 20 ms
			payload = append(payload[:0], `{"message":"probe `...)
			payload = strconv.AppendInt(payload, int64(n), 10)
			payload = append(payload, `"}`...)
			if err := sender.writeFrame(ws.OpText, payload); err != nil {
				return fmt.Errorf("join barrier: %w", err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send runs the senders and waits until every reader has every message, or
// the drain timeout or the duration runs out.
func (r *run) send(ctx context.Context, res *Result) {
	cfg := r.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	hardStop := time.Now().Add(cfg.Duration)
	serverCPU := func() float64 {
		if cfg.ServerPID <= 0 {
			return 0
		}
		v, _ := sysutil.ProcCPUSeconds(cfg.ServerPID)
		return v
	}
	brokerCPU := func() float64 {
		if cfg.BrokerPID <= 0 {
			return 0
		}
		v, _ := sysutil.ProcCPUSeconds(cfg.BrokerPID)
		return v
	}
	serverCPU0, brokerCPU0, selfCPU0 := serverCPU(), brokerCPU(), sysutil.SelfCPUSeconds()

	var senders sync.WaitGroup
	for i := 0; i < cfg.Senders && i < len(r.members); i++ {
		senders.Add(1)
		go func(m *member) {
			defer senders.Done()
			m.sendLoop(ctx, r)
		}(r.members[i])
	}
	sendersDone := make(chan struct{})
	go func() { senders.Wait(); close(sendersDone) }()
	select {
	case <-sendersDone:
	case <-ctx.Done():
		<-sendersDone // they watch ctx
	}

	readers := int64(cfg.Members - cfg.Slow)
	sent := r.sent.Load()
	expected := sent * readers
	deadline := time.Now().Add(cfg.DrainTimeout)
	if deadline.After(hardStop) {
		deadline = hardStop
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var end time.Time
	for {
		if r.delivered.Load() >= expected {
			break
		}
		if !time.Now().Before(deadline) {
			res.TimedOut = true
			end = time.Now()
			break
		}
		<-tick.C
	}
	r.stopped.Store(true)
	if cfg.ServerPID > 0 {
		res.ServerCPUSeconds = serverCPU() - serverCPU0
	}
	if cfg.BrokerPID > 0 {
		res.BrokerCPUSeconds = brokerCPU() - brokerCPU0
	}
	res.LoadgenCPUSeconds = sysutil.SelfCPUSeconds() - selfCPU0
	if end.IsZero() {
		var last int64
		for _, m := range r.members {
			if v := m.lastRecv.Load(); v > last {
				last = v
			}
		}
		end = time.Unix(0, last)
	}
	res.Sent = sent
	res.Expected = expected
	if first := r.firstSend.Load(); first > 0 {
		res.ElapsedSeconds = end.Sub(time.Unix(0, first)).Seconds()
	}
}

// inspectSlow reads what the slow members were sent, to tell whether the
// server cut them. It stops at a close frame, an error, after 1 s without
// data, or after 5 s in all.
func (r *run) inspectSlow(res *Result) {
	deadline := time.Now().Add(5 * time.Second)
	for _, m := range r.members {
		if !m.slow {
			continue
		}
		rep := m.drainSlow(deadline)
		rep.StalledAfter, rep.BlockedAfter, rep.CutAfter = m.stalledAfter, m.blockedAfter, m.cutAfter
		res.SlowMembers = append(res.SlowMembers, rep)
	}
}

// missingSample lists up to n deliveries that never arrived.
func (r *run) missingSample(n int) []string {
	var out []string
	for _, m := range r.members {
		if m.slow {
			continue
		}
		for s := 0; s < r.cfg.Senders && s < len(r.members); s++ {
			sent := r.members[s].sentCount.Load()
			for seq := int64(0); seq < sent; seq++ {
				if m.seen[s][seq/64]&(1<<(seq%64)) == 0 {
					out = append(out, fmt.Sprintf("m%d<-m%d#%d", m.id, s, seq))
					if len(out) >= n {
						return out
					}
				}
			}
		}
	}
	return out
}

func (r *run) closeAll() {
	for _, m := range r.members {
		m.close()
	}
}

// collect merges the members' counters into res.
func (r *run) collect(res *Result) {
	h := newHistogram()
	var local, cross *histogram
	if len(r.cfg.URLs) > 1 {
		local, cross = newHistogram(), newHistogram()
		res.Local, res.Cross = &Split{}, &Split{}
	}
	for _, m := range r.members {
		if m.slow {
			continue
		}
		h.merge(m.hist)
		if cross != nil {
			h.merge(m.cross)
			local.merge(m.hist)
			cross.merge(m.cross)
			res.Local.Received += m.received - m.crossReceived
			res.Cross.Received += m.crossReceived
			for s := 0; s < r.cfg.Senders && s < len(r.members); s++ {
				sent := r.members[s].sentCount.Load()
				if r.cfg.NodeOf(s) == m.node {
					res.Local.Expected += sent
				} else {
					res.Cross.Expected += sent
				}
			}
		}
		res.Received += m.received
		res.Late += m.late
		res.Frames += m.frames
		res.Duplicates += m.dups
		res.Reordered += m.reordered
		res.Malformed += m.malformed
		res.Presence += m.presence
		if m.droppedByServer {
			res.Dropped++
		}
	}
	if res.Expected > res.Received {
		res.Lost = res.Expected - res.Received
		res.MissingSample = r.missingSample(10)
	}
	if res.ElapsedSeconds > 0 {
		res.DeliveriesPerSec = float64(res.Frames) / res.ElapsedSeconds
	}
	res.Latency = h.latency()
	if cross != nil {
		res.Local.Latency, res.Cross.Latency = local.latency(), cross.latency()
		res.Local.Lost = max(res.Local.Expected-res.Local.Received, 0)
		res.Cross.Lost = max(res.Cross.Expected-res.Cross.Received, 0)
	}
}

// latency returns h's quantiles in milliseconds.
func (h *histogram) latency() Latency {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Latency{
		P50: ms(h.quantile(0.50)), P99: ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)), Max: ms(h.max),
	}
}
