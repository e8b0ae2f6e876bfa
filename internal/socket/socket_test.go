package socket

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recordingConn records each Write it is given; Write blocks while gate is
// set, until the connection is closed.
type recordingConn struct {
	net.Conn // nil: methods not defined here are not expected
	r        io.Reader

	mu      sync.Mutex
	writes  []string
	closed  chan struct{}
	gate    bool
	writing chan struct{} // receives when a gated Write starts
}

func newRecordingConn(r io.Reader) *recordingConn {
	return &recordingConn{r: r, closed: make(chan struct{}), writing: make(chan struct{}, 1)}
}

func (c *recordingConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate {
		c.writing <- struct{}{}
		<-c.closed
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *recordingConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
	default:
		close(c.closed)
		c.writes = append(c.writes, "<closed>")
	}
	return nil
}

func (c *recordingConn) SetWriteDeadline(time.Time) error { return nil }
func (c *recordingConn) SetDeadline(time.Time) error      { return nil }

func (c *recordingConn) recorded() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

func newTestSocket(t *testing.T, c net.Conn, brw *bufio.ReadWriter) *Socket {
	t.Helper()
	s, _, err := New(c, brw, new(sync.Pool), Options{CloseTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSocketGathersWritesWhileHeld(t *testing.T) {
	rc := newRecordingConn(strings.NewReader(""))
	s := newTestSocket(t, rc, nil)

	s.Hold()
	for _, p := range []string{"one", "two", "three"} {
		if _, err := s.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got := rc.recorded(); len(got) != 0 {
		t.Fatalf("writes reached the network while held: %q", got)
	}
	if got, want := s.Buffered(), len("onetwothree"); got != want {
		t.Errorf("buffered() = %d, want %d", got, want)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	s.ReleaseBatch()
	if diff := cmp.Diff([]string{"onetwothree", "pong"}, rc.recorded()); diff != "" {
		t.Errorf("network writes (-want +got):\n%s", diff)
	}
}

func TestSocketDiscardDropsTheBatch(t *testing.T) {
	rc := newRecordingConn(strings.NewReader(""))
	s := newTestSocket(t, rc, nil)
	s.Hold()
	_, _ = s.Write([]byte("stale"))
	s.Discard()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := rc.recorded(); len(got) != 0 {
		t.Errorf("discarded batch was written: %q", got)
	}
}

func TestSocketReadsWhatTheServerBufferedFirst(t *testing.T) {
	// The HTTP server has read "early" past the handshake into its reader.
	server := bufio.NewReader(strings.NewReader("early"))
	if _, err := server.Peek(len("early")); err != nil {
		t.Fatal(err)
	}
	brw := bufio.NewReadWriter(server, bufio.NewWriter(io.Discard))
	s := newTestSocket(t, newRecordingConn(strings.NewReader(" then network")), brw)
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "early then network" {
		t.Errorf("read %q, want %q", got, "early then network")
	}
}

func TestSocketCloseWritesAHeldBatch(t *testing.T) {
	rc := newRecordingConn(strings.NewReader(""))
	s := newTestSocket(t, rc, nil)
	s.Hold()
	_, _ = s.Write([]byte("close frame"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"close frame", "<closed>"}, rc.recorded()); diff != "" {
		t.Errorf("network writes (-want +got):\n%s", diff)
	}
}

func TestSocketCloseCutsABlockedFlush(t *testing.T) {
	rc := newRecordingConn(strings.NewReader(""))
	rc.gate = true // the client does not read: writes block until closed
	s := newTestSocket(t, rc, nil)
	s.Hold()
	_, _ = s.Write([]byte("never read"))
	flushed := make(chan error, 1)
	go func() { flushed <- s.Flush() }()
	<-rc.writing
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-flushed; !errors.Is(err, net.ErrClosed) {
		t.Errorf("flush() = %v, want net.ErrClosed", err)
	}
}

func TestTextFrameHeaders(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000} {
		buf := make([]byte, MaxFrameHeader, MaxFrameHeader+n)
		buf = append(buf, strings.Repeat("x", n)...)
		f := TextFrame(buf)
		if f[0] != 0x81 {
			t.Fatalf("n=%d: first byte %#x, want 0x81 (FIN, text)", n, f[0])
		}
		var got, hdr int
		switch l := int(f[1]); {
		case l < 126:
			got, hdr = l, 2
		case l == 126:
			got, hdr = int(binary.BigEndian.Uint16(f[2:])), 4
		default:
			got, hdr = int(binary.BigEndian.Uint64(f[2:])), 10
		}
		if got != n || len(f) != hdr+n {
			t.Errorf("n=%d: header says %d, frame is %d bytes with a %d-byte header", n, got, len(f), hdr)
		}
		if f[1]&0x80 != 0 {
			t.Errorf("n=%d: a server frame must not be masked", n)
		}
	}
}

func TestNoDataFrameAfterTheCloseFrame(t *testing.T) {
	rc := newRecordingConn(strings.NewReader(""))
	s := newTestSocket(t, rc, nil)
	s.Hold()
	if _, err := s.AppendFrame([]byte{0x81, 1, 'a'}); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write([]byte{0x88, 2, 0x03, 0xe8}) // the Conn's close frame
	if _, err := s.AppendFrame([]byte{0x81, 1, 'b'}); !errors.Is(err, ErrCloseSent) {
		t.Errorf("AppendFrame after the close frame = %v, want ErrCloseSent", err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"\x81\x01a\x88\x02\x03\xe8"}, rc.recorded()); diff != "" {
		t.Errorf("network writes (-want +got):\n%s", diff)
	}
}

// maskedFrame is a client's frame: FIN, opcode, masked with key.
func maskedFrame(opcode byte, payload string, key [4]byte) string {
	f := []byte{0x80 | opcode, 0x80 | byte(len(payload)), key[0], key[1], key[2], key[3]}
	for i := range len(payload) {
		f = append(f, payload[i]^key[i%4])
	}
	return string(f)
}

// TakeControl consumes whole pings and pongs and nothing else: a ping is
// answered, a pong returned, and what follows is read as it came.
func TestTakeControlConsumesOnlyPingsAndPongs(t *testing.T) {
	text := maskedFrame(0x1, "hi", [4]byte{9, 8, 7, 6})
	in := maskedFrame(0xa, "42", [4]byte{1, 2, 3, 4}) + maskedFrame(0x9, "ab", [4]byte{5, 6, 7, 8}) + text
	rc := newRecordingConn(strings.NewReader(in))
	s, brw, err := New(rc, nil, new(sync.Pool), Options{CloseTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Fatal("not ready with bytes to read")
	}
	if c, p := s.TakeControl(); c != Pong || string(p) != "42" {
		t.Fatalf("TakeControl = %v, %q; want Pong, 42", c, p)
	}
	if c, _ := s.TakeControl(); c != Ping {
		t.Fatalf("TakeControl = %v; want Ping", c)
	}
	if diff := cmp.Diff([]string{"\x8a\x02ab"}, rc.recorded()); diff != "" {
		t.Errorf("the answer to the ping (-want +got):\n%s", diff)
	}
	if c, p := s.TakeControl(); c != NoControl {
		t.Fatalf("TakeControl took the text frame: %v, %q", c, p)
	}
	rest, err := io.ReadAll(brw.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(text, string(rest)); diff != "" {
		t.Errorf("read after the pong (-want +got):\n%s", diff)
	}
}

// WritePing writes one whole ping frame, into the batch while the writer
// holds the socket.
func TestWritePingJoinsTheBatch(t *testing.T) {
	rc := newRecordingConn(strings.NewReader(""))
	s := newTestSocket(t, rc, nil)
	if err := s.WritePing([]byte("1")); err != nil {
		t.Fatal(err)
	}
	s.Hold()
	if _, err := s.AppendFrame([]byte("frame")); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePing([]byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"\x89\x011", "frame\x89\x012"}, rc.recorded()); diff != "" {
		t.Errorf("network writes (-want +got):\n%s", diff)
	}
}
