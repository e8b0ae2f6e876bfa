package chatroom

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom/broker"
)

func TestHistoryReplayedToJoiners(t *testing.T) {
	tr := newTestRoom(t, WithHistory(History{Len: 2}))
	ann := tr.join("ann")
	for _, text := range []string{"one", "two", "three"} {
		ann.send(text)
		ann.read()
	}
	sei := tr.join("sei")
	ann.send("four")
	// The default protocol, unchanged: the last two, then live.
	for _, want := range []string{frame("ann", "two"), frame("ann", "three"), frame("ann", "four")} {
		if diff := cmp.Diff(want, sei.read()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestHistoryResume(t *testing.T) {
	tr := newTestRoom(t, WithHistory(History{Len: 3}), WithEnvelope(), WithClock(fixedClock))
	ann := tr.join("ann")
	for i := range 5 {
		ann.send(fmt.Sprint(i))
		ann.read()
	}
	id := testID // the ID of message i
	msg := func(i int) Message {
		return Message{Type: TypeMessage, ID: id(i), Time: testEpoch, Nickname: "ann", Text: fmt.Sprint(i)}
	}
	truncated := Message{Type: TypeTruncated, ID: id(5), Time: testEpoch}
	for _, tc := range []struct {
		name  string
		since uint64
		want  []Message
	}{
		{"everything after 2 is kept", id(2), []Message{msg(3), msg(4)}},
		{"up to date", id(4), nil},
		{"1 was dropped", id(0), []Message{truncated, msg(2), msg(3), msg(4)}},
		{"an ID from before this room", 7, []Message{truncated, msg(2), msg(3), msg(4)}},
		{"an ID this room never gave", id(99), []Message{truncated, msg(2), msg(3), msg(4)}},
	} {
		func() {
			c := tr.joinWith(fmt.Sprintf("nickname=sei&since=%d", tc.since), nil)
			// A marker for sei alone, so that the history stays as it is.
			if _, err := tr.room.SendTo(context.Background(), "sei", Message{Type: TypeSystem, Text: "marker"}); err != nil {
				t.Fatal(err)
			}
			var got []Message
			for {
				m := c.readMsg()
				if m.Type == TypeSystem {
					break
				}
				if m.Type == TypeTruncated {
					m.ID = truncated.ID // its ID is new for each resume
				}
				got = append(got, m)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: since=%d (-want +got):\n%s", tc.name, tc.since, diff)
			}
			_ = c.conn.CloseNow()
			tr.expectLeave("sei", ErrClientClosed)
		}()
	}
}

func TestHistoryInvalidSince(t *testing.T) {
	tr := newTestRoom(t, WithHistory(History{Len: 3}))
	_, resp, err := tr.dialRaw("since=yesterday", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dial: err=%v resp=%v, want HTTP 400", err, resp)
	}
}

// startSenders has n members send messages as fast as they can, each with
// at most 32 of its own in flight, until stop is closed (and a few more after
// it, at most maxPerSender each). wait returns how many they sent.
func startSenders(t *testing.T, tr *testRoom, n int, stop <-chan struct{}) (wait func() int) {
	const maxPerSender, after, window = 5000, 20, 32
	var wg sync.WaitGroup
	sent := make([]int, n)
	for s := range n {
		name := fmt.Sprintf("sender%d", s)
		c := tr.join(name)
		inFlight := make(chan struct{}, window)
		own := []byte(`"nickname":"` + name + `"`)
		go func() {
			for {
				_, b, err := c.conn.Read(context.Background())
				if err != nil {
					return
				}
				if bytes.Contains(b, own) {
					<-inFlight
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			extra := -1
			for i := 0; i < maxPerSender && extra != 0; i++ {
				select {
				case <-stop:
					if extra < 0 {
						extra = after
					}
				default:
				}
				if extra > 0 {
					extra--
				}
				inFlight <- struct{}{}
				err := c.conn.Write(context.Background(), websocket.MessageText, fmt.Appendf(nil, `{"message":"%d-%d"}`, s, i))
				if err != nil {
					t.Errorf("sender %d: %v", s, err)
					return
				}
				sent[s]++
			}
		}()
	}
	return func() int {
		wg.Wait()
		total := 0
		for _, n := range sent {
			total += n
		}
		return total
	}
}

// observe reads c's frames on a goroutine of its own, so that c never falls
// behind, and passes on the ID of every chat message until a system frame.
func observe(c *client) <-chan uint64 {
	observed := make(chan uint64, 1024)
	go func() {
		defer close(observed)
		for {
			m := c.readMsg()
			switch m.Type {
			case TypeSystem:
				return
			case TypeMessage:
				observed <- m.ID
			}
		}
	}()
	return observed
}

// readUntilEnd reads frames until a system frame, and returns the IDs of
// the chat messages before it, in order.
func readUntilEnd(c *client) []uint64 {
	c.t.Helper()
	var ids []uint64
	for {
		m := c.readMsg()
		switch m.Type {
		case TypeSystem:
			return ids
		case TypeMessage:
			ids = append(ids, m.ID)
		}
	}
}

// checkSuffix checks that got is exactly all of all from got's first ID on:
// no gap and no duplicate.
func checkSuffix(t *testing.T, who string, all, got []uint64) {
	t.Helper()
	if len(got) == 0 {
		t.Fatalf("%s received nothing", who)
	}
	i := slices.Index(all, got[0])
	if i < 0 {
		t.Fatalf("%s: first ID %d never sent", who, got[0])
	}
	if diff := cmp.Diff(all[i:], got); diff != "" {
		t.Errorf("%s: frames from ID %d on (-want +got):\n%s", who, got[0], diff)
	}
}

func TestHistoryNoGapNoDuplicateUnderConcurrentSenders(t *testing.T) {
	const senders, joiners = 4, 6
	tr := newTestRoom(t, WithHistory(History{Len: 100}), WithEnvelope())
	observer := tr.join("observer")
	stop := make(chan struct{})
	wait := startSenders(t, tr, senders, stop)

	observed := observe(observer)

	// Joiners join one after another while the senders go on, each after
	// another stretch of messages; the senders stop only after the last has
	// joined.
	var all []uint64
	var got [joiners][]uint64
	var wg sync.WaitGroup
	for j := range joiners {
		for len(all) < (j+1)*150 {
			all = append(all, <-observed)
		}
		c := tr.join(fmt.Sprintf("joiner%d", j))
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[j] = readUntilEnd(c)
		}()
	}
	close(stop)
	total := wait()
	for len(all) < total {
		all = append(all, <-observed)
	}
	// Every message has been published: end the readers.
	if _, err := tr.room.Broadcast(context.Background(), Message{Type: TypeSystem, Text: "end"}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for range observed { // until the observer has read the end too
	}
	t.Logf("%d messages; joiners received %d to %d", total, len(got[joiners-1]), len(got[0]))
	for j := range joiners {
		checkSuffix(t, fmt.Sprintf("joiner%d", j), all, got[j])
		if len(got[j]) == total {
			t.Errorf("joiner%d received every message: it joined before the senders began", j)
		}
	}
}

func TestResumeUnderConcurrentSenders(t *testing.T) {
	const senders = 4
	tr := newTestRoom(t, WithHistory(History{Len: 10000}), WithEnvelope())
	observed := observe(tr.join("observer"))
	stop := make(chan struct{})
	wait := startSenders(t, tr, senders, stop)

	// A client reads a while, drops its connection, and comes back with the
	// last ID it saw while the senders go on.
	c := tr.join("phone")
	var seen []uint64
	for len(seen) < 200 {
		if m := c.readMsg(); m.Type == TypeMessage {
			seen = append(seen, m.ID)
		}
	}
	_ = c.conn.CloseNow()
	tr.expectLeave("phone", ErrClientClosed)
	c = tr.joinWith(fmt.Sprintf("nickname=phone&since=%d", seen[len(seen)-1]), nil)
	close(stop)
	total := wait()

	var all []uint64
	for len(all) < total {
		all = append(all, <-observed)
	}
	if _, err := tr.room.Broadcast(context.Background(), Message{Type: TypeSystem, Text: "end"}); err != nil {
		t.Fatal(err)
	}
	seen = append(seen, readUntilEnd(c)...)
	checkSuffix(t, "the resumed client", all, seen)
}

// recordingStore is a Store of the host's.
type recordingStore struct {
	*MemoryStore
	appended []string
}

func (s *recordingStore) Append(msg Message) {
	s.appended = append(s.appended, msg.Text) // under the room's lock
	s.MemoryStore.Append(msg)
}

func TestWithStore(t *testing.T) {
	st := &recordingStore{MemoryStore: NewMemoryStore(10, 0)}
	tr := newTestRoom(t, WithHistory(History{Store: st}), WithDirectMessages())
	ann := tr.join("ann")
	ann.send("public")
	ann.sendTo("ann", "private")
	ann.readMsg()
	ann.readMsg()
	tr.room.mu.Lock()
	got := slices.Clone(st.appended)
	tr.room.mu.Unlock()
	if diff := cmp.Diff([]string{"public"}, got); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}

// A since taken from another room of the same registry is not this room's,
// even when it falls inside this room's range of IDs (the rooms were
// created at the same instant): the resuming client is told that its
// history is gone rather than silently skipping frames.
func TestHistoryForeignSince(t *testing.T) {
	tg := newTestRegistry(t, WithRoomOptions(sameOptions(WithHistory(History{Len: 10}), WithEnvelope(), WithClock(fixedClock))))
	a, b := tg.join("a", "ann"), tg.join("b", "bob")
	var idsA, idsB []uint64
	for i := range 3 {
		a.send(fmt.Sprint("a", i))
		b.send(fmt.Sprint("b", i))
		idsA = append(idsA, a.readMsg().ID)
		idsB = append(idsB, b.readMsg().ID)
	}
	var fromA uint64 // an ID of room a inside b's range
	for _, id := range idsA {
		if id > idsB[0] && id < idsB[2] {
			fromA = id
		}
	}
	if fromA == 0 {
		t.Fatalf("no ID of a (%v) inside b's range (%v)", idsA, idsB)
	}
	for _, tc := range []struct {
		name      string
		since     uint64
		truncated bool
	}{
		{"b's own ID", idsB[0], false},
		{"an ID of room a inside b's range", fromA, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			conn, _, err := websocket.Dial(ctx, tg.url("b", fmt.Sprintf("nickname=sei&since=%d", tc.since)), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			tg.wait(tg.joined, "join")
			c := &client{t: t, conn: conn}
			first := c.readMsg()
			if got := first.Type == TypeTruncated; got != tc.truncated {
				t.Errorf("first frame %+v, want truncated %v", first, tc.truncated)
			}
		})
	}
}

// WithHistory refuses, in New and naming itself, what it cannot do.
func TestWithHistoryRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"negative Len", []Option{WithHistory(History{Len: -1})}, "chatroom: WithHistory: Len is -1"},
		{"negative Bytes", []Option{WithHistory(History{Bytes: -1})}, "chatroom: WithHistory: Bytes is -1"},
		{"Store on a HistoryBroker", []Option{WithBroker(broker.NewMemory(1)), WithHistory(History{Store: NewMemoryStore(0, 0)})}, "chatroom: WithHistory: a Store cannot be combined with WithBroker of a broker.HistoryBroker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, tc.want) {
					t.Errorf("New panicked with %q, want %q...", msg, tc.want)
				}
			}()
			New(tc.opts...)
		})
	}
}
