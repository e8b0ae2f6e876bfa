package chatroom

import (
	"bytes"
	"compress/flate"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// offerDeflate is the offer a browser makes.
const offerDeflate = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"

// deflateAnswer is the room's answer to every offer it takes.
const deflateAnswer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// deflateMessage compresses p as one permessage-deflate message: a fresh
// compressor, flushed, and the tail 00 00 ff ff removed (RFC 7692, 7.2.1).
func deflateMessage(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(p)
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte(deflateTail))
}

// inflateMessage is the receiver's side of deflateMessage.
func inflateMessage(t testing.TB, p []byte) string {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader(deflateTail)))
	b, err := io.ReadAll(r)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflate: %v", err)
	}
	return string(b)
}

// extensionsOf returns the Sec-WebSocket-Extensions header in lines.
func extensionsOf(lines []string) string {
	for _, l := range lines {
		if name, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(name, "Sec-WebSocket-Extensions") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// A client that offers permessage-deflate as browsers do gets it without
// context takeover; its compressed message is taken, and the room sends
// it compressed frames above the threshold, plain ones below, whose bytes
// after inflation are the default protocol's.
func TestDeflateRawClient(t *testing.T) {
	tr := newTestRoom(t)
	c, header := tr.dialRawClientWith("nickname=sei", offerDeflate)
	tr.waitJoin()
	if got := extensionsOf(header); got != deflateAnswer {
		t.Fatalf("Sec-WebSocket-Extensions = %q, want %q", got, deflateAnswer)
	}
	long := strings.Repeat("a chat message of some length, ", 10)
	for _, text := range []string{long, "hi"} {
		in := []byte(`{"message":"` + text + `"}`)
		if err := c.writeFrame(true, 0x40|0x1, deflateMessage(t, in)); err != nil { // RSV1, text
			t.Fatal(err)
		}
	}
	b0, p, err := c.readFrameBits()
	if err != nil {
		t.Fatal(err)
	}
	if b0 != 0xc1 {
		t.Errorf("first byte of a %d-byte frame = %#x, want 0xc1 (FIN, RSV1, text)", len(frame("sei", long)), b0)
	}
	if diff := cmp.Diff(frame("sei", long), inflateMessage(t, p)); diff != "" {
		t.Errorf("inflated frame (-want +got):\n%s", diff)
	}
	if len(p) >= len(frame("sei", long)) {
		t.Errorf("compressed frame of %d bytes, plain %d", len(p), len(frame("sei", long)))
	}
	b0, p, err = c.readFrameBits()
	if err != nil {
		t.Fatal(err)
	}
	if b0 != 0x81 || string(p) != frame("sei", "hi") {
		t.Errorf("small frame = %#x %q, want 0x81 %q", b0, p, frame("sei", "hi"))
	}
}

// A client that did not negotiate it, or a room with WithCompression(Off),
// gets no extension and today's bytes, and a frame with RSV1 set is a
// protocol error: close status 1002.
func TestDeflateRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		offer  string
		option []Option
	}{
		{"not offered", "", nil},
		{"room Off", offerDeflate, []Option{WithCompression(Off)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRoom(t, tt.option...)
			c, header := tr.dialRawClientWith("nickname=sei", tt.offer)
			tr.waitJoin()
			if got := extensionsOf(header); got != "" {
				t.Fatalf("Sec-WebSocket-Extensions = %q, want none", got)
			}
			long := strings.Repeat("x", 300)
			if err := c.writeFrame(true, 0x1, []byte(`{"message":"`+long+`"}`)); err != nil {
				t.Fatal(err)
			}
			if b0, p, err := c.readFrameBits(); err != nil || b0 != 0x81 || string(p) != frame("sei", long) {
				t.Fatalf("frame = %#x %q, %v; want 0x81 %q", b0, p, err, frame("sei", long))
			}
			if err := c.writeFrame(true, 0x40|0x1, deflateMessage(t, []byte(`{"message":"hi"}`))); err != nil {
				t.Fatal(err)
			}
			seen := c.awaitClose(nil)
			if seen.code != websocket.StatusProtocolError {
				t.Errorf("%v, want close 1002", seen)
			}
		})
	}
}

// coder/websocket's client, in either of its modes, is answered without
// context takeover, and what it sends and receives compressed arrives as
// sent.
func TestDeflateCoderClient(t *testing.T) {
	for name, mode := range map[string]websocket.CompressionMode{
		"NoContextTakeover": websocket.CompressionNoContextTakeover,
		"ContextTakeover":   websocket.CompressionContextTakeover,
	} {
		t.Run(name, func(t *testing.T) { deflateCoderClient(t, mode) })
	}
}

func deflateCoderClient(t *testing.T, mode websocket.CompressionMode) {
	tr := newTestRoom(t, WithHistory(History{Len: 10}))
	first := tr.join("ann")
	long := strings.Repeat("history that compresses well. ", 40)
	first.send(long)
	first.read()
	conn, resp, err := tr.dialRaw("nickname=sei", &websocket.DialOptions{CompressionMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	tr.waitJoin()
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != deflateAnswer {
		t.Errorf("Sec-WebSocket-Extensions = %q, want %q", got, deflateAnswer)
	}
	c := &client{t: t, conn: conn}
	if got := c.read(); got != frame("ann", long) {
		t.Errorf("history = %q", got)
	}
	for i := range 3 { // several, so that a context kept by either side would show
		text := strings.Repeat("again and again ", 20+i)
		c.send(text)
		if got := c.read(); got != frame("sei", text) {
			t.Errorf("read %q, want %q", got, frame("sei", text))
		}
		if got := first.read(); got != frame("sei", text) {
			t.Errorf("plain member read %q", got)
		}
	}
}

// A history replayed to a joiner that negotiated the extension is
// compressed frame by frame, and inflates to the plain replay.
func TestDeflateHistoryReplay(t *testing.T) {
	tr := newTestRoom(t, WithHistory(History{Len: 100}))
	ann := tr.join("ann")
	var want []string
	for i := range 20 {
		text := strings.Repeat("line ", 30+i)
		ann.send(text)
		ann.read()
		want = append(want, frame("ann", text))
	}
	c, _ := tr.dialRawClientWith("nickname=sei", offerDeflate)
	tr.waitJoin()
	var got []string
	for range want {
		b0, p, err := c.readFrameBits()
		if err != nil {
			t.Fatal(err)
		}
		if b0 != 0xc1 {
			t.Fatalf("replayed frame %#x, want compressed", b0)
		}
		got = append(got, inflateMessage(t, p))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("replay (-want +got):\n%s", diff)
	}
}

// bomb returns a permessage-deflate message that inflates to n MiB of
// spaces: one compressed MiB, repeated, since each copy refers only to
// bytes it produced itself.
func bomb(t testing.TB, n int) []byte {
	one := deflateMessage(t, bytes.Repeat([]byte(" "), 1<<20))
	one = append(one, deflateTail...) // a sync flush between the copies
	b := bytes.Repeat(one, n)
	return b[:len(b)-len(deflateTail)]
}

// A compressed message that inflates far past the size limit (a
// compression bomb: about 1 MiB that inflates to 1 GiB) closes the sender
// with 1009 "message too big", having inflated no more than the room's
// drain limit and allocated little beyond the size limit, and harms no
// one else.
func TestDeflateBomb(t *testing.T) {
	tr := newTestRoom(t)
	ann := tr.join("ann")
	payload := bomb(t, 1024)
	c, _ := tr.dialRawClientWith("nickname=sei", offerDeflate)
	tr.waitJoin()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := c.writeFrame(true, 0x40|0x1, payload); err != nil {
		t.Fatal(err)
	}
	seen := c.awaitClose(nil)
	runtime.ReadMemStats(&after)
	if seen.code != websocket.StatusMessageTooBig || seen.reason != reasonTooBig {
		t.Errorf("%v, want 1009 %q", seen, reasonTooBig)
	}
	tr.expectLeave("sei", ErrMessageTooBig)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("the bomb of %d bytes made the process allocate %d bytes", len(payload), alloc)
	}
	ann.send("still here")
	if got := ann.read(); got != frame("ann", "still here") {
		t.Errorf("read %q", got)
	}
}

// A room none of whose members negotiated the extension compresses
// nothing.
func TestDeflateWithoutMembersCompressesNothing(t *testing.T) {
	tr := newTestRoom(t)
	a := tr.join("ann")
	tr.room.deflater.writers.New = func() any {
		t.Error("a room with no member that negotiated permessage-deflate compressed a frame")
		return nil
	}
	text := strings.Repeat("z", 1000)
	a.send(text)
	if got := a.read(); got != frame("ann", text) {
		t.Errorf("read %q", got)
	}
}

// Whatever the payload, a compressed frame is a final text frame with RSV1
// set whose payload inflates to the plain frame's, or there is none and
// the plain frame goes out.
func FuzzDeflateFrame(f *testing.F) {
	f.Add([]byte(`{"nickname":"sei","message":"hello"}`))
	f.Add(bytes.Repeat([]byte("ab"), 40000))
	f.Add([]byte{0, 0, 0xff, 0xff})
	d := &deflater{min: 1}
	f.Fuzz(func(t *testing.T, payload []byte) {
		buf := append(make([]byte, socket.MaxFrameHeader), payload...)
		plain := socket.TextFrame(buf)
		c := d.frame(plain)
		if c == nil {
			return
		}
		if c[0] != 0xc1 {
			t.Fatalf("first byte %#x, want 0xc1", c[0])
		}
		p := socket.Payload(c)
		if len(p) >= len(payload) {
			t.Fatalf("compressed %d bytes to %d", len(payload), len(p))
		}
		if got := inflateMessage(t, p); got != string(payload) {
			t.Fatalf("inflated %d bytes, want %d", len(got), len(payload))
		}
	})
}
