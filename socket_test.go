package chatroom

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
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

func newTestSocket(t *testing.T, c net.Conn, brw *bufio.ReadWriter) *socket {
	t.Helper()
	s, _, err := newSocket(c, brw, new(sync.Pool), socketOptions{closeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSocketGathersWritesWhileHeld(t *testing.T) {
	rc := newRecordingConn(strings.NewReader(""))
	s := newTestSocket(t, rc, nil)

	s.hold()
	for _, p := range []string{"one", "two", "three"} {
		if _, err := s.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got := rc.recorded(); len(got) != 0 {
		t.Fatalf("writes reached the network while held: %q", got)
	}
	if got, want := s.buffered(), len("onetwothree"); got != want {
		t.Errorf("buffered() = %d, want %d", got, want)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	s.releaseBatch()
	if diff := cmp.Diff([]string{"onetwothree", "pong"}, rc.recorded()); diff != "" {
		t.Errorf("network writes (-want +got):\n%s", diff)
	}
}

func TestSocketDiscardDropsTheBatch(t *testing.T) {
	rc := newRecordingConn(strings.NewReader(""))
	s := newTestSocket(t, rc, nil)
	s.hold()
	_, _ = s.Write([]byte("stale"))
	s.discard()
	if err := s.flush(); err != nil {
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
	s.hold()
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
	s.hold()
	_, _ = s.Write([]byte("never read"))
	flushed := make(chan error, 1)
	go func() { flushed <- s.flush() }()
	<-rc.writing
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-flushed; !errors.Is(err, net.ErrClosed) {
		t.Errorf("flush() = %v, want net.ErrClosed", err)
	}
}

// TestFramesSentWithTheHandshake checks that a frame a client pipelines right
// behind its upgrade request, which the HTTP server reads into its buffer, is
// not lost.
func TestFramesSentWithTheHandshake(t *testing.T) {
	tr := newTestRoom(t)
	addr := strings.TrimPrefix(tr.srv.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))

	req := "GET /chat?nickname=early HTTP/1.1\r\nHost: " + addr + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	payload := []byte(`{"message": "sent with the handshake"}`)
	hdrOut := []byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0} // masked with a zero key
	if _, err := c.Write(append(append([]byte(req), hdrOut...), payload...)); err != nil {
		t.Fatal(err)
	}

	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	n := int(hdr[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = int(binary.BigEndian.Uint16(ext[:]))
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(frame("early", "sent with the handshake"), string(got)); diff != "" {
		t.Errorf("broadcast (-want +got):\n%s", diff)
	}
}

func TestTextFrameHeaders(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000} {
		buf := make([]byte, maxFrameHeader, maxFrameHeader+n)
		buf = append(buf, strings.Repeat("x", n)...)
		f := textFrame(buf)
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
	s.hold()
	if _, err := s.appendFrame([]byte{0x81, 1, 'a'}); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write([]byte{0x88, 2, 0x03, 0xe8}) // the Conn's close frame
	if _, err := s.appendFrame([]byte{0x81, 1, 'b'}); !errors.Is(err, errCloseSent) {
		t.Errorf("appendFrame after the close frame = %v, want errCloseSent", err)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"\x81\x01a\x88\x02\x03\xe8"}, rc.recorded()); diff != "" {
		t.Errorf("network writes (-want +got):\n%s", diff)
	}
}
