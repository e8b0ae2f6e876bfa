package chatroom

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// heapAfterGC is the live heap, in bytes, after a full collection.
func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// tcpMemory is the kernel's memory for TCP buffers, in bytes, from
// /proc/net/sockstat; -1 where there is none. It counts both ends of a
// loopback connection.
func tcpMemory(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] == "mem" {
				pages, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return pages * int64(os.Getpagesize())
			}
		}
	}
	return -1
}

// rss is the process's resident set, in bytes, from /proc/self/status; -1
// where there is none. The test's clients are in the process too, so it is
// an upper bound on what the room costs.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// settledTCPMemory polls tcpMemory until it stops growing: the kernel
// takes what the room writes to members that do not read until their
// buffers are full, and nothing signals that moment.
func settledTCPMemory(t *testing.T) int64 {
	last := tcpMemory(t)
	deadline := time.Now().Add(testTimeout)
	for stable := 0; stable < 5 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // a poll: there is no event to wait for
		now := tcpMemory(t)
		if now > last {
			stable = 0
		} else {
			stable++
		}
		last = now
	}
	return last
}

// Joiners that never read a byte, in a room whose history is large, cost
// the server a bounded amount each: the history is encoded as their writer
// drains it, and the kernel's send buffer is bounded.
func TestNonReadingJoinersCostBoundedMemory(t *testing.T) {
	const (
		joiners   = 60 // many, so that other processes' sockets weigh little
		history   = 100
		textSize  = 32 << 10
		perJoiner = 512 << 10 // at most, heap and kernel memory together
	)
	tr := newTestRoom(t, WithHistory(History{Len: history, Bytes: history*textSize + history*16}), WithKeepalive(Off, 0))
	text := strings.Repeat("h", textSize)
	for i := range history {
		if _, err := tr.room.Broadcast(context.Background(), Message{Nickname: "server", Text: fmt.Sprintf("%03d%s", i, text)}); err != nil {
			t.Fatal(err)
		}
	}
	heap0, kernel0, rss0 := heapAfterGC(), settledTCPMemory(t), rss()
	for i := range joiners {
		tr.dialRawClient(fmt.Sprintf("nickname=quiet%d", i)) // never reads
		tr.waitJoin()
	}
	kernel1 := settledTCPMemory(t)
	heap1 := heapAfterGC()
	heapEach := (heap1 - heap0) / joiners
	kernelEach := (kernel1 - kernel0) / joiners
	t.Logf("per joiner that never reads: heap %d KiB, RSS %d KiB (clients included), kernel TCP memory %d KiB (both ends), history %d KiB",
		heapEach>>10, (rss()-rss0)/joiners>>10, kernelEach>>10, history*textSize>>10)
	if kernel0 < 0 {
		kernelEach = 0
	}
	if heapEach+kernelEach > perJoiner {
		t.Errorf("each joiner costs %d KiB, want at most %d KiB", (heapEach+kernelEach)>>10, perJoiner>>10)
	}
}

// A member keeps copies of its names, not the request they came in: a
// nickname of a few bytes in a query of 900 KB costs a few bytes.
func TestMemberDoesNotKeepItsRequest(t *testing.T) {
	const members = 20
	tr := newTestRoom(t, WithKeepalive(Off, 0))
	pad := strings.Repeat("p", 900<<10)
	heap0 := heapAfterGC()
	for i := range members {
		tr.joinWith(fmt.Sprintf("nickname=sei%d&pad=%s", i, pad), nil)
	}
	each := (heapAfterGC() - heap0) / members
	t.Logf("%d KiB per member joined with a 900 KiB query", each>>10)
	if each > 64<<10 {
		t.Errorf("each member holds %d KiB, want at most 64 KiB", each>>10)
	}
}

// One client that connects and disconnects in a loop neither pushes the
// room's messages out of its history (notices are not kept) nor gets more
// than its join limit's worth of joins.
func TestChurnKeepsHistory(t *testing.T) {
	const (
		messages = 50
		churns   = 200
	)
	// The churner says who it is in a header, so that the client that
	// resumes later is another address.
	clientIP := func(r *http.Request) string {
		if ip := r.Header.Get("X-Client"); ip != "" {
			return ip
		}
		return RemoteIP(r)
	}
	churner := &websocket.DialOptions{HTTPHeader: http.Header{"X-Client": {"192.0.2.1"}}}
	tr := newTestRoom(t, WithHistory(History{Len: 100}), WithPresence(), WithClock(fixedClock), WithJoinLimit(20, 50), WithClientIP(clientIP))
	ann := tr.join("ann")
	var first uint64
	for i := range messages {
		ann.send(fmt.Sprint(i))
		m := ann.readMsg()
		for m.Type != TypeMessage {
			m = ann.readMsg()
		}
		if i == 0 {
			first = m.ID
		}
	}
	refused := 0
	start := time.Now()
	for range churns {
		conn, resp, err := tr.dialRaw("nickname=churner", churner)
		if err != nil {
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			refused++
			continue
		}
		tr.waitJoin()
		_ = conn.CloseNow()
		tr.waitLeave()
	}
	// The limit lets through its burst and its rate's worth, however long
	// the churn took on this machine.
	if allowed := 50 + int(20*time.Since(start).Seconds()) + 1; churns-refused > allowed {
		t.Errorf("%d of %d churning joins got through, want at most %d", churns-refused, churns, allowed)
	}
	if refused == 0 {
		t.Error("no churning join was refused")
	}
	// A client resuming from the first message gets the 49 after it,
	// exactly, and no truncated notice.
	c := tr.joinWith(fmt.Sprintf("nickname=sei&since=%d", first), nil)
	var got []string
	for len(got) < messages-1 {
		m := c.readMsg()
		if m.Type == TypeTruncated {
			t.Fatal("resume answered truncated")
		}
		if m.Type == TypeMessage {
			got = append(got, m.Text)
		}
	}
	var want []string
	for i := 1; i < messages; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resumed history (-want +got):\n%s", diff)
	}
	t.Logf("%d of %d churning joins refused", refused, churns)
}

// History is bounded in bytes as well as in messages.
func TestHistoryBytesBound(t *testing.T) {
	st := NewMemoryStore(100, 100<<10)
	text := strings.Repeat("x", 30<<10)
	for i := range 10 {
		st.Append(Message{ID: uint64(i + 1), Nickname: "sei", Text: text})
	}
	msgs, complete := st.Since(0)
	if len(msgs) != 3 || msgs[0].ID != 8 || complete {
		t.Errorf("kept %d messages from ID %d, complete %v; want 3 from 8, incomplete", len(msgs), msgs[0].ID, complete)
	}
	// The newest is kept whatever its size.
	st.Append(Message{ID: 11, Text: strings.Repeat("y", 200<<10)})
	if msgs, _ := st.Since(0); len(msgs) != 1 || msgs[0].ID != 11 {
		t.Errorf("after a message over the bound: %d messages", len(msgs))
	}
}

// Notices are kept apart from messages: a joiner gets both, in order, and
// a churn of notices pushes out old notices only.
func TestMemoryStoreKeepsNoticesApart(t *testing.T) {
	st := NewMemoryStore(3, 0)
	id := uint64(0)
	add := func(typ MessageType, text string) {
		id++
		st.Append(Message{ID: id, Type: typ, Nickname: "n", Text: text})
	}
	add(TypeJoin, "")
	add(TypeMessage, "m1")
	add(TypeMessage, "m2")
	for range 10 {
		add(TypeJoin, "")
		add(TypeLeave, "")
	}
	add(TypeMessage, "m3")
	msgs, complete := st.Since(0)
	var got []string
	for _, m := range msgs {
		got = append(got, fmt.Sprintf("%d %s %s", m.ID, m.Type.orDefault(), m.Text))
	}
	want := []string{"2 message m1", "3 message m2", "21 leave ", "22 join ", "23 leave ", "24 message m3"}
	if diff := cmp.Diff(want, got); diff != "" || !complete {
		t.Errorf("Since(0), complete %v (-want +got):\n%s", complete, diff)
	}
	add(TypeMessage, "m4") // drops m1 (ID 2)
	msgs, complete = st.Since(0)
	if msgs[0].ID != 3 || complete {
		t.Errorf("after m1 was dropped: first %d, complete %v; want 3, false", msgs[0].ID, complete)
	}
}

// A queue of kept frames holds the last ones in order, and its slice stays
// near its count: a full history of 100 once held 256 slots of 224-byte
// Messages, twice what it keeps and more.
func TestKeptFramesStayShort(t *testing.T) {
	for _, bc := range []struct{ count, bytes, kept int }{
		{1, math.MaxInt, 1},
		{10, math.MaxInt, 10},
		{100, math.MaxInt, 100},
		{1000, math.MaxInt, 1000},
		{100, 30, 3}, // 10 bytes a frame: the byte bound keeps 3
	} {
		q := keptFrames{maxCount: bc.count, maxBytes: bc.bytes}
		n := 5*bc.count + 7
		for i := 1; i <= n; i++ {
			q.push(Message{ID: uint64(i), Text: fmt.Sprintf("%010d", i)})
		}
		var got, want []uint64
		for _, m := range q.since(0) {
			got = append(got, m.ID)
		}
		for i := n - bc.kept + 1; i <= n; i++ {
			want = append(want, uint64(i))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("count %d, bytes %d: kept (-want +got):\n%s", bc.count, bc.bytes, diff)
		}
		// At most a quarter more than kept (16 at least) before the move
		// back to the front, and append's growth beyond that.
		if limit := bc.kept + max(16, bc.kept/4) + bc.kept/2 + 16; cap(q.frames) > limit {
			t.Errorf("count %d, bytes %d: %d slots for %d frames kept, want at most %d", bc.count, bc.bytes, cap(q.frames), bc.kept, limit)
		}
	}
}
