package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/load"
)

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// writeReport writes results.json, results.md and fanout.svg into dir.
func writeReport(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"results.json": append(js, '\n'),
		"results.md":   []byte(markdown(rep)),
		"fanout.svg":   []byte(fanoutSVG(rep)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// metric is what orders repeated runs of a scenario: the median run by it
// stands for the design.
func metric(scenario string, r *load.Result) float64 {
	switch scenario {
	case "fanout":
		return r.DeliveriesPerSec
	case "idle", "connections":
		return r.RSSPerConnKiB
	default:
		return r.Latency.P99
	}
}

// runs returns the successful runs of impl under scenario, ordered by
// metric, and the first failed one.
func (rep *Report) runs(impl, scenario string) (ok []*Run, failed *Run) {
	for i := range rep.Runs {
		r := &rep.Runs[i]
		if r.Impl != impl || r.Scenario != scenario {
			continue
		}
		if r.OK {
			ok = append(ok, r)
		} else if failed == nil {
			failed = r
		}
	}
	sort.SliceStable(ok, func(i, j int) bool { return metric(scenario, ok[i].Result) < metric(scenario, ok[j].Result) })
	return ok, failed
}

// find returns the median successful run of impl under scenario, else a
// failed one, else nil.
func (rep *Report) find(impl, scenario string) *Run {
	ok, failed := rep.runs(impl, scenario)
	if len(ok) > 0 {
		return ok[(len(ok)-1)/2]
	}
	return failed
}

// cell formats a result of impl under scenario with f, or says why there
// is none.
func (rep *Report) cell(impl, scenario string, f func(*load.Result) string) string {
	r := rep.find(impl, scenario)
	switch {
	case r == nil:
		return "–"
	case !r.OK:
		return "FAILED"
	}
	return f(r.Result)
}

func slowFate(s load.SlowReport) string {
	when := ""
	if s.CutAfter > 0 {
		when = fmt.Sprintf(" at %.1f s (its server send queue last grew at %.1f s)", s.CutAfter, s.BlockedAfter)
	}
	if !s.Cut {
		return fmt.Sprintf("not cut (%s; %d msgs read after)", s.Note, s.Received)
	}
	if s.CloseCode != 0 {
		return fmt.Sprintf("cut%s: %d %q, %d msgs kept", when, s.CloseCode, s.CloseReason, s.Received)
	}
	return fmt.Sprintf("cut%s without close frame, %d msgs kept", when, s.Received)
}

func lossCell(r *load.Result) string {
	if r.Expected == 0 {
		return "0"
	}
	s := fmt.Sprintf("%d/%d", r.Lost, r.Expected)
	if r.Lost > 0 {
		s += fmt.Sprintf(" (%.2f%%)", 100*float64(r.Lost)/float64(r.Expected))
	}
	return s
}

// markdown renders the comparison table and the notes.
func markdown(rep *Report) string {
	var b strings.Builder
	mode := "full"
	if rep.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "# Chat server comparison (%s run)\n\n", mode)
	fmt.Fprintf(&b, "%s, %s, %d CPUs, servers and load generator on the same machine over 127.0.0.1; run took %.0f s.\n\n",
		rep.Started.UTC().Format(time.RFC3339), rep.GoVersion, rep.CPUs, rep.Seconds)
	for _, s := range rep.Scenarios {
		fmt.Fprintf(&b, "- **%s**: %s\n", s.Name, s.Title)
	}
	if rep.Repeat > 1 {
		fmt.Fprintf(&b, "\nEach cell is the median of %d runs (by the cell's main metric); failed runs are listed in the notes.\n", rep.Repeat)
	}
	if rep.ordinary() {
		b.WriteString("\n| design | fan-out deliveries/s | ratio vs melody | idle KiB/conn | many-senders p50 / p99 / p999 ms | many-senders loss | others' p99 ms with a slow member / without | slow member |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
		var melody float64
		if r := rep.find("melody", "fanout"); r != nil && r.OK {
			melody = r.Result.DeliveriesPerSec
		}
		for _, im := range rep.Impls {
			fan := rep.cell(im, "fanout", func(r *load.Result) string { return fmt.Sprintf("%.0f", r.DeliveriesPerSec) })
			ratio := rep.cell(im, "fanout", func(r *load.Result) string {
				if melody == 0 {
					return "–"
				}
				return fmt.Sprintf("%.2f", r.DeliveriesPerSec/melody)
			})
			idle := rep.cell(im, "idle", func(r *load.Result) string { return fmt.Sprintf("%.1f", r.RSSPerConnKiB) })
			lat := rep.cell(im, "many", func(r *load.Result) string {
				return fmt.Sprintf("%.2f / %.2f / %.2f", r.Latency.P50, r.Latency.P99, r.Latency.P999)
			})
			loss := rep.cell(im, "many", lossCell)
			slowP99 := rep.cell(im, "slow", func(r *load.Result) string {
				s := fmt.Sprintf("%.2f", r.Latency.P99)
				if r.Lost > 0 {
					s += fmt.Sprintf(" (lost %d)", r.Lost)
				}
				return s
			}) + " / " + rep.cell(im, "steady", func(r *load.Result) string {
				s := fmt.Sprintf("%.2f", r.Latency.P99)
				if r.Lost > 0 {
					s += fmt.Sprintf(" (lost %d)", r.Lost)
				}
				return s
			})
			fate := rep.cell(im, "slow", func(r *load.Result) string {
				if len(r.SlowMembers) == 0 {
					return "–"
				}
				return slowFate(r.SlowMembers[0])
			})
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", im, fan, ratio, idle, lat, loss, slowP99, fate)
		}
		b.WriteString("\nDeliveries/s: data frames received by all reading members ÷ time from the first send to the last delivery. Loss, duplicates and reordering are counted per member and per sender.\n")
	}

	var notes []string
	for _, r := range rep.Runs {
		label := r.Impl + " / " + r.Scenario
		if rep.Repeat > 1 {
			label += fmt.Sprintf(" (run %d)", r.Rep)
		}
		if !r.OK {
			notes = append(notes, fmt.Sprintf("%s failed: %s", label, r.Error))
			continue
		}
		res := r.Result
		var parts []string
		if res.Lost > 0 && r.Scenario != "many" && r.Scenario != "slow" {
			parts = append(parts, fmt.Sprintf("lost %s", lossCell(res)))
		}
		if res.Duplicates > 0 {
			parts = append(parts, fmt.Sprintf("%d duplicates", res.Duplicates))
		}
		if res.Reordered > 0 {
			parts = append(parts, fmt.Sprintf("%d reordered", res.Reordered))
		}
		if res.Malformed > 0 {
			parts = append(parts, fmt.Sprintf("%d malformed frames", res.Malformed))
		}
		if res.Dropped > 0 {
			parts = append(parts, fmt.Sprintf("%d reading members disconnected by the server", res.Dropped))
		}
		if res.TimedOut {
			parts = append(parts, "gave up waiting for deliveries")
		}
		if len(parts) > 0 {
			notes = append(notes, fmt.Sprintf("%s: %s", label, strings.Join(parts, ", ")))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if rep.ordinary() {
		b.WriteString("\nFan-out and many-senders details (latency p50 / p99 ms; CPU seconds of server / load generator while sending):\n\n")
		b.WriteString("| design | fan-out deliveries/s, all runs | fan-out latency | fan-out CPU | many-senders CPU | slow: lost by others |\n|---|---:|---:|---:|---:|---:|\n")
		cpu := func(r *load.Result) string {
			return fmt.Sprintf("%.1f / %.1f", r.ServerCPUSeconds, r.LoadgenCPUSeconds)
		}
		for _, im := range rep.Impls {
			ok, _ := rep.runs(im, "fanout")
			var all []string
			for _, r := range ok {
				all = append(all, fmt.Sprintf("%.0f", r.Result.DeliveriesPerSec))
			}
			if len(all) == 0 {
				all = []string{"–"}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", im, strings.Join(all, ", "),
				rep.cell(im, "fanout", func(r *load.Result) string {
					return fmt.Sprintf("%.2f / %.2f", r.Latency.P50, r.Latency.P99)
				}),
				rep.cell(im, "fanout", cpu), rep.cell(im, "many", cpu), rep.cell(im, "slow", lossCell))
		}
	}
	storeTable(&b, rep)
	for _, sc := range rep.Scenarios {
		if sc.Name == "connections" {
			connectionsTable(&b, rep, sc)
		}
		if len(sc.Variants) > 0 {
			clusterTable(&b, rep, sc)
		}
		if sc.Name == "presence" {
			heartbeatTable(&b, rep, sc)
		}
	}
	return b.String()
}

// ordinary reports whether rep has a scenario of the main table, run over
// the designs (rather than over cluster variants, or the connections
// scenario with its own table).
func (rep *Report) ordinary() bool {
	return slices.ContainsFunc(rep.Scenarios, func(s Scenario) bool { return slices.Contains(mainScenarios, s.Name) })
}

// mainScenarios are the scenarios of the main table.
var mainScenarios = []string{"fanout", "idle", "many", "slow", "steady"}

// storeTable renders chatroom with its history in each store beside
// chatroom without history, under the fanout and steady scenarios, if
// the run has store variants.
func storeTable(b *strings.Builder, rep *Report) {
	var rows []Variant
	for _, sc := range rep.Scenarios {
		for _, v := range sc.Stores {
			if !slices.Contains(rows, v) {
				rows = append(rows, v)
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n## History stores\n\nchatroom on one node keeping the room's history (WithHistory) in memory, in SQLite (sqlitestore, a new file) " +
		"and in PostgreSQL (pgstore, a server of its own on the same machine, fsync on), written behind or with History.Durable " +
		"(a member's next message is read once its last is written), beside chatroom without history (the chatroom row above). " +
		"Server CPU is chatserver's alone, not PostgreSQL's.\n\n")
	b.WriteString("| history | fan-out deliveries/s | ratio vs none | fan-out p50 / p99 ms | steady p50 / p99 ms | steady loss | CPU s: server fan-out / steady |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	var base float64
	if r := rep.find("chatroom", "fanout"); r != nil && r.OK {
		base = r.Result.DeliveriesPerSec
	}
	lat := func(r *load.Result) string { return fmt.Sprintf("%.2f / %.2f", r.Latency.P50, r.Latency.P99) }
	cpu := func(r *load.Result) string { return fmt.Sprintf("%.2f", r.ServerCPUSeconds) }
	for _, v := range append([]Variant{{Name: "chatroom", Store: "none"}}, rows...) {
		cell := func(sc string, f func(*load.Result) string) string { return rep.cell(v.Name, sc, f) }
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s / %s |\n", v.Store,
			cell("fanout", func(r *load.Result) string { return fmt.Sprintf("%.0f", r.DeliveriesPerSec) }),
			cell("fanout", func(r *load.Result) string {
				if base == 0 {
					return "–"
				}
				return fmt.Sprintf("%.2f", r.DeliveriesPerSec/base)
			}),
			cell("fanout", lat), cell("steady", lat), cell("steady", lossCell),
			cell("fanout", cpu), cell("steady", cpu))
	}
}

// clusterTable renders a scenario run over cluster variants, such as
// crossnode.
func clusterTable(b *strings.Builder, rep *Report, sc Scenario) {
	fmt.Fprintf(b, "\n## %s\n\n%s. chatroom on one node without a broker, and on several nodes joined by a broker. "+
		"The nodes of a cluster share one chatserver process (and its CPU); NATS runs embedded in that process, "+
		"redis-server as a process of its own (its CPU is the broker column). Every sender is on the first node, "+
		"so every delivery to a member on another node crosses the broker.\n\n", sc.Name, sc.Title)
	b.WriteString("| setup | deliveries/s | ratio vs 1 node | p50 / p99 ms | cross-node p50 / p99 ms | loss | duplicates / reordered | CPU s: server / broker / loadgen | server+broker CPU µs per delivery |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var base float64
	for _, v := range sc.Variants {
		if v.Nodes == 0 {
			if r := rep.find(v.Name, sc.Name); r != nil && r.OK {
				base = r.Result.DeliveriesPerSec
			}
			break
		}
	}
	for _, v := range sc.Variants {
		setup := "1 node, no broker"
		if v.Nodes > 0 {
			setup = fmt.Sprintf("%d nodes, %s", v.Nodes, v.Broker)
		}
		cell := func(f func(*load.Result) string) string { return rep.cell(v.Name, sc.Name, f) }
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", setup,
			cell(func(r *load.Result) string { return fmt.Sprintf("%.0f", r.DeliveriesPerSec) }),
			cell(func(r *load.Result) string {
				if base == 0 {
					return "–"
				}
				return fmt.Sprintf("%.2f", r.DeliveriesPerSec/base)
			}),
			cell(func(r *load.Result) string { return fmt.Sprintf("%.2f / %.2f", r.Latency.P50, r.Latency.P99) }),
			cell(func(r *load.Result) string {
				if r.Cross == nil {
					return "–"
				}
				return fmt.Sprintf("%.2f / %.2f", r.Cross.Latency.P50, r.Cross.Latency.P99)
			}),
			cell(lossCell),
			cell(func(r *load.Result) string { return fmt.Sprintf("%d / %d", r.Duplicates, r.Reordered) }),
			cell(func(r *load.Result) string {
				return fmt.Sprintf("%.2f / %.2f / %.2f", r.ServerCPUSeconds, r.BrokerCPUSeconds, r.LoadgenCPUSeconds)
			}),
			cell(func(r *load.Result) string {
				if r.Frames == 0 {
					return "–"
				}
				return fmt.Sprintf("%.2f", (r.ServerCPUSeconds+r.BrokerCPUSeconds)/float64(r.Frames)*1e6)
			}))
	}
	b.WriteString("\nCPU: seconds used from the first send to the end of the run. With a paced load, deliveries/s is the offered load as long as a setup keeps up; latency, loss and CPU per delivery tell the setups apart.\n")
}

// heartbeatTable renders the heartbeats each node of the presence
// scenario sent and took in, and their CPU time, from the median run.
func heartbeatTable(b *strings.Builder, rep *Report, sc Scenario) {
	b.WriteString("\nHeartbeats per node (chatserver's meter around the broker: taking in a heartbeat, its own echo included, reconciling included, and handing one to Redis; thread CPU time):\n\n")
	b.WriteString("| setup | node | members | sent / received | CPU ms: send / receive | µs per heartbeat received | run s |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, v := range sc.Variants {
		r := rep.find(v.Name, sc.Name)
		if r == nil || !r.OK {
			continue
		}
		for _, h := range r.Heartbeats {
			members := "–"
			if h.Node < len(r.Result.MembersPerNode) {
				members = strconv.Itoa(r.Result.MembersPerNode[h.Node])
			}
			perBeat := "–"
			if h.Received > 0 {
				perBeat = fmt.Sprintf("%.1f", h.RecvCPUSeconds/float64(h.Received)*1e6)
			}
			fmt.Fprintf(b, "| %s | %d | %s | %d / %d | %.2f / %.2f | %s | %.1f |\n", v.Name, h.Node, members,
				h.Sent, h.Received, h.SendCPUSeconds*1e3, h.RecvCPUSeconds*1e3, perBeat, r.Seconds)
		}
	}
}

// fanoutSVG draws a horizontal bar chart of fan-out deliveries/s.
func fanoutSVG(rep *Report) string {
	type bar struct {
		label string
		value float64
		ok    bool
	}
	var bars []bar
	var maxV float64
	for _, im := range rep.Impls {
		r := rep.find(im, "fanout")
		if r == nil {
			continue
		}
		b := bar{label: im, ok: r.OK}
		if r.OK {
			b.value = r.Result.DeliveriesPerSec
		}
		maxV = max(maxV, b.value)
		bars = append(bars, b)
	}
	const (
		left, right, top, rowH, barH = 150, 130, 50, 30, 20
		plotW                        = 520
	)
	width := left + plotW + right
	height := top + rowH*len(bars) + 30
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&s, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	title := "Fan-out: deliveries per second (higher is better)"
	if len(rep.Scenarios) > 0 {
		for _, sc := range rep.Scenarios {
			if sc.Name == "fanout" {
				title = "Deliveries/s — " + sc.Title
			}
		}
	}
	fmt.Fprintf(&s, `<text x="%d" y="24" font-size="14" font-weight="bold">%s</text>`+"\n", 10, html.EscapeString(title))
	for i, b := range bars {
		y := top + i*rowH
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH-5, html.EscapeString(b.label))
		if !b.ok {
			fmt.Fprintf(&s, `<text x="%d" y="%d" fill="#b00">failed</text>`+"\n", left+4, y+barH-5)
			continue
		}
		w := 0.0
		if maxV > 0 {
			w = b.value / maxV * plotW
		}
		fill := "#4a78b0"
		if b.label == "chatroom" {
			fill = "#d9822b"
		}
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, w, barH, fill)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(left)+w+6, y+barH-5, thousands(b.value))
	}
	fmt.Fprintf(&s, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", left, top-6, left, top+rowH*len(bars))
	s.WriteString("</svg>\n")
	return s.String()
}

// thousands formats v rounded, with thin-space-free comma grouping.
func thousands(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprintf("%d", n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// connectionsTable renders the connections scenario: per design the median
// run (by RSS per connection) and, over several runs, the range of each
// figure.
func connectionsTable(b *strings.Builder, rep *Report, sc Scenario) {
	fmt.Fprintf(b, "\n## Idle connections\n\n%s. "+
		"RSS is the server's, after connecting (idle) and with one unread message each (busy), less before, per connection; "+
		"Go heap is chatserver -memstats' after a collection: live objects, heap in use (live plus the free room in their spans), goroutine stacks. "+
		"Kernel socket memory is what TCP charges (ss -m: received and queued data plus the reserve), per socket, of the server's ends and of the clients'; "+
		"busy is with one message each that the clients do not read (on loopback it sits in the client's receive queue at once). sockstat is TCP's page count (/proc/net/sockstat) over the host, "+
		"so both ends of every loopback connection and anything else running; slab is /proc/meminfo's, over the host, per loopback connection (both ends). "+
		"To all: from sending one message until every client has it, per round.\n\n", sc.Title)
	if rep.Repeat > 1 {
		fmt.Fprintf(b, "Each cell: the median run by RSS per connection, and the range over %d runs.\n\n", rep.Repeat)
	}
	b.WriteString("| design | connected | connect/s | RSS KiB/conn idle / busy | heap KiB/conn live / in use | stacks KiB/conn | goroutines/conn | socket KiB/conn idle / busy: server end | client end | sockstat KiB/conn idle / busy | slab KiB/conn | to all ms |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, im := range rep.Impls {
		ok, failed := rep.runs(im, sc.Name)
		if len(ok) == 0 {
			if failed != nil {
				fmt.Fprintf(b, "| %s | FAILED | | | | | | | | | | |\n", im)
			}
			continue
		}
		med := ok[(len(ok)-1)/2].Result
		// spread formats f of the median run, and the range over all runs.
		spread := func(format string, f func(*load.Result) float64) string {
			s := fmt.Sprintf(format, f(med))
			if len(ok) > 1 {
				lo, hi := f(ok[0].Result), f(ok[0].Result)
				for _, r := range ok[1:] {
					lo, hi = min(lo, f(r.Result)), max(hi, f(r.Result))
				}
				s += " (" + fmt.Sprintf(format, lo) + "–" + fmt.Sprintf(format, hi) + ")"
			}
			return s
		}
		c := func(f func(*load.ConnsResult) float64) func(*load.Result) float64 {
			return func(r *load.Result) float64 {
				if r.Conns == nil {
					return 0
				}
				return f(r.Conns)
			}
		}
		fmt.Fprintf(b, "| %s | %d/%d | %s | %s / %s | %s / %s | %s | %s | %s / %s | %s / %s | %s / %s | %s | %s |\n", im, med.Connected, med.Members,
			spread("%.0f", c(func(c *load.ConnsResult) float64 { return c.ConnectPerSec })),
			spread("%.2f", func(r *load.Result) float64 { return r.RSSPerConnKiB }),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.BusyRSSPerConnKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.HeapLivePerConnKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.HeapPerConnKiB - c.StackPerConnKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.StackPerConnKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.GoroutinesPerConn })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.ServerSockIdleKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.ServerSockBusyKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.ClientSockIdleKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.ClientSockBusyKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.SockstatIdleKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.SockstatBusyKiB })),
			spread("%.2f", c(func(c *load.ConnsResult) float64 { return c.SlabPerConnKiB })),
			spread("%.0f", c(func(c *load.ConnsResult) float64 { return median(c.DeliveryMs) })))
	}
	b.WriteString("\nSlab caches that grew, bytes per loopback connection (both ends; median run; /proc/slabinfo, host-wide):\n\n")
	for _, im := range rep.Impls {
		if r := rep.find(im, sc.Name); r != nil && r.OK && r.Result.Conns != nil && len(r.Result.Conns.SlabCaches) > 0 {
			var parts []string
			for _, c := range r.Result.Conns.SlabCaches {
				parts = append(parts, fmt.Sprintf("%s %.0f", c.Name, c.BytesPerConn))
			}
			fmt.Fprintf(b, "- %s: %s\n", im, strings.Join(parts, ", "))
		}
	}
	b.WriteString("\nTo all, every round of every run:\n\n")
	for _, im := range rep.Impls {
		ok, _ := rep.runs(im, sc.Name)
		var all []string
		for _, r := range ok {
			if r.Result.Conns != nil {
				all = append(all, msList(r.Result.Conns.DeliveryMs))
			}
		}
		if len(all) > 0 {
			fmt.Fprintf(b, "- %s: %s ms\n", im, strings.Join(all, "; "))
		}
	}
}

// msList formats milliseconds as "12, 10, 11".
func msList(ms []float64) string {
	var parts []string
	for _, v := range ms {
		parts = append(parts, fmt.Sprintf("%.0f", v))
	}
	return strings.Join(parts, ", ")
}

// median returns the median of vs, 0 if there are none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
