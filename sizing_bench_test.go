package chatroom

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom/broker"
)

// The figures of docs/cluster.md's sizing that these benchmarks measure,
// each reproduced by the command in its doc comment (BENCHMARKS.md,
// "Sizing figures").

// sizingRooms is how many rooms BenchmarkRoomMemory builds per case: enough
// that the heap's own noise after a collection is small per room.
const sizingRooms = 300

// sizingText is a chat-sized message: the texts a room's history keeps.
var sizingText = strings.Repeat("chat-sized message text ", 4)[:96]

// BenchmarkRoomMemory measures the live heap, after a full collection, of
// one room with presence and, but in one case, the default history
// (History{}: 100 messages), averaged over many rooms: empty, with its history just full,
// after 300 messages, and on a cluster (an in-process broker that keeps 1
// publication per room, which counts here too) after 300 messages, with
// and without history, and holding the member lists of 9 other nodes of
// 10 members each (the heartbeats they sent, taken in as in
// BenchmarkHeartbeatReconcile). The cluster's room is
// subscribed as for its first member, without one, so that no member's
// cost enters; its heartbeat goroutine's stack is reported apart
// (stack-B/room), as it is not heap.
//
//	go test -run '^$' -bench RoomMemory -benchtime 1x -count 3
func BenchmarkRoomMemory(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name     string
		msgs     int
		clusters bool
		history  bool
		peers    int // other nodes with 10 members each in the room
	}{
		{"empty", 0, false, true, 0},
		{"history-full", DefaultHistoryLen, false, true, 0},
		// As it stays once turned over: its queue of frames (keptFrames)
		// slides over a quarter more than its length before moving back.
		{"history-300-messages", 300, false, true, 0},
		{"cluster-300-messages", 300, true, true, 0},
		{"cluster-no-history-300-messages", 300, true, false, 0},
		// The 1M example's room as one node sees it: 90 of its 100
		// members on 9 other nodes.
		{"cluster-90-peer-members", 0, true, true, 9},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var heap, stack int64
			fulls, _ := peerHeartbeats(bc.peers, 10)
			for b.Loop() {
				var br broker.Broker
				if bc.clusters {
					br = broker.NewMemory(1)
				}
				h0, s0 := heapAfterGC(), stackInUse()
				rooms := make([]*Room, sizingRooms)
				for i := range rooms {
					opts := []Option{WithPresence(), WithName("room-" + strconv.Itoa(i))}
					if bc.history {
						opts = append(opts, WithHistory(History{}))
					}
					if bc.clusters {
						opts = append(opts, WithBroker(br))
					}
					rooms[i] = New(opts...)
					if bc.clusters {
						c := rooms[i].link.(*cluster)
						c.attach()
						for _, full := range fulls {
							c.deliver(full)
						}
					}
					for j := range bc.msgs {
						// Each text its own, as one read from a member is.
						msg := Message{Nickname: "member-" + strconv.Itoa(j%100), Text: strings.Clone(sizingText)}
						if _, err := rooms[i].Broadcast(ctx, msg); err != nil {
							b.Fatal(err)
						}
					}
				}
				heap += heapAfterGC() - h0
				stack += stackInUse() - s0
				for _, rm := range rooms {
					if bc.clusters {
						rm.link.(*cluster).detach()
					}
					if err := rm.Close(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(heap)/float64(b.N*sizingRooms), "B/room")
			b.ReportMetric(float64(stack)/float64(b.N*sizingRooms), "stack-B/room")
		})
	}
}

// stackInUse is the memory of the goroutines' stacks, in bytes.
func stackInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}

// keepaliveClientsEnv, set, makes TestKeepaliveClients the client side of
// BenchmarkKeepalive, in a process of its own (see there).
const keepaliveClientsEnv = "CHATROOM_KEEPALIVE_CLIENTS"

const (
	keepaliveMembers = 1000
	keepalivePings   = 10000 // per round: 1 to 3 s
)

// BenchmarkKeepalive measures the server's CPU time per keepalive ping
// and its pong, for idle members: 1,000 coder/websocket clients on
// loopback that only read (which answers pings), in a room pinging each
// every 300 ms (3,333 pings/s: what a node of 100,000 members pings at the
// default 30 s) and every 100 ms. The clients run in a child process (this
// test binary, running TestKeepaliveClients), so that the process CPU time
// measured here (getrusage, user and system) is the server's alone; the
// child reports its own, per ping, as client-µs/ping. A round lasts until
// the clients have received 10,000 pings.
//
//	go test -run '^$' -bench Keepalive -benchtime 1x -count 3
func BenchmarkKeepalive(b *testing.B) {
	for _, interval := range []time.Duration{300 * time.Millisecond, 100 * time.Millisecond} {
		rate := int(time.Duration(keepaliveMembers) * time.Second / interval)
		b.Run("pings/s="+strconv.Itoa(rate), func(b *testing.B) { benchmarkKeepalive(b, interval) })
	}
}

func benchmarkKeepalive(b *testing.B, interval time.Duration) {
	joined := make(chan struct{}, keepaliveMembers)
	rm := New(WithJoinLimit(Off, 0), WithKeepalive(interval, DefaultPongTimeout), OnJoin(func(context.Context, *Member) error {
		joined <- struct{}{}
		return nil
	}))
	srv := httptest.NewServer(rm)
	defer srv.Close()
	defer rm.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKeepaliveClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), keepaliveClientsEnv+"=ws"+strings.TrimPrefix(srv.URL, "http"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // the clients' signal to hang up
		if err := cmd.Wait(); err != nil {
			b.Errorf("clients: %v", err)
		}
	}()
	// The child's answers; anything else it prints (a failure) goes to
	// stderr at once.
	done := make(chan string)
	go func() {
		defer close(done)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if ns, ok := strings.CutPrefix(lines.Text(), "done "); ok {
				done <- ns
			} else if lines.Text() != "PASS" {
				fmt.Fprintln(os.Stderr, "clients:", lines.Text())
			}
		}
	}()
	timeout := time.After(time.Minute)
	for range keepaliveMembers {
		select {
		case <-joined:
		case <-timeout:
			b.Fatal("the clients did not all join within a minute")
		}
	}
	var server, client time.Duration
	for b.Loop() {
		start := cpuTime()
		if _, err := fmt.Fprintln(stdin, "round"); err != nil {
			b.Fatal(err)
		}
		answer, ok := <-done
		if !ok {
			b.Fatal("clients: no answer")
		}
		server += cpuTime() - start
		ns, err := strconv.ParseInt(answer, 10, 64)
		if err != nil {
			b.Fatalf("clients answered %q", answer)
		}
		client += time.Duration(ns)
	}
	pings := float64(b.N * keepalivePings)
	b.ReportMetric(float64(server.Microseconds())/pings, "µs/ping")
	b.ReportMetric(float64(client.Microseconds())/pings, "client-µs/ping")
}

// TestKeepaliveClients is BenchmarkKeepalive's client side, in its own
// process: with keepaliveClientsEnv set to a room's URL, it connects
// keepaliveMembers clients that read and so answer pings. For each line
// "round" on stdin it counts keepalivePings pings received and answers
// "done" and its CPU time for them in nanoseconds; at the end of stdin it
// hangs up. Without the variable it is skipped.
func TestKeepaliveClients(t *testing.T) {
	url := os.Getenv(keepaliveClientsEnv)
	if url == "" {
		t.Skip("the client side of BenchmarkKeepalive, run by it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var pings atomic.Int64
	round := make(chan struct{}, 1)
	var target atomic.Int64
	target.Store(-1)
	opts := &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		if pings.Add(1) == target.Load() {
			round <- struct{}{}
		}
		return true
	}}
	conns := make([]*websocket.Conn, keepaliveMembers)
	var readers sync.WaitGroup
	for i := range conns {
		c, _, err := websocket.Dial(ctx, url+"?nickname=idle"+strconv.Itoa(i), opts)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns[i] = c
		readers.Go(func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		})
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		start := cpuTime()
		target.Store(pings.Load() + keepalivePings)
		select {
		case <-round:
		case <-ctx.Done():
			t.Fatal("no round of pings within 10 minutes")
		}
		fmt.Printf("done %d\n", (cpuTime() - start).Nanoseconds())
	}
	for _, c := range conns {
		_ = c.CloseNow()
	}
	readers.Wait()
}

// BenchmarkMemoryStoreAppend measures a frame's way into a full history
// of the default 100: what keeping its queue's slice short costs each
// message (BenchmarkRoomMemory measures the memory).
//
//	go test -run '^$' -bench MemoryStoreAppend -count 5
func BenchmarkMemoryStoreAppend(b *testing.B) {
	s := NewMemoryStore(DefaultHistoryLen, DefaultHistoryBytes)
	msg := Message{Nickname: "member-42", Text: sizingText}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		msg.ID = uint64(i+1) * idStride
		s.Append(msg)
	}
}
