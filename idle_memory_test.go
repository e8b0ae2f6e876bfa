//go:build !race

package chatroom

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// dialIdle opens a WebSocket to tr's room on a bare TCP connection and
// reads the handshake's answer with the smallest buffer, so that the
// client costs the process little more than its socket. The caller
// closes it.
func dialIdle(t *testing.T, tr *testRoom, nickname string) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(tr.srv.URL, "http://")
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	req := "GET /?nickname=" + nickname + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	// Byte by byte, so that nothing past the handshake is taken from the
	// connection.
	br := bufio.NewReaderSize(oneByte{conn}, 16)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		t.Fatalf("handshake: %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if line == "\r\n" {
			_ = conn.SetReadDeadline(time.Time{})
			return conn
		}
	}
}

// oneByte reads at most one byte at a time.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

// An idle member costs the server little: its reader waits for the next
// message on a small stack, also once it has sent a message and gone
// quiet (the reader hands over to a fresh goroutine), and its heap holds
// no buffers or limiters it does not need. The figures include each
// client's socket, which is in the same process. Without the race
// detector, which multiplies both.
func TestIdleMemberMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reader waits on a shallow stack on Linux only (internal/socket)")
	}
	// Bounds with headroom over what was measured on Linux (BENCHMARKS.md,
	// "Idle connections"): stack 2.7-2.9 KiB per member joined (some
	// readers start on 4 KiB: the runtime sizes new stacks from the average
	// it has seen) and 2.1-2.2 KiB once it has sent a message; heap 4.3 and
	// 4.5 KiB. Before the shallow wait and the hand-over, stack was 4.2 and
	// 6.9-8.3 KiB, heap 4.5 KiB.
	const members = 500
	type bounds struct{ stack, heap int64 }
	joined, spoke := bounds{3584, 5120}, bounds{3584, 5120}
	// The hook takes the members' messages, so that no writer is still
	// fanning them out when the stacks are measured.
	tr := newTestRoom(t, WithJoinLimit(Off, 0), WithRateLimit(100, 10), OnMessage(func(context.Context, *Member, Message) (Message, error) {
		return Message{}, ErrHandled
	}))
	handedOver := make(chan struct{}, members)
	tr.room.cfg.handedOver = func() { handedOver <- struct{}{} }
	heap0, stack0 := heapAfterGC(), stackInUse()
	conns := make([]net.Conn, members)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range conns {
		conns[i] = dialIdle(t, tr, fmt.Sprintf("idle%d", i))
		tr.waitJoin()
	}
	report := func(what string, max bounds) {
		t.Helper()
		heap, stack := heapAfterGC(), stackInUse()
		stackEach, heapEach := (stack-stack0)/members, (heap-heap0)/members
		t.Logf("%s: per member, stack %d B, heap %d B", what, stackEach, heapEach)
		if stackEach > max.stack {
			t.Errorf("%s: %d B of stack per member, want at most %d", what, stackEach, max.stack)
		}
		if heapEach > max.heap {
			t.Errorf("%s: %d B of heap per member, want at most %d", what, heapEach, max.heap)
		}
	}
	report("joined, never sent", joined)

	// Each sends a message and goes quiet, and its reader hands over.
	for _, c := range conns {
		text := `{"message":"hello"}`
		if _, err := c.Write(append(clientHeader(true, 0x1, len(text)), text...)); err != nil {
			t.Fatal(err)
		}
	}
	for range members {
		<-handedOver
	}
	report("after one message each", spoke)
}
