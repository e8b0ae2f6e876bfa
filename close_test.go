package chatroom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
)

// A client that sends a message over the size limit is still writing it
// when the room closes its connection. It must read the room's close frame
// (1009) and see the connection end cleanly, not by a reset: the room reads
// and discards the rest of the message and closes the TCP connection only
// after the client's close frame (RFC 6455, sections 1.4 and 7.1.1).
func TestOversizeMessageCloseReachesAClientStillWriting(t *testing.T) {
	sizes := []struct {
		n, runs int
	}{
		{40 << 10, 20},
		{1 << 20, 10},
		{4 << 20, 10},
		{16 << 20, 5},
		{64 << 20, 3},
	}
	// The close timeout bounds the whole handshake, the rest of the message
	// included: generous here, since the race detector slows both ends.
	tr := newTestRoom(t, WithKeepalive(Off, 0), WithCloseTimeout(30*time.Second))
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dKiB", sz.n>>10), func(t *testing.T) {
			for run := range sz.runs {
				seen, werr := writeWhileClosing(tr, func(c *rawClient) error { return c.writeText(sz.n) })
				if seen.code != websocket.StatusMessageTooBig || seen.reason != reasonTooBig || seen.reset || seen.err != nil {
					t.Errorf("run %d: client saw %v, want close 1009 %q and EOF", run, seen, reasonTooBig)
				}
				if werr != nil {
					t.Errorf("run %d: the client's writes failed: %v", run, werr)
				}
				tr.expectLeave("writer", ErrMessageTooBig)
			}
		})
	}
}

// writeWhileClosing joins a raw client that writes with write, as a client
// does that keeps writing whatever arrives, then answers the room's close
// frame with its own. It returns what the client saw and how its writes
// ended.
func writeWhileClosing(tr *testRoom, write func(*rawClient) error) (closeSeen, error) {
	c := tr.dialRawClient("nickname=writer")
	tr.waitJoin()
	answer := make(chan websocket.StatusCode, 1)
	wrote := make(chan error, 1)
	go func() {
		err := write(c)
		if code, ok := <-answer; ok && err == nil {
			err = c.writeFrame(true, 0x8, closeBody(code, ""))
		}
		wrote <- err
	}()
	seen := c.awaitClose(func(code websocket.StatusCode) { answer <- code })
	close(answer)
	return seen, <-wrote
}

// Every close the room starts while the client is still sending reaches
// the client: bad input (1007, 1003) and shutdown (1001).
func TestCloseCodeReachesAClientStillWriting(t *testing.T) {
	const burst = 4 << 20 // bytes of 1 KiB messages written after the cause
	message := []byte(`{"message":"` + fmt.Sprintf("%01000d", 0) + `"}`)
	keepWriting := func(c *rawClient) error {
		for sent := 0; sent < burst; sent += len(message) {
			if err := c.writeFrame(true, 0x1, message); err != nil {
				return err
			}
		}
		return nil
	}
	tests := []struct {
		name   string
		first  func(c *rawClient) error // what makes the room close
		code   websocket.StatusCode
		reason string
		leave  error
	}{
		{"invalid JSON", func(c *rawClient) error { return c.writeFrame(true, 0x1, []byte(`{"message":`)) },
			websocket.StatusInvalidFramePayloadData, reasonInvalidJSON, ErrInvalidMessage},
		{"binary", func(c *rawClient) error { return c.writeFrame(true, 0x2, []byte("x")) },
			websocket.StatusUnsupportedData, "binary messages are not supported", ErrUnsupportedData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRoom(t, WithKeepalive(Off, 0))
			for run := range 5 {
				seen, _ := writeWhileClosing(tr, func(c *rawClient) error {
					if err := tt.first(c); err != nil {
						return err
					}
					return keepWriting(c)
				})
				if seen.code != tt.code || seen.reason != tt.reason || seen.reset || seen.err != nil {
					t.Errorf("run %d: client saw %v, want close %d %q and EOF", run, seen, tt.code, tt.reason)
				}
				tr.expectLeave("writer", tt.leave)
			}
		})
	}
	t.Run("shutdown", func(t *testing.T) {
		tr := newTestRoom(t, WithKeepalive(Off, 0))
		c := tr.dialRawClient("nickname=writer")
		tr.waitJoin()
		go func() {
			// Stops when the connection ends; the room echoes what it
			// reads until it closes.
			for c.writeFrame(true, 0x1, message) == nil {
			}
		}()
		done := make(chan error, 1)
		go func() { done <- tr.room.Shutdown(context.Background()) }()
		seen := c.awaitClose(func(code websocket.StatusCode) {
			_ = c.writeFrame(true, 0x8, closeBody(code, ""))
		})
		if seen.code != websocket.StatusGoingAway || seen.reset || seen.err != nil {
			t.Errorf("client saw %v, want close 1001 and EOF", seen)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		tr.expectLeave("writer", ErrRoomClosed)
	})
}

// coder/websocket echoes a client's close frame as it came; the room never
// sends invalid UTF-8, and answers such a reason with 1007 (RFC 6455,
// section 8.1).
func TestCloseReasonIsNeverInvalidUTF8(t *testing.T) {
	tests := []struct {
		name       string
		reason     string
		wantCode   websocket.StatusCode
		wantReason string
	}{
		{"valid reason echoed", "bye", websocket.StatusNormalClosure, "bye"},
		{"invalid UTF-8", "\xff\xfebye", websocket.StatusInvalidFramePayloadData, reasonInvalidUTF8},
		{"truncated rune", "caf\xc3", websocket.StatusInvalidFramePayloadData, reasonInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRoom(t)
			c := tr.dialRawClient("nickname=sei")
			tr.waitJoin()
			if err := c.writeFrame(true, 0x8, closeBody(websocket.StatusNormalClosure, tt.reason)); err != nil {
				t.Fatal(err)
			}
			seen := c.awaitClose(nil)
			if seen.code != tt.wantCode || seen.reason != tt.wantReason || !utf8.ValidString(seen.reason) {
				t.Errorf("client saw %v, want close %d %q", seen, tt.wantCode, tt.wantReason)
			}
			if seen.reset || seen.err != nil {
				t.Errorf("connection ended with %v, want EOF", seen)
			}
			tr.expectLeave("sei", ErrClientClosed)
		})
	}
}

// A client cannot hold a closing connection open by streaming: past the
// size limit the room reads at most closeDrainLimit bytes more, and only
// until the close timeout.
func TestClosingDrainIsBounded(t *testing.T) {
	// stream writes one endless message until the connection ends and
	// returns how many bytes the room took.
	stream := func(t *testing.T, tr *testRoom) (took int64) {
		c := tr.dialRawClient("nickname=streamer")
		tr.waitJoin()
		go c.awaitClose(nil)
		if err := c.writeHeader(true, 0x1, 1<<40); err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 64<<10)
		_ = c.conn.SetWriteDeadline(time.Now().Add(2 * testTimeout))
		for {
			n, err := c.conn.Write(chunk)
			took += int64(n)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("the room still reads after %d bytes: %v", took, err)
				}
				return took
			}
		}
	}
	t.Run("time", func(t *testing.T) {
		tr := newTestRoom(t, WithKeepalive(Off, 0), WithCloseTimeout(200*time.Millisecond))
		start := time.Now()
		stream(t, tr)
		t.Logf("connection cut %v after the join", time.Since(start).Round(time.Millisecond))
		tr.expectLeave("streamer", ErrMessageTooBig)
	})
	t.Run("bytes", func(t *testing.T) {
		tr := newTestRoom(t, WithKeepalive(Off, 0), WithCloseTimeout(time.Hour))
		took := stream(t, tr)
		// What the kernels on both ends buffer comes on top, and on
		// loopback that is tens of MiB (a receive buffer that is read
		// grows up to net.ipv4.tcp_rmem's maximum, 32 MiB here): allow
		// as much again. A room without the bound reads until the
		// close timeout, an hour here, gigabytes.
		limit := int64(DefaultMaxMessageSize + 2*socket.DrainLimit)
		if took > limit {
			t.Errorf("the room took %d bytes, want at most %d", took, limit)
		}
		t.Logf("%d MiB taken in all", took>>20)
		tr.expectLeave("streamer", ErrMessageTooBig)
	})
}

// A client on a slow link that sends a message over the limit still reads
// 1009: the room discards the rest before its close frame for half the
// close timeout only, then sends the close frame while the client is still
// sending.
func TestOversizeCloseReachesASlowClient(t *testing.T) {
	tr := newTestRoom(t, WithKeepalive(Off, 0), WithCloseTimeout(time.Second))
	c := tr.dialRawClient("nickname=slow")
	tr.waitJoin()
	seen := make(chan closeSeen, 1)
	go func() { seen <- c.awaitClose(nil) }()
	const size, chunk = 8 << 20, 16 << 10
	if err := c.writeHeader(true, 0x1, size); err != nil {
		t.Fatal(err)
	}
	// 16 KiB every 10 ms: about 1.6 MB/s, so the message takes 5 s.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, chunk)
	for sent := 0; sent < size; sent += chunk {
		if _, err := c.conn.Write(buf); err != nil {
			break // the room gave up at the close timeout
		}
		select {
		case s := <-seen:
			seen <- s
			sent = size
		case <-tick.C:
		}
	}
	s := <-seen
	if s.code != websocket.StatusMessageTooBig {
		t.Errorf("client saw %v, want close 1009", s)
	}
	tr.expectLeave("slow", ErrMessageTooBig)
}
