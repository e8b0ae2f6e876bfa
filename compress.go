package chatroom

import (
	"compress/flate"
	"sync"

	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
)

// permessage-deflate (RFC 7692), negotiated without context takeover in
// either direction: every message is compressed on its own, so that the
// room compresses a broadcast once and queues the same bytes to every
// member that negotiated the extension, as it queues the plain frame to
// the others. coder/websocket negotiates it in the handshake and inflates
// what clients send; the room compresses what it sends, since it writes
// its data frames itself (socket.Socket.AppendFrame).

// deflateTail ends every block compress/flate's Flush writes; RFC 7692
// (section 7.2.1) has the sender remove it and the receiver put it back.
const deflateTail = "\x00\x00\xff\xff"

// deflater compresses a room's frames for the members that negotiated
// permessage-deflate.
type deflater struct {
	// min is the smallest payload worth compressing: below it, deflate's
	// block header and Huffman tables cost about what they save, and the
	// frame goes out plain, which RFC 7692 allows message by message.
	min     int
	writers sync.Pool // *flate.Writer; each about 1 MiB, so shared
}

// acceptMode is the compression the room offers in the handshake.
func (d *deflater) acceptMode() websocket.CompressionMode {
	if d == nil {
		return websocket.CompressionDisabled
	}
	return websocket.CompressionNoContextTakeover
}

// appendWriter appends what it is given to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// frame returns plain, a frame TextFrame made, compressed, or nil if its
// payload is below the threshold or would not shrink.
func (d *deflater) frame(plain []byte) []byte {
	payload := socket.Payload(plain)
	if len(payload) < d.min {
		return nil
	}
	fw, _ := d.writers.Get().(*flate.Writer)
	out := &appendWriter{b: make([]byte, socket.MaxFrameHeader, socket.MaxFrameHeader+len(payload))}
	if fw == nil {
		// BestSpeed: a chat message is too short for the slower levels'
		// longer matches to pay, and the lock may be held (deliverLocked).
		fw, _ = flate.NewWriter(out, flate.BestSpeed) // the level is valid
	} else {
		fw.Reset(out)
	}
	_, _ = fw.Write(payload) // appendWriter does not fail
	_ = fw.Flush()
	fw.Reset(nil) // let go of out
	d.writers.Put(fw)
	b := out.b[:len(out.b)-len(deflateTail)]
	if len(b)-socket.MaxFrameHeader >= len(payload) {
		return nil
	}
	return socket.DeflatedTextFrame(b)
}

// outFrame is one frame on its way to some members: plain, and compressed
// for those that negotiated permessage-deflate, at most once, when the
// first of them is reached. A room whose members negotiated nothing never
// compresses.
type outFrame struct {
	plain, deflated []byte
	d               *deflater
	tried           bool
}

// newOutFrame returns the frame plain on its way to members.
func (rm *Room) newOutFrame(plain []byte) outFrame {
	return outFrame{plain: plain, d: rm.deflater}
}

// forMember returns the bytes of the frame m is sent.
func (f *outFrame) forMember(m *Member) []byte {
	if !m.deflate || f.d == nil {
		return f.plain
	}
	if !f.tried {
		f.tried = true
		f.deflated = f.d.frame(f.plain)
	}
	if f.deflated == nil {
		return f.plain
	}
	return f.deflated
}
