package brokertest

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// isHistoryBroker reports whether b's brokers are HistoryBrokers; the one
// it connects to find out is closed.
func isHistoryBroker(t *testing.T, b Backend) bool {
	br := b.Connect(t)
	if c, ok := br.(io.Closer); ok {
		defer c.Close()
	}
	_, ok := br.(broker.HistoryBroker)
	return ok
}

func testHistory(t *testing.T, b Backend) {
	if !isHistoryBroker(t, b) {
		t.Skip("not a broker.HistoryBroker: history is per node")
	}
	nodes := startNodes(t, b, keepHistory(100), chatroom.WithEnvelope())
	ann := nodes[0].connect("lobby", "ann")
	dave := nodes[1].connect("lobby", "dave")
	for i := range 3 {
		ann.Send("before " + strconv.Itoa(i))
	}
	var lastID uint64
	for range 3 {
		lastID = dave.Next().ID
	}
	dave.Close()
	for i := range 2 {
		ann.Send("missed " + strconv.Itoa(i))
	}
	var annSaw []chatroom.Message
	for range 5 {
		annSaw = append(annSaw, ann.Next())
	}

	// A newcomer on a third node receives the whole history.
	carl := nodes[2].connect("lobby", "carl")
	var got []chatroom.Message
	for range 5 {
		got = append(got, carl.Next())
	}
	if diff := cmp.Diff(annSaw, got); diff != "" {
		t.Errorf("history of a joiner on another node (-what ann saw +got):\n%s", diff)
	}

	// dave resumes on another node than the one he left: exactly what he
	// missed, with the IDs ann saw.
	dave = nodes[2].connect("lobby", "dave", chatroomtest.Query("since", strconv.FormatUint(lastID, 10)))
	got = got[:0]
	for range 2 {
		got = append(got, dave.Next())
	}
	if diff := cmp.Diff(annSaw[3:], got); diff != "" {
		t.Errorf("resume on another node (-missed +got):\n%s", diff)
	}
	// And then the live frames: nothing in between.
	ann.Send("live")
	if m := dave.Next(); m.Text != "live" {
		t.Errorf("after resuming: got %+v, want the live message", m)
	}

	// An ID the cluster never gave: a truncated notice, then all that is kept.
	eve := nodes[0].connect("lobby", "eve", chatroomtest.Query("since", "1"))
	if m := eve.Next(); m.Type != chatroom.TypeTruncated {
		t.Errorf("resume from a foreign ID: got %+v first, want a truncated notice", m)
	}
}

// countingStore is a MemoryStore that counts what the room appends to it.
type countingStore struct {
	*chatroom.MemoryStore
	appended atomic.Int64
}

func (s *countingStore) Append(m chatroom.Message) {
	s.appended.Add(1)
	s.MemoryStore.Append(m)
}

// idsAndTexts returns the IDs and texts of msgs.
func idsAndTexts(msgs []chatroom.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, strconv.FormatUint(m.ID, 10)+" "+m.Text)
	}
	return out
}

func testStore(t *testing.T, b Backend) {
	// With a plain broker each node keeps its own history, in its Store;
	// with a HistoryBroker each node's Store keeps the frames the broker
	// numbered, with the broker's IDs, the same on every node.
	numbered := isHistoryBroker(t, b)
	var stores []*countingStore
	var nodes []*node
	for i := range 3 {
		s := &countingStore{MemoryStore: chatroom.NewMemoryStore(100, 0)}
		stores = append(stores, s)
		br := b.Connect(t)
		if !numbered {
			br = Plain(br)
		}
		nodes = append(nodes, startNodeOn(t, br, "node"+strconv.Itoa(i+1), storeHistory(s), chatroom.WithEnvelope()))
	}
	const n = 20
	ann := nodes[0].connect("lobby", "ann")
	bob := nodes[1].connect("lobby", "bob")
	carl := nodes[2].connect("lobby", "carl")
	for i := range n {
		ann.Send("m" + strconv.Itoa(i))
	}
	saw := make([][]chatroom.Message, len(nodes))
	for i, c := range []*chatroomtest.Client{ann, bob, carl} {
		for range n {
			saw[i] = append(saw[i], c.Next())
		}
	}
	// Each node appends a frame before handing it to its members, so every
	// Store has them all by now.
	for i, s := range stores {
		if got := s.appended.Load(); got != n {
			t.Errorf("%s: the Store's Append was called %d times for %d messages delivered", nodes[i].name, got, n)
		}
		if kept, _ := s.Since(0); numbered {
			if diff := cmp.Diff(idsAndTexts(saw[0]), idsAndTexts(kept)); diff != "" {
				t.Errorf("%s: the Store keeps (-what ann saw +kept):\n%s", nodes[i].name, diff)
			}
		}
	}
	// A joiner receives its node's history, as the node's members saw it.
	for i := 1; i < len(nodes); i++ {
		joiner := nodes[i].connect("lobby", "joiner"+strconv.Itoa(i))
		var got []chatroom.Message
		for range n {
			got = append(got, joiner.Next())
		}
		if diff := cmp.Diff(saw[i], got); diff != "" {
			t.Errorf("history of a joiner on %s (-what its members saw +got):\n%s", nodes[i].name, diff)
		}
	}
}

// resumes is how many times LateRoom's client resumes.
const resumes = 6

func testLateRoom(t *testing.T, b Backend) {
	numbered := isHistoryBroker(t, b)
	nodes := startNodes(t, b, chatroom.WithPresence(), keepHistory(100))
	// The broker numbers the room's frames, on node1, long before node3
	// has the room.
	ann := nodes[0].watch(t, "lobby", "ann", nil, newIDCheck("ann"))
	const early = 150
	for i := range early {
		ann.send(t, "early "+strconv.Itoa(i))
	}
	ann.until(t, "early "+strconv.Itoa(early-1))

	// zoe keeps the room on node3 once it is there, so that resuming on
	// node3 resumes in the same room even without a HistoryBroker.
	nodes[2].watch(t, "lobby", "zoe", nil, nil)
	ids := newIDCheck("carl")
	carl := nodes[2].watch(t, "lobby", "carl", nil, ids)
	ann.send(t, "mark 0")
	seen := map[string]bool{}
	for _, m := range chat(carl.until(t, "mark 0")) {
		seen[m.Text] = true
	}

	// carl leaves, misses five messages, and resumes from the greatest ID
	// he saw: with a HistoryBroker on each node in turn, else on node3,
	// whose history is his.
	var truncated, duplicates, missed, extra int
	for k := range resumes {
		carl.close()
		var want []string
		for i := range 5 {
			text := fmt.Sprintf("gap %d.%d", k, i)
			want = append(want, text)
			ann.send(t, text)
		}
		ann.until(t, want[len(want)-1]) // the broker has them all
		n := nodes[2]
		if numbered {
			n = nodes[(k+2)%3]
		}
		mark := "mark " + strconv.Itoa(k+1)
		want = append(want, mark)
		carl = n.watch(t, "lobby", "carl", ids.since(), ids)
		ann.send(t, mark)
		frames := carl.until(t, mark)
		var got []string
		for _, m := range frames {
			switch {
			case m.Type == chatroom.TypeTruncated:
				truncated++
			case isChat(m) && seen[m.Text]:
				duplicates++
			case isChat(m):
				got = append(got, m.Text)
				seen[m.Text] = true
			}
		}
		lost := missedIn(want, got)
		missed += lost
		extra += len(got) - (len(want) - lost)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Logf("resume %d on %s from %s (-missed +got, duplicates left out):\n%s", k+1, n.name, ids.since().Get("since"), diff)
		}
	}
	if truncated+duplicates+missed+extra > 0 {
		t.Errorf("%d resumes from the greatest ID seen: %d truncated notices (want 0), %d duplicates, %d missed, %d unexpected messages",
			resumes, truncated, duplicates, missed, extra)
	}
	ids.check(t)
	ann.ids.check(t)
}

// missedIn counts the texts of want not in got.
func missedIn(want, got []string) int {
	n := 0
	for _, w := range want {
		if !slices.Contains(got, w) {
			n++
		}
	}
	return n
}
