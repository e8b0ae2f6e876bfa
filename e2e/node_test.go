package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	nodeDir      = "node"           // e2e/node: the scripts, their package.json and node_modules
	nodeTimeout  = 3 * time.Minute  // one script's whole run; it is killed after
	nodeWaitSlop = 30 * time.Second // a wait for a line due at once, or beyond a script's own time bound
	nodeHelp     = "install Node.js (apt-get install -y nodejs npm) and run `npm ci` in e2e/node"
)

// nodePath returns the node binary, or skips the test when node or the
// scripts' dependencies (e2e/node/node_modules) are missing. With CI=true it
// fails instead: CI must not pass by skipping.
func nodePath(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + ": " + nodeHelp
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a missing Node.js is a failure)")
		}
		t.Skip(msg)
	}
	path, err := exec.LookPath("node")
	if err != nil {
		missing("no node in PATH")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "ws", "package.json")); err != nil {
		missing("e2e/node/node_modules has no ws")
	}
	return path
}

// tutorialURL is the WebSocket address of the server's tutorial room,
// /chat (the default protocol, no rate limit), for a client of that
// nickname.
func (s *chatServer) tutorialURL(nickname string) string {
	return "ws://" + s.addr + "/chat?" + url.Values{"nickname": {nickname}}.Encode()
}

// nodeClient is one script of e2e/node run with node, as a process of its
// own. Its WebSocket clients are independent of the server: another
// language, another WebSocket implementation (ws), another process, as
// the room's users' clients are. A script reports on stdout one JSON object
// a line, each with an "event" field.
type nodeClient struct {
	t      *testing.T
	name   string
	stdin  io.WriteCloser
	lines  chan []byte   // what it reports; closed when its stdout ends
	exited chan struct{} // closed once it has exited; err is then set
	err    error
	stderr lockedBuffer
}

// startNode runs e2e/node/<script>.js with args. The process is killed
// after nodeTimeout, or when the test ends; what it wrote on stderr is
// logged if the test failed.
func startNode(t *testing.T, name, script string, args ...string) *nodeClient {
	t.Helper()
	node := nodePath(t)
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	c := &nodeClient{t: t, name: name, lines: make(chan []byte, 64), exited: make(chan struct{})}
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(nodeDir, script+".js")}, args...)...)
	cmd.Stderr = &c.stderr
	cmd.WaitDelay = 5 * time.Second // after a kill, stop waiting for its pipes
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: start %s: %v", name, script, err)
	}
	c.stdin = stdin
	go func() {
		defer close(c.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- bytes.Clone(sc.Bytes())
		}
		close(c.lines)
		c.err = cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		for range c.lines { // unblock the reader, if nobody read the rest
		}
		<-c.exited
		if t.Failed() {
			if s := c.stderr.String(); s != "" {
				t.Logf("%s: stderr of node %s.js:\n%s", name, script, s)
			}
		}
	})
	return c
}

// next waits up to d for the script's next line, which must be of event;
// it decodes the line into v, if v is not nil.
func (c *nodeClient) next(event string, d time.Duration, v any) {
	c.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			<-c.exited
			c.t.Fatalf("%s: waiting for %q: the script ended (%v)\nstderr: %s", c.name, event, c.err, c.stderr.String())
		}
		var head struct{ Event string }
		if err := json.Unmarshal(line, &head); err != nil {
			c.t.Fatalf("%s: waiting for %q: line %q: %v", c.name, event, line, err)
		}
		if head.Event != event {
			c.t.Fatalf("%s: waiting for %q, got %s", c.name, event, line)
		}
		if v != nil {
			if err := json.Unmarshal(line, v); err != nil {
				c.t.Fatalf("%s: %q line %s: %v", c.name, event, line, err)
			}
		}
	case <-timer.C:
		c.t.Fatalf("%s: no %q within %v\nstderr: %s", c.name, event, d, c.stderr.String())
	}
}

// closeStdin ends the script's stdin, which tells a script that waits for
// it to finish. Unlike a write, it cannot fail because the script has
// finished already (its last line then says why).
func (c *nodeClient) closeStdin() { c.stdin.Close() }

// wait waits for the script to exit, which it must do with status 0 and
// nothing more to say.
func (c *nodeClient) wait() {
	c.t.Helper()
	timer := time.NewTimer(nodeWaitSlop)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				<-c.exited
				if c.err != nil {
					c.t.Fatalf("%s: %v\nstderr: %s", c.name, c.err, c.stderr.String())
				}
				return
			}
			c.t.Errorf("%s: unexpected line after the last: %s", c.name, line)
		case <-timer.C:
			c.t.Fatalf("%s: did not exit within %v of its last line", c.name, nodeWaitSlop)
		}
	}
}

// closeEvent is what a client's close event says. Code 1006 (no close
// frame received: the connection just ended) is made by the client itself.
type closeEvent struct {
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
	WasClean bool   `json:"wasClean"`
}

func (e *closeEvent) String() string {
	if e == nil {
		return "not closed"
	}
	return fmt.Sprintf("%d %q wasClean=%v", e.Code, e.Reason, e.WasClean)
}

// A client that sends one message over the size limit (32 KiB in /chat) is
// closed with 1009, and sees the close frame: the server must not reset the
// connection while the client is still sending, which makes the client's
// kernel discard the close frame (the client then sees 1006). The larger the
// message, the likelier the race, so the large sizes run several times.
func TestNodeClose1009(t *testing.T) {
	nodePath(t) // skip before starting anything
	srv := startChat(t)
	for _, tc := range []struct {
		name  string
		bytes int
		runs  int
	}{
		{"40KiB", 40 << 10, 10},
		{"1MiB", 1 << 20, 10},
		{"4MiB", 4 << 20, 10},
		{"16MiB", 16 << 20, 10},
		{"64MiB", 64 << 20, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startNode(t, "big", "close1009", srv.tutorialURL("big"), fmt.Sprint(tc.bytes), fmt.Sprint(tc.runs))
			type run struct {
				closeEvent
				Run      int      `json:"run"`
				MS       int      `json:"ms"`
				Errors   []string `json:"errors"`
				TimedOut bool     `json:"timedOut"`
			}
			codes := map[int]int{}
			clean, slowest := 0, 0
			for range tc.runs {
				var r run
				c.next("close", 2*nodeWaitSlop, &r) // the script gives up on a run after 30 s
				codes[r.Code]++
				if r.WasClean {
					clean++
				}
				slowest = max(slowest, r.MS)
				if r.Code != 1009 {
					t.Errorf("run %d: closed with %v after %d ms (errors %q, timed out %v), want 1009",
						r.Run, &r.closeEvent, r.MS, r.Errors, r.TimedOut)
				}
			}
			c.next("done", nodeWaitSlop, nil)
			c.wait()
			t.Logf("%s × %d runs: codes %s, wasClean in %d, slowest close %d ms after the send",
				tc.name, tc.runs, formatCounts(codes), clean, slowest)
		})
	}
}

// formatCounts writes counts of close codes as "1009×7 1006×3".
func formatCounts(counts map[int]int) string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d×%d", code, counts[code]))
	}
	return strings.Join(parts, " ")
}

// burstResult is the last line of burst.js.
type burstResult struct {
	Received int         `json:"received"`
	Disorder *struct{}   `json:"disorder"` // {want, got}: only whether there is one matters
	Closed   *closeEvent `json:"closed"`
	TimedOut bool        `json:"timedOut"`
	FirstAt  int64       `json:"firstAt"`
	LastAt   int64       `json:"lastAt"`
}

// A single-threaded client (a browser tab, a Node.js process) that sends a
// batch of messages in one synchronous loop reads nothing while the loop
// runs, so the echoes of its own messages pile up meanwhile. 10,000 × 1 KiB
// in one loop is a burst the room must absorb: every member, the burster
// included, receives all of it, in order, within 60 s, and nobody is
// closed. The readers are processes of their own, and have joined first.
func TestNodeBurst(t *testing.T) {
	nodePath(t) // skip before starting anything
	const (
		count    = 10_000
		size     = 1 << 10 // bytes per frame, JSON included
		burster  = "burster"
		withinMs = 60_000
	)
	srv := startChat(t)
	args := func(role string) []string {
		return []string{role, burster, fmt.Sprint(count), fmt.Sprint(size), fmt.Sprint(withinMs)}
	}
	var readers []*nodeClient
	for _, name := range []string{"reader1", "reader2"} {
		c := startNode(t, name, "burst", append([]string{srv.tutorialURL(name)}, args("read")...)...)
		c.next("joined", nodeWaitSlop, nil)
		readers = append(readers, c)
	}
	b := startNode(t, burster, "burst", append([]string{srv.tutorialURL(burster)}, args("send")...)...)
	var sent struct {
		LoopStart      int64 `json:"loopStart"`
		LoopEnd        int64 `json:"loopEnd"`
		BufferedAmount int   `json:"bufferedAmount"`
	}
	b.next("sent", nodeWaitSlop, &sent)
	t.Logf("%s: sent %d × %d B in one loop of %d ms; %d B still buffered after it",
		burster, count, size, sent.LoopEnd-sent.LoopStart, sent.BufferedAmount)

	for _, c := range append(readers, b) {
		var r burstResult
		c.next("result", withinMs*time.Millisecond+nodeWaitSlop, &r)
		c.wait()
		t.Logf("%s: received %d of %d, the last %d ms after the loop began; closed: %v; timed out: %v; in order: %v",
			c.name, r.Received, count, max(0, r.LastAt-sent.LoopStart), r.Closed, r.TimedOut, r.Disorder == nil)
		if r.Closed != nil {
			t.Errorf("%s was closed: %v", c.name, r.Closed)
		}
		if r.Received != count || r.TimedOut {
			t.Errorf("%s received %d of %s's %d messages within %d ms", c.name, r.Received, burster, count, withinMs)
		}
		if r.Disorder != nil {
			t.Errorf("%s received %s's messages out of order", c.name, burster)
		}
	}
}

// floodResult is the flooder's last line.
type floodResult struct {
	Sent              int         `json:"sent"`
	StartAt           int64       `json:"startAt"`
	EndAt             int64       `json:"endAt"`
	Received          int         `json:"received"`
	Closed            *closeEvent `json:"closed"`
	ClosedAt          int64       `json:"closedAt"`
	ClosedDuringFlood bool        `json:"closedDuringFlood"`
}

// honestResult is the honest member's last line.
type honestResult struct {
	Flood     int         `json:"flood"`
	FirstAt   int64       `json:"firstAt"`
	LastAt    int64       `json:"lastAt"`
	PerSecond []int       `json:"perSecond"`
	MaxGapMS  int64       `json:"maxGapMs"`
	Disorder  *struct{}   `json:"disorder"`
	Closed    *closeEvent `json:"closed"`
	Synced    bool        `json:"synced"`
	Probes    struct {
		Sent     int  `json:"sent"`
		Echoed   int  `json:"echoed"`
		MedianMS *int `json:"medianMs"`
		MaxMS    *int `json:"maxMs"`
	} `json:"probes"`
}

// perSecond is a count over the span from first to last, in ms.
func perSecond(n int, first, last int64) float64 {
	if n == 0 || last <= first {
		return 0
	}
	return float64(n) / (float64(last-first) / 1000)
}

// One member of /chat (no rate limit) floods it with 100,000 × 1 KiB at
// full speed, for at most 10 s. The honest members, who only read and chat,
// must not be closed for it, and their own messages must still get
// through: "honest" reads as fast as it can, "phone" at most 2,000 frames/s,
// as a page that renders each message on a phone might (on loopback, with
// the machine to itself, a reader keeps up with any one Node.js sender; a
// real member is slower than the fastest attacker). The flooder in
// "reading" keeps reading what the room sends it, as an attacker who means
// to stay does; "deaf" reads nothing while it floods. The test reports the
// flooder's fate, the honest members' rates of flood frames and the
// latency of their own messages; only the honest members are held to
// anything.
func TestNodeFlood(t *testing.T) {
	nodePath(t) // skip before starting anything
	const (
		count   = 100_000
		size    = 1 << 10
		forMs   = 10_000
		flooder = "flooder"
		maxMs   = 60_000 // an honest member's whole run
	)
	members := []struct {
		name         string
		framesPerSec int // 0: as fast as it can
	}{
		{"honest", 0},
		{"phone", 2_000},
	}
	for _, mode := range []string{"reading", "deaf"} {
		t.Run(mode, func(t *testing.T) {
			srv := startChat(t)
			var honest []*nodeClient
			for _, m := range members {
				args := []string{srv.tutorialURL(m.name), "honest", flooder, fmt.Sprint(maxMs)}
				if m.framesPerSec > 0 {
					args = append(args, fmt.Sprint(m.framesPerSec))
				}
				h := startNode(t, m.name, "flood", args...)
				h.next("joined", nodeWaitSlop, nil)
				honest = append(honest, h)
			}
			f := startNode(t, flooder, "flood", srv.tutorialURL(flooder), "flood",
				fmt.Sprint(count), fmt.Sprint(size), fmt.Sprint(forMs), mode)
			var fr floodResult
			f.next("result", forMs*time.Millisecond+nodeWaitSlop, &fr)
			f.wait()
			closedAt := "-"
			if fr.Closed != nil && fr.ClosedAt > 0 {
				closedAt = fmt.Sprintf("%d ms after its first send", fr.ClosedAt-fr.StartAt)
			}
			t.Logf("flooder (%s): sent %d in %d ms (%.0f/s), received %d; closed: %v (%s, during the flood: %v)",
				mode, fr.Sent, fr.EndAt-fr.StartAt, perSecond(fr.Sent, fr.StartAt, fr.EndAt), fr.Received,
				fr.Closed, closedAt, fr.ClosedDuringFlood)

			for _, h := range honest {
				h.closeStdin()
			}
			for _, h := range honest {
				var hr honestResult
				h.next("result", maxMs*time.Millisecond, &hr)
				h.wait()
				median, slowest := "-", "-"
				if hr.Probes.MedianMS != nil {
					median, slowest = fmt.Sprint(*hr.Probes.MedianMS), fmt.Sprint(*hr.Probes.MaxMS)
				}
				t.Logf("%s: received %d flood frames over %d ms (%.0f/s; per second %v; longest gap %d ms); "+
					"its probes: %d sent, %d echoed, median %s ms, max %s ms; closed: %v; synced: %v",
					h.name, hr.Flood, hr.LastAt-hr.FirstAt, perSecond(hr.Flood, hr.FirstAt, hr.LastAt), hr.PerSecond,
					hr.MaxGapMS, hr.Probes.Sent, hr.Probes.Echoed, median, slowest, hr.Closed, hr.Synced)
				if hr.Closed != nil {
					t.Errorf("%s was closed: %v", h.name, hr.Closed)
				} else if !hr.Synced {
					t.Errorf("%s's last message never came back", h.name)
				}
				if hr.Disorder != nil {
					t.Errorf("%s received the flood out of order", h.name)
				}
				if hr.Closed == nil && hr.Probes.Echoed != hr.Probes.Sent {
					t.Errorf("%s sent %d messages and received %d of them", h.name, hr.Probes.Sent, hr.Probes.Echoed)
				}
			}
		})
	}
}
