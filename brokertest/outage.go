package brokertest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
)

// Probes: while nodes notice an outage, or the broker's return, a member
// sends a message every probeEvery until the others hear one, at most
// maxProbes within probeDeadline.
const (
	probeEvery    = 50 * time.Millisecond
	maxProbes     = 400
	probeDeadline = 30 * time.Second
)

// hangFor is how long Hang pauses the backend: longer than a room waits
// for its broker (2 s), so that its calls time out with their outcome open.
const hangFor = 3 * time.Second

// probe has from send "<prefix> 0", "<prefix> 1", ... until each of hear
// has received one of them, and returns how many it sent, the number of
// the first each heard, and the frames each received before it. It fails
// the test if one of them has heard none in time.
func probe(t *testing.T, from *watcher, prefix string, hear ...*watcher) (sent int, first []int, before [][]chatroom.Message) {
	t.Helper()
	first = make([]int, len(hear))
	for i := range first {
		first[i] = -1
	}
	before = make([][]chatroom.Message, len(hear))
	deadline := time.Now().Add(probeDeadline)
	for slices.Contains(first, -1) {
		if sent == maxProbes || time.Now().After(deadline) {
			t.Fatalf("%q: after %d probes, not heard by all of them (first heard: %v)", prefix, sent, first)
		}
		from.send(t, prefix+" "+strconv.Itoa(sent))
		sent++
		for i, w := range hear {
			// The frames that came meanwhile, up to a probe.
			for first[i] < 0 {
				m, ok := w.within(probeEvery)
				if !ok {
					break
				}
				if n, ok := probeNumber(m, prefix); ok {
					first[i] = n
				} else {
					before[i] = append(before[i], m)
				}
			}
		}
	}
	return sent, first, before
}

// noneBefore fails the test if any of hear received something before the
// probe it heard first.
func noneBefore(t *testing.T, prefix string, hear []*watcher, before [][]chatroom.Message) {
	t.Helper()
	for i, w := range hear {
		if len(before[i]) > 0 {
			t.Fatalf("%s: got %q while waiting for a %q probe", w.name, texts(before[i]), prefix)
		}
	}
}

// probeNumber returns N if m is the chat message "<prefix> N".
func probeNumber(m chatroom.Message, prefix string) (int, bool) {
	s, ok := strings.CutPrefix(m.Text, prefix+" ")
	if !isChat(m) || !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// probesUntil reads w's frames up to the chat message upTo, and returns the
// numbers of the "<prefix> N" messages among them. It fails the test on any
// other chat message.
func probesUntil(t *testing.T, w *watcher, prefix, upTo string) []int {
	t.Helper()
	var got []int
	for _, m := range chat(w.until(t, upTo)) {
		if m.Text == upTo {
			break
		}
		n, ok := probeNumber(m, prefix)
		if !ok {
			t.Fatalf("%s: got %q among the %q probes", w.name, m.Text, prefix)
		}
		got = append(got, n)
	}
	return got
}

// checkProbes checks that got, the probes a client received, are in the
// order sent, each once, and include every one from first to sent-1.
func checkProbes(t *testing.T, who string, got []int, first, sent int) {
	t.Helper()
	for i, n := range got {
		if n < 0 || n >= sent || i > 0 && n <= got[i-1] {
			t.Errorf("%s: probes %v: out of order, repeated or never sent (%d sent)", who, got, sent)
			return
		}
	}
	for n := first; n < sent; n++ {
		if !slices.Contains(got, n) {
			t.Errorf("%s: probes %v: %d missing (heard from %d on, %d sent)", who, got, n, first, sent)
			return
		}
	}
}

func testOutage(t *testing.T, b Backend) {
	if b.Stop == nil || b.Start == nil {
		t.Skip("the backend cannot be stopped and started")
	}
	nodes := startNodes(t, b)
	ann := nodes[0].watch(t, "lobby", "ann", nil, nil)
	carl := nodes[0].watch(t, "lobby", "carl", nil, nil)
	bob := nodes[1].watch(t, "lobby", "bob", nil, nil)

	ann.send(t, "before")
	for _, w := range []*watcher{ann, carl, bob} {
		if m := w.next(t); m.Text != "before" {
			t.Fatalf("%s: got %+v, want %q", w.name, m, "before")
		}
	}

	b.Stop(t)
	// Local delivery keeps working once the node has found the broker down:
	// carl, on ann's node, hears her, and from then on every message. One
	// sent as the broker went down may have had its fate left open, and
	// then nobody receives it.
	sent, first, before := probe(t, ann, "during", carl)
	noneBefore(t, "during", []*watcher{carl}, before)
	end := "during " + strconv.Itoa(sent)
	ann.send(t, end)
	checkProbes(t, carl.name, append([]int{first[0]}, probesUntil(t, carl, "during", end)...), first[0], sent)
	checkProbes(t, ann.name, probesUntil(t, ann, "during", end), first[0], sent)
	b.Start(t)

	// The nodes reconnect by themselves. ann probes until bob hears her.
	// Probes sent before node1 or node2 was back are lost, so the first
	// bob hears may be any; from it on he hears every one, in order, and
	// never one sent during the outage.
	sent, first, before = probe(t, ann, "probe", bob)
	noneBefore(t, "probe", []*watcher{bob}, before)
	t.Logf("messages crossed nodes again from probe %d of %d", first[0], sent)
	ann.send(t, "after")
	checkProbes(t, bob.name, append([]int{first[0]}, probesUntil(t, bob, "probe", "after")...), first[0], sent)
	// ann and carl got each of ann's messages once, in order: those the
	// broker did not take from their node, and then those it did.
	for _, w := range []*watcher{ann, carl} {
		checkProbes(t, w.name, probesUntil(t, w, "probe", "after"), first[0], sent)
	}
}

func testOutageIDs(t *testing.T, b Backend) {
	if b.Stop == nil || b.Start == nil {
		t.Skip("the backend cannot be stopped and started")
	}
	numbered := isHistoryBroker(t, b)
	nodes := startNodes(t, b, chatroom.WithEnvelope(), keepHistory(100))
	ann := nodes[0].watch(t, "lobby", "ann", nil, newIDCheck("ann"))
	carlIDs := newIDCheck("carl")
	carl := nodes[0].watch(t, "lobby", "carl", nil, carlIDs)
	bob := nodes[1].watch(t, "lobby", "bob", nil, newIDCheck("bob"))
	dave := nodes[2].watch(t, "lobby", "dave", nil, newIDCheck("dave"))
	all := []*watcher{ann, bob, dave}
	ann.send(t, "before")
	had := map[string]bool{} // what carl received
	for _, w := range append(all, carl) {
		for _, m := range chat(w.until(t, "before")) {
			if w == carl {
				had[m.Text] = true
			}
		}
	}

	b.Stop(t)
	// ann's node and bob's each go on alone.
	_, _, before := probe(t, ann, "ann-during", carl)
	noneBefore(t, "ann-during", []*watcher{carl}, before)
	_, _, before = probe(t, bob, "bob-during", bob)
	noneBefore(t, "bob-during", []*watcher{bob}, before)
	const more = 20
	for i := range more {
		ann.send(t, "ann-more "+strconv.Itoa(i))
		bob.send(t, "bob-more "+strconv.Itoa(i))
	}
	last := "ann-more " + strconv.Itoa(more-1)
	for _, m := range chat(carl.until(t, last)) {
		had[m.Text] = true
	}
	ann.until(t, last)
	bob.until(t, "bob-more "+strconv.Itoa(more-1))
	// carl leaves during the outage: the greatest ID he saw is one his node
	// gave on its own.
	carl.close()
	b.Start(t)

	_, first, before := probe(t, ann, "probe", bob, dave)
	noneBefore(t, "probe", []*watcher{bob, dave}, before)
	t.Logf("messages crossed nodes again from probes %v", first)
	ann.send(t, "after")
	for _, w := range all {
		w.until(t, "after")
	}

	// A newcomer receives the history that carl resumes in: the broker's,
	// or, without a HistoryBroker, that of carl's node.
	n := nodes[0]
	if numbered {
		n = nodes[1]
	}
	eve := n.watch(t, "lobby", "eve", nil, nil)
	kept := chat(eve.until(t, "after"))
	since := carlIDs.max
	carl = n.watch(t, "lobby", "carl", carlIDs.since(), carlIDs)
	ann.send(t, "final")
	frames := carl.until(t, "final")
	truncated := 0
	for i, m := range frames {
		if m.Type == chatroom.TypeTruncated {
			truncated++
			if i != 0 {
				t.Errorf("carl resuming on %s from %d: a truncated notice as frame %d, want it first", n.name, since, i)
			}
		}
	}
	got := chat(frames)
	got = got[:len(got)-1] // "final"
	var dups []string
	for _, m := range got {
		if had[m.Text] {
			dups = append(dups, m.Text)
		}
	}
	var want []chatroom.Message // what carl missed of the history
	for _, m := range kept {
		if m.ID > since {
			want = append(want, m)
		}
	}
	t.Logf("carl resumed on %s from ID %d: %d truncated notices, %d messages, %d kept after his ID", n.name, since, truncated, len(got), len(want))
	if len(dups) > 0 {
		t.Errorf("carl resuming after the outage received %d messages again: %q", len(dups), dups)
	}
	if truncated == 0 {
		if diff := cmp.Diff(summary(want), summary(got)); diff != "" {
			t.Errorf("carl resuming after the outage without a truncated notice (-what he missed +got):\n%s", diff)
		}
	} else {
		for _, m := range summary(want) {
			if !slices.Contains(summary(got), m) {
				t.Errorf("carl resuming after the outage missed %s", m)
			}
		}
	}
	for _, w := range append(all, carl) {
		w.ids.check(t)
	}
}

// summary gives each message as "ID text", for diffs that show what
// matters here.
func summary(ms []chatroom.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%d %s", m.ID, m.Text)
	}
	return out
}

func testHang(t *testing.T, b Backend) {
	if b.Pause == nil || b.Resume == nil {
		t.Skip("the backend cannot be paused")
	}
	numbered := isHistoryBroker(t, b)
	nodes := startNodes(t, b, chatroom.WithEnvelope(), keepHistory(100))
	ann := nodes[0].watch(t, "lobby", "ann", nil, newIDCheck("ann"))
	carl := nodes[0].watch(t, "lobby", "carl", nil, newIDCheck("carl"))
	bob := nodes[1].watch(t, "lobby", "bob", nil, newIDCheck("bob"))
	dave := nodes[2].watch(t, "lobby", "dave", nil, newIDCheck("dave"))
	all := []*watcher{ann, carl, bob, dave}
	ann.send(t, "before")
	for _, w := range all {
		w.until(t, "before")
	}

	b.Pause(t)
	paused := true
	t.Cleanup(func() {
		if paused {
			b.Resume(t)
		}
	})
	// Two senders on two nodes, so that one order for all is something to
	// agree on.
	const hung = 5
	for i := range hung {
		ann.send(t, "hung ann "+strconv.Itoa(i))
		bob.send(t, "hung bob "+strconv.Itoa(i))
	}
	// The hang itself is what is timed.
	<-time.After(hangFor)
	b.Resume(t)
	paused = false

	// Once the nodes carry messages again (they may have had to reconnect),
	// and each sender's last message has arrived after its hung ones (a
	// node hands its publications to the broker in order), every client has
	// what it will ever have of the hung messages.
	_, _, before := probe(t, ann, "probe", bob, dave)
	ann.send(t, "after")
	bob.send(t, "after bob")
	saw := make([][]chatroom.Message, len(all))
	for i, w := range all {
		var frames []chatroom.Message
		if i >= 2 {
			frames = before[i-2]
		}
		frames = append(frames, w.until(t, "after")...)
		if !slices.Contains(texts(chat(frames)), "after bob") {
			frames = append(frames, w.until(t, "after bob")...)
		}
		for _, m := range chat(frames) {
			if strings.HasPrefix(m.Text, "hung ") {
				saw[i] = append(saw[i], m)
			}
		}
	}
	// bob, on another node than the sender's, is the reference.
	ref := saw[2]
	for _, sender := range []string{"ann", "bob"} {
		var got, inOrder []string
		for _, text := range texts(ref) {
			if strings.HasPrefix(text, "hung "+sender+" ") {
				got = append(got, text)
			}
		}
		for i := range hung {
			if text := "hung " + sender + " " + strconv.Itoa(i); slices.Contains(got, text) {
				inOrder = append(inOrder, text)
			}
		}
		if !slices.Equal(got, inOrder) {
			t.Errorf("%s: %s's messages sent during the hang arrived as %q, want each at most once, in the order sent", bob.name, sender, got)
		}
	}
	t.Logf("of %d messages sent while the backend hung for %v, %d were delivered: %q", 2*hung, hangFor, len(ref), texts(ref))
	for i, w := range all {
		if i == 2 {
			continue
		}
		var diff string
		if numbered {
			diff = cmp.Diff(summary(ref), summary(saw[i]))
		} else {
			diff = cmp.Diff(texts(ref), texts(saw[i]))
		}
		if diff != "" {
			t.Errorf("%s and %s disagree on what was sent during the hang (-%s +%s):\n%s", bob.name, w.name, bob.name, w.name, diff)
		}
	}

	// A resume afterwards is exact.
	carl.close()
	ann.send(t, "gap")
	ann.until(t, "gap")
	n := nodes[0]
	if numbered {
		n = nodes[1]
	}
	carl = n.watch(t, "lobby", "carl", carl.ids.since(), carl.ids)
	ann.send(t, "final")
	frames := carl.until(t, "final")
	var got []string
	for _, m := range frames {
		if m.Type == chatroom.TypeTruncated || isChat(m) {
			got = append(got, string(m.Type)+" "+m.Text)
		}
	}
	if diff := cmp.Diff([]string{"message gap", "message final"}, got); diff != "" {
		t.Errorf("carl resuming on %s after the hang (-want +got):\n%s", n.name, diff)
	}
	for _, w := range all {
		w.ids.check(t) // carl's, over both his connections
	}
}
