package chatroom

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// chatText returns about n bytes of chat-like English, the same for the
// same n: compression is measured on text like a room's, not on repeated
// letters.
func chatText(n int) string {
	words := strings.Fields("the a to and of you is it in that for on was with meeting tomorrow " +
		"lunch sounds good thanks see later deploy fixed bug review please when are we " +
		"shipping release notes coffee weekend plans I think so maybe not sure yes no ok")
	var sb strings.Builder
	x := uint32(n) | 1
	for sb.Len() < n {
		x = x*1664525 + 1013904223
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[int(x>>16)%len(words)])
	}
	return sb.String()[:n]
}

// countingConn counts the bytes read from it.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// deflateModes are the two sides of every comparison: members that did
// not negotiate permessage-deflate, and members that did.
var deflateModes = []struct {
	name  string
	offer string // the header lines of a raw client's handshake
}{
	{"plain", ""},
	{"deflate", offerDeflate},
}

// BenchmarkDeflateBroadcast broadcasts chat-sized frames (about 100 B and
// 1 KiB with the header) to 10 and 100 members through real loopback WebSockets,
// plain and compressed. wire-B/frame is what one member is sent per
// frame; cpu-ns/op the process's CPU per broadcast. The members skim:
// they skip each frame's payload and inflate nothing, so that the CPU is
// the server's (and the loopback's); a browser inflates on its own
// machine. Compare them interleaved (BENCHMARKS.md):
//
//	go test -c -o /tmp/chatroom.test
//	for i in 1 2 3; do for m in plain deflate; do
//		/tmp/chatroom.test -test.run '^$' -test.bench "DeflateBroadcast/.*/.*/$m\$" -test.benchtime 2000x
//	done; done
func BenchmarkDeflateBroadcast(b *testing.B) {
	for _, members := range []int{10, 100} {
		for _, size := range []int{100, 1024} {
			// The frame's header and {"nickname":"sei","message":""}.
			msg := Message{Nickname: "sei", Text: chatText(size - 33)}
			for _, m := range deflateModes {
				b.Run(fmt.Sprintf("members=%d/frame=%d/%s", members, size, m.name), func(b *testing.B) {
					var wire atomic.Int64
					benchmarkBroadcastOf(b, broadcastCase{members: members, msg: msg, wire: &wire, skim: true, offer: m.offer})
				})
			}
		}
	}
}

// BenchmarkDeflateReplay measures a joiner's history replay of 100
// messages of about 300 B, plain and compressed: one op is one client
// that connects, skims the 100 frames (inflating nothing) and leaves.
// wire-B/op counts what the client read, the handshake's answer included.
func BenchmarkDeflateReplay(b *testing.B) {
	for _, m := range deflateModes {
		b.Run(m.name, func(b *testing.B) {
			room := New(WithKeepalive(Off, 0), WithJoinLimit(Off, 0), WithHistory(History{Len: 100}))
			srv := httptest.NewServer(room)
			defer srv.Close()
			defer room.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			for i := range 100 {
				if _, err := room.Broadcast(ctx, Message{Nickname: "sei", Text: chatText(250 + i)}); err != nil {
					b.Fatal(err)
				}
			}
			var wire atomic.Int64
			addr := srv.Listener.Addr().String()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				c := dialSkimmer(b, addr, m.offer, &wire)
				for range 100 {
					if err := c.skipFrame(); err != nil {
						b.Fatal(err)
					}
				}
				_ = c.Close()
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(wire.Load())/float64(b.N), "wire-B/op")
		})
	}
}

// BenchmarkDeflateFrame measures compressing one frame, which a room does
// once per broadcast for all the members that negotiated
// permessage-deflate, and reports the compressed size; with no threshold,
// so that the smallest size shows what the threshold saves.
func BenchmarkDeflateFrame(b *testing.B) {
	rm := New()
	d := &deflater{min: 1}
	for _, size := range []int{100, 300, 1024, 4096} {
		plain := rm.encode(Message{Nickname: "sei", Text: chatText(size - 33)})
		b.Run(fmt.Sprintf("frame=%d", len(plain)), func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				out = d.frame(plain)
			}
			if out == nil {
				out = plain // not worth it: sent plain
			}
			b.ReportMetric(float64(len(out)), "wire-B/frame")
		})
	}
}

// skimmer is a raw WebSocket client that reads frames' headers and skips
// their payloads, counting the bytes.
type skimmer struct {
	net.Conn
	br *bufio.Reader
}

// dialSkimmer connects to the room at addr, sending header in the
// handshake, and counts what it reads in n.
func dialSkimmer(b *testing.B, addr, header string, n *atomic.Int64) *skimmer {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	req := "GET /?nickname=skim HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + header + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		b.Fatal(err)
	}
	s := &skimmer{Conn: c, br: bufio.NewReader(&countingConn{Conn: c, n: n})}
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			return s
		}
	}
}

// skipFrame reads one frame's header and skips its payload.
func (s *skimmer) skipFrame() error {
	var h [10]byte
	if _, err := io.ReadFull(s.br, h[:2]); err != nil {
		return err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(s.br, h[:2]); err != nil {
			return err
		}
		n = int(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(s.br, h[:8]); err != nil {
			return err
		}
		n = int(binary.BigEndian.Uint64(h[:8]))
	}
	_, err := s.br.Discard(n)
	return err
}

// BenchmarkDeflateIdleMember measures what an idle member costs the
// server's heap once it has sent one message, compressed if it negotiated
// permessage-deflate, as browsers compress what they send: one op is one
// such member of a room of 200. The clients live in the same process; they
// cost the same in both cases, so the difference between the two is the
// server's.
func BenchmarkDeflateIdleMember(b *testing.B) {
	const members = 200
	for _, m := range deflateModes {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				room := New(WithKeepalive(Off, 0), WithJoinLimit(Off, 0))
				joined := make(chan struct{}, members)
				room.cfg.joined = func(*Member) { joined <- struct{}{} }
				srv := httptest.NewServer(room)
				addr := srv.Listener.Addr().String()
				msg := []byte(`{"message":"` + chatText(200) + `"}`)
				op := byte(0x1)
				if m.offer != "" {
					msg, op = deflateMessage(b, msg), 0x41 // RSV1, text
				}
				sent := append(clientHeader(true, op, len(msg)), msg...)
				before := heapAfterGC()
				var wire atomic.Int64
				clients := make([]*skimmer, members)
				for i := range clients {
					clients[i] = dialSkimmer(b, addr, m.offer, &wire)
					<-joined
				}
				for _, c := range clients {
					if _, err := c.Write(sent); err != nil {
						b.Fatal(err)
					}
				}
				for _, c := range clients { // every echo of every message
					for range members {
						if err := c.skipFrame(); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(heapAfterGC()-before)/members, "heap-B/member")
				for _, c := range clients {
					_ = c.Close()
				}
				room.Close()
				srv.Close()
			}
		})
	}
}
