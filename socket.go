package chatroom

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// socket is the hijacked connection as coder/websocket sees it. It exists for
// two reasons.
//
// Write system calls, not encoding, bound how fast a room fans out.
// coder/websocket flushes every message on its own, so a member's writer
// holds the socket while it hands the Conn a batch of frames: the bytes the
// Conn flushes are gathered in a buffer, and reach the network in one write
// when the writer flushes. Control frames the Conn writes meanwhile (pongs,
// pings, the close frame) join the batch in order, since every byte passes
// through the same mutex.
//
// Idle members must be cheap. The HTTP server's 4 KiB reader and writer are
// replaced by small ones (chat messages and control frames are small), and
// the batch buffer is borrowed from the room only while there is something
// to write.
type socket struct {
	net.Conn
	// leftover holds what the HTTP server had read past the handshake; it is
	// read before the network. Only the Conn's reader touches it.
	leftover []byte

	mu      sync.Mutex // serialises writes to Conn; guards the fields below
	holding bool
	// closeSent: the Conn has written a close frame, after which no data
	// frame may follow. The Conn writes only control frames, each in one
	// Write call (its buffer holds the longest), so the first byte tells.
	closeSent bool
	batch     *[]byte // borrowed from buffers while the member's writer runs
	buffers   *sync.Pool
}

// Sizes of the buffers coder/websocket keeps for a connection's life. Frames
// bigger than these bypass them.
const (
	connReadBuffer  = 256
	connWriteBuffer = 128 // a control frame: 2-byte header, 125-byte payload
)

// maxBatch is how many bytes a writer gathers before it flushes; maxPooledBatch
// bounds the buffers the room keeps for reuse.
const (
	maxBatch       = 32 << 10
	maxPooledBatch = 128 << 10
)

// newSocket wraps a connection just hijacked with its buffered reader and
// writer, and returns the small buffered reader and writer to use instead.
func newSocket(c net.Conn, brw *bufio.ReadWriter, buffers *sync.Pool) (*socket, *bufio.ReadWriter, error) {
	s := &socket{Conn: c, buffers: buffers}
	if brw != nil {
		if err := brw.Writer.Flush(); err != nil {
			return nil, nil, err
		}
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			s.leftover = append([]byte(nil), b...)
		}
	}
	return s, bufio.NewReadWriter(bufio.NewReaderSize(s, connReadBuffer), bufio.NewWriterSize(s, connWriteBuffer)), nil
}

// Read reads what the HTTP server buffered first, then the network.
func (s *socket) Read(p []byte) (int, error) {
	if len(s.leftover) > 0 {
		n := copy(p, s.leftover)
		s.leftover = s.leftover[n:]
		if len(s.leftover) == 0 {
			s.leftover = nil
		}
		return n, nil
	}
	return s.Conn.Read(p)
}

// Write adds p to the batch while the writer holds the socket, and writes it
// to the network otherwise.
func (s *socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p) > 0 && p[0] == 0x88 { // FIN, close
		s.closeSent = true
	}
	if s.holding {
		*s.batch = append(*s.batch, p...)
		return len(p), nil
	}
	return s.Conn.Write(p)
}

// hold starts gathering writes into a batch.
func (s *socket) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil {
		if b, ok := s.buffers.Get().(*[]byte); ok {
			s.batch = b
		} else {
			b := make([]byte, 0, 4<<10)
			s.batch = &b
		}
	}
	s.holding = true
}

// buffered returns the size of the batch.
func (s *socket) buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil {
		return 0
	}
	return len(*s.batch)
}

// flush writes the batch in one call and stops holding. It blocks until the
// network takes the batch, the write deadline passes or the connection closes.
func (s *socket) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = false
	if s.batch == nil || len(*s.batch) == 0 {
		return nil
	}
	_, err := s.Conn.Write(*s.batch)
	*s.batch = (*s.batch)[:0]
	return err
}

// discard drops the batch and stops holding: the member is leaving and what
// it was going to be sent no longer matters.
func (s *socket) discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = false
	if s.batch != nil {
		*s.batch = (*s.batch)[:0]
	}
}

// closeFlushTimeout bounds the write of a held batch when the connection
// closes. The write waits only if the kernel's send buffer is full.
const closeFlushTimeout = 50 * time.Millisecond

// Close closes the connection. A batch still held is written first, briefly:
// it can end with the close frame the Conn has just written in answer to the
// client's, and without it the client would see an abnormal closure. If a
// write to the network is under way, Close does not wait for it: closing is
// what cuts a write to a client that does not read.
func (s *socket) Close() error {
	if s.mu.TryLock() {
		if s.holding && len(*s.batch) > 0 {
			_ = s.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			_, _ = s.Conn.Write(*s.batch)
			*s.batch = (*s.batch)[:0]
		}
		s.mu.Unlock()
	}
	return s.Conn.Close()
}

// releaseBatch hands the batch buffer back to the room once the writer has
// nothing left to write.
func (s *socket) releaseBatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holding || s.batch == nil {
		return
	}
	if cap(*s.batch) <= maxPooledBatch {
		*s.batch = (*s.batch)[:0]
		s.buffers.Put(s.batch)
	}
	s.batch = nil
}

// maxFrameHeader is the longest header of a frame the server sends: no mask,
// a 64-bit length.
const maxFrameHeader = 10

// textFrame turns buf, maxFrameHeader bytes of room followed by a payload,
// into a final unmasked text frame and returns it (RFC 6455, section 5.2).
func textFrame(buf []byte) []byte {
	n := len(buf) - maxFrameHeader
	var h []byte
	switch {
	case n < 126:
		h = buf[maxFrameHeader-2 : maxFrameHeader]
		h[1] = byte(n)
	case n <= 0xffff:
		h = buf[maxFrameHeader-4 : maxFrameHeader]
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h = buf[:maxFrameHeader]
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	h[0] = 0x81 // FIN, text
	return buf[maxFrameHeader-len(h):]
}

// errCloseSent refuses data frames once the Conn has sent a close frame.
var errCloseSent = errors.New("chatroom: close frame already sent")

// appendFrame adds a frame the room encoded to the held batch. The room
// writes its data frames itself, through the socket, rather than through the
// Conn: encoded once with their header, they cost each member a copy, not a
// pass through the Conn's locks and buffers. The Conn still writes every
// control frame, which the socket keeps in order with the data.
//
// It returns the size of the batch, for the writer to flush at maxBatch.
func (s *socket) appendFrame(f []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeSent {
		return 0, errCloseSent
	}
	*s.batch = append(*s.batch, f...)
	return len(*s.batch), nil
}
