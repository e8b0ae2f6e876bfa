package chatroom

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawClient is a WebSocket client written on a bare TCP connection, frame by
// frame, so that tests can do what no library client does: keep writing a
// message after the server has closed, send a close frame with any payload,
// and tell a clean end of the connection (EOF) from a reset.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// dialRawClient opens a WebSocket to the room with the given raw query.
func (tr *testRoom) dialRawClient(query string) *rawClient {
	tr.t.Helper()
	c, _ := tr.dialRawClientWith(query, "")
	return c
}

// dialRawClientWith is dialRawClient with more header lines in the request
// ("Name: value\r\n" each); it returns the response's header lines too.
func (tr *testRoom) dialRawClientWith(query, header string) (*rawClient, []string) {
	tr.t.Helper()
	addr := strings.TrimPrefix(tr.srv.URL, "http://")
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(2 * testTimeout))
	req := "GET /?" + query + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + header + "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		tr.t.Fatal(err)
	}
	c := &rawClient{t: tr.t, conn: conn, br: bufio.NewReader(conn)}
	status, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		tr.t.Fatalf("handshake: %q, %v", status, err)
	}
	var lines []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			tr.t.Fatalf("handshake: %v", err)
		}
		if line == "\r\n" {
			return c, lines
		}
		lines = append(lines, strings.TrimSuffix(line, "\r\n"))
	}
}

// writeHeader writes the header of a masked frame of n bytes with the mask
// key 0, so that the payload goes on the wire as it is.
func (c *rawClient) writeHeader(fin bool, opcode byte, n int) error {
	_, err := c.conn.Write(clientHeader(fin, opcode, n))
	return err
}

// clientHeader is the header of a client frame of n bytes, masked with the
// key 0.
func clientHeader(fin bool, opcode byte, n int) []byte {
	h := make([]byte, 2, 14)
	h[0] = opcode
	if fin {
		h[0] |= 0x80
	}
	switch {
	case n < 126:
		h[1] = 0x80 | byte(n)
	case n <= 0xffff:
		h[1] = 0x80 | 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h[1] = 0x80 | 127
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	return append(h, 0, 0, 0, 0)
}

// writeFrame writes one whole frame.
func (c *rawClient) writeFrame(fin bool, opcode byte, payload []byte) error {
	if err := c.writeHeader(fin, opcode, len(payload)); err != nil {
		return err
	}
	_, err := c.conn.Write(payload)
	return err
}

// writeText writes a text message of n bytes, {"message":"xxx…"}, in
// writes of at most 64 KiB, as a client that keeps writing does.
func (c *rawClient) writeText(n int) error {
	if err := c.writeHeader(true, 0x1, n); err != nil {
		return err
	}
	const head, tail = `{"message":"`, `"}`
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = 'x'
	}
	if _, err := io.WriteString(c.conn, head); err != nil {
		return err
	}
	for left := n - len(head) - len(tail); left > 0; {
		k := min(left, len(chunk))
		if _, err := c.conn.Write(chunk[:k]); err != nil {
			return err
		}
		left -= k
	}
	_, err := io.WriteString(c.conn, tail)
	return err
}

// readFrame reads one frame from the server.
func (c *rawClient) readFrame() (opcode byte, payload []byte, err error) {
	b0, payload, err := c.readFrameBits()
	return b0 & 0x0f, payload, err
}

// readFrameBits is readFrame, with the frame's first byte whole: FIN, the
// RSV bits and the opcode.
func (c *rawClient) readFrameBits() (b0 byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0], payload, nil
}

// closeSeen is how a connection ended, as the client saw it.
type closeSeen struct {
	code   websocket.StatusCode // -1: no close frame arrived
	reason string
	reset  bool // the connection ended with a reset rather than EOF
	err    error
}

func (s closeSeen) String() string {
	return fmt.Sprintf("close %d %q, reset %v (%v)", s.code, s.reason, s.reset, s.err)
}

// awaitClose reads until the server's close frame, calls answer (which may
// write the client's close frame), then reads until the connection ends.
func (c *rawClient) awaitClose(answer func(code websocket.StatusCode)) closeSeen {
	seen := closeSeen{code: -1}
	for {
		op, p, err := c.readFrame()
		if err != nil {
			seen.err, seen.reset = err, errors.Is(err, syscall.ECONNRESET)
			return seen
		}
		if op != 0x8 {
			continue
		}
		if len(p) >= 2 {
			seen.code, seen.reason = websocket.StatusCode(binary.BigEndian.Uint16(p)), string(p[2:])
		}
		break
	}
	if answer != nil {
		answer(seen.code)
	}
	_, err := io.Copy(io.Discard, c.br)
	seen.err, seen.reset = err, errors.Is(err, syscall.ECONNRESET)
	_ = c.conn.Close() // as a client does once the server has closed
	return seen
}

// closeBody is the payload of a close frame.
func closeBody(code websocket.StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// statusOf returns the status code of a close frame's payload, or -1.
func statusOf(p []byte) websocket.StatusCode {
	if len(p) < 2 {
		return -1
	}
	return websocket.StatusCode(binary.BigEndian.Uint16(p))
}
