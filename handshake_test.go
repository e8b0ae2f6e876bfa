package chatroom

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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
