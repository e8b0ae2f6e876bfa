package chatroom

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// joinStorm connects n clients to one room behind a real server, at most 64
// dialling at once, and has each read until it knows all n are present, or,
// if until is set, until a frame with that text. It returns how many
// presence frames (members, join, leave, presence) the clients received
// and how long it took from the first dial to the last client done.
func joinStorm(tb testing.TB, n int, until string, after func(*Room), opts ...Option) (frames int, took time.Duration) {
	tb.Helper()
	rm := New(append([]Option{WithJoinLimit(Off, 0)}, opts...)...)
	joined := make(chan struct{}, n)
	rm.cfg.joined = func(*Member) { joined <- struct{}{} }
	srv := httptest.NewServer(rm)
	defer srv.Close()
	defer rm.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		mu      sync.Mutex
		total   int
		errs    []error
		readers sync.WaitGroup
	)
	dials := make(chan struct{}, 64)
	finished := make(chan struct{}) // a client that is done stays until all are
	var closed sync.WaitGroup
	defer closed.Wait()
	defer close(finished)
	start := time.Now()
	var dialed sync.WaitGroup
	for i := range n {
		dials <- struct{}{}
		dialed.Add(1)
		readers.Add(1)
		closed.Add(1)
		go func() {
			defer closed.Done()
			conn, _, err := websocket.Dial(ctx, fmt.Sprintf("%s?nickname=u%d", url, i), nil)
			<-dials
			dialed.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				readers.Done()
				return
			}
			conn.SetReadLimit(-1)
			count, err := readPresence(ctx, conn, n, until)
			mu.Lock()
			total += count
			if err != nil {
				errs = append(errs, fmt.Errorf("u%d: %w", i, err))
			}
			mu.Unlock()
			readers.Done()
			<-finished
			_ = conn.CloseNow()
		}()
	}
	dialed.Wait()
	if after != nil {
		for range n {
			select {
			case <-joined:
			case <-ctx.Done():
				tb.Fatal("the joiners were not all added")
			}
		}
		after(rm)
	}
	readers.Wait()
	took = time.Since(start)
	if len(errs) > 0 {
		tb.Fatalf("%d clients failed, the first: %v", len(errs), errs[0])
	}
	return total, took
}

// readPresence reads frames until the client knows n nicknames present
// (by a count, or by the members and notices it applied), or, if until is
// set, until a message with that text, and counts the presence frames.
func readPresence(ctx context.Context, conn *websocket.Conn, n int, until string) (int, error) {
	present := map[string]bool{}
	frames := 0
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return frames, err
		}
		var m Message
		if err := json.Unmarshal(data, &m); err != nil {
			return frames, err
		}
		count := -1
		switch m.Type {
		case TypeMembers:
			frames++
			for _, name := range m.Members {
				present[name] = true
			}
			count = max(m.Count, len(present))
		case TypeJoin:
			frames++
			present[m.Nickname] = true
			count = len(present)
		case TypeLeave:
			frames++
			delete(present, m.Nickname)
			count = len(present)
		case TypePresence:
			frames++
			count = m.Count
		case TypeMessage:
			if until != "" && m.Text == until {
				return frames, nil
			}
		}
		if until == "" && count == n {
			return frames, nil
		}
	}
}

// With WithPresenceDeltas, joiners that come within one window cost each
// member one presence frame, not one per joiner: n joiners receive n
// members frames and n presence frames in all, where WithPresence sends at
// least n(n+1)/2 join notices. The window is long, so that what is counted does
// not depend on timing: a Broadcast sends the notices before it.
func TestPresenceDeltasCoalesce(t *testing.T) {
	const n = 200
	flush := func(rm *Room) {
		if _, err := rm.Broadcast(context.Background(), Message{Text: "go"}); err != nil {
			t.Errorf("broadcast: %v", err)
		}
	}
	frames, _ := joinStorm(t, n, "go", flush, WithPresenceDeltas(PresenceDeltas{Window: time.Hour}))
	if frames != 2*n {
		t.Errorf("deltas: %d presence frames for %d joiners, want %d (a members frame and one presence frame each)", frames, n, 2*n)
	}
	frames, _ = joinStorm(t, n, "go", flush, WithPresence())
	if want := n + n*(n+1)/2; frames < want {
		t.Errorf("notices: %d presence frames for %d joiners, want at least %d", frames, n, want)
	}
}

// The members frame lists at most MaxMembers nicknames, the first to join,
// and counts them all; a presence frame counts them too, and names who came
// and went, a nickname that came and went in one window in neither list.
func TestPresenceDeltasFrames(t *testing.T) {
	tr := newTestRoom(t, WithPresenceDeltas(PresenceDeltas{MaxMembers: 2, Window: time.Hour}))
	ann := tr.join("ann")
	bob := tr.join("bob")
	carl := tr.join("carl")
	got := carl.readMsg()
	want := Message{Type: TypeMembers, Members: []string{"ann", "bob"}, Count: 3}
	if diff := cmp.Diff(want, got, ignoreStamps); diff != "" {
		t.Errorf("carl's members frame (-want +got):\n%s", diff)
	}
	dan := tr.join("dan")
	_ = dan.conn.Close(websocket.StatusNormalClosure, "")
	tr.waitLeave()
	_ = bob.conn.Close(websocket.StatusNormalClosure, "")
	tr.waitLeave()
	if _, err := tr.room.Broadcast(context.Background(), Message{Text: "go"}); err != nil {
		t.Fatal(err)
	}
	if got := ann.readMsg(); got.Type != TypeMembers || got.Count != 1 {
		t.Errorf("ann's first frame: %+v, want the member list with count 1", got)
	}
	got = ann.readMsg()
	// ann's own join notice waited in the window too; bob and dan came
	// and went.
	want = Message{Type: TypePresence, Joined: []string{"ann", "carl"}, Left: []string{}, Count: 2}
	if diff := cmp.Diff(want, got, ignoreStamps); diff != "" {
		t.Errorf("ann's presence frame (-want +got):\n%s", diff)
	}
	if got := ann.readMsg(); got.Text != "go" {
		t.Errorf("ann: got %+v, want the broadcast after the presence frame", got)
	}
}

// BenchmarkJoinStorm joins 3,000 clients to one room with presence, from
// one address over loopback, and reports the presence frames per joiner
// and the time until every joiner knows all are present: with
// WithPresence (a join notice per joiner to every member) and with
// WithPresenceDeltas. -short joins 300.
//
//	go test -run '^$' -bench JoinStorm -benchtime 1x
func BenchmarkJoinStorm(b *testing.B) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	for _, bc := range []struct {
		name string
		opt  Option
	}{
		{"deltas", WithPresenceDeltas(PresenceDeltas{})},
		{"notices", WithPresence()},
	} {
		b.Run(fmt.Sprintf("%s/joiners=%d", bc.name, n), func(b *testing.B) {
			var frames int
			var took time.Duration
			for b.Loop() {
				f, d := joinStorm(b, n, "", nil, bc.opt)
				frames += f
				took += d
			}
			b.ReportMetric(float64(frames)/float64(b.N*n), "frames/joiner")
			b.ReportMetric(took.Seconds()/float64(b.N), "s/storm")
		})
	}
}
