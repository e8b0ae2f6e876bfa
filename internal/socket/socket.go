// Package socket is the hijacked connection of a room's member as
// coder/websocket sees it: it gathers a writer's frames into one write, and
// owns the closing handshake. See Socket.
package socket

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Socket is the hijacked connection as coder/websocket sees it. It exists for
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
// The closing handshake is the socket's too (RFC 6455, sections 1.4 and
// 7.1.1), since a close frame, whoever writes it, passes through Write. Once
// one close frame is written, nothing more is: a second close frame (the
// Conn's echo of the client's) and any other frame are dropped. Reads go on
// meanwhile, within the close deadline and DrainLimit bytes, so that
// the member's reader can discard what the client still sends until its
// close frame arrives. When the Conn then closes the connection, the socket
// only half-closes it: finish reads what is left until the client's end of
// the connection closes too, and only then closes the socket. Closing a
// socket with unread data makes the kernel answer with a reset, which
// discards the close frame before the client reads it.
//
// Idle members must be cheap. The HTTP server's 4 KiB reader and writer are
// replaced by small ones (chat messages and control frames are small), and
// the batch buffer is borrowed from the room only while there is something
// to write.
type Socket struct {
	net.Conn
	// leftover holds what the HTTP server had read past the handshake; it is
	// read before the network. Only the Conn's reader touches it.
	leftover []byte
	// br is the small reader the Conn reads through, which Ready and
	// TakeControl look into between messages; only the member's reader uses
	// it, as the Conn does.
	br *bufio.Reader
	// wait parks the member's reader until the connection is readable, on
	// a shallow stack (wait_linux.go), if canWait.
	wait    waiter
	canWait bool

	mu      sync.Mutex // serialises writes to Conn; guards the fields below
	holding bool
	// closeSent: a close frame has been written, after which no frame may
	// follow. The Conn writes only control frames, each in one
	// Write call (its buffer holds the longest), so the first byte tells.
	closeSent bool
	batch     *[]byte // borrowed from buffers while the member's writer runs
	buffers   *sync.Pool
	// halfClosed: the write side is shut, finish closes the rest.
	halfClosed bool

	closeTimeout time.Duration
	closeStart   sync.Once // sets the close deadline, without waiting for mu
	// closing: the closing handshake has begun (a close frame was written,
	// or the rest of a message over the limit is being discarded first),
	// for Read, which must not wait for mu: a write may hold it for as
	// long as the write timeout.
	closing atomic.Bool
	drained atomic.Int64 // bytes read since closing
	dropped atomic.Bool  // drop: close at once, with no half-close or drain
}

// Sizes of the buffers coder/websocket keeps for a connection's life. Frames
// bigger than these bypass them.
const (
	connReadBuffer  = 256
	connWriteBuffer = 128 // a control frame: 2-byte header, 125-byte payload
)

// MaxBatch is how many bytes a writer gathers before it flushes; maxPooledBatch
// bounds the buffers the room keeps for reuse.
const (
	MaxBatch       = 32 << 10
	maxPooledBatch = 128 << 10
)

// DrainLimit bounds what a closing connection may make the room read
// and discard: a client cannot hold it open by streaming. It is larger than
// any message a client is likely to send past the size limit, so that even
// such a client reads the close frame. The room counts it twice: in bytes
// on the wire here, and after inflation for a client that compresses.
const DrainLimit = 128 << 20

// errDrainLimit ends the reads of a closing connection that sent more than
// DrainLimit bytes.
var errDrainLimit = errors.New("chatroom: closing connection sent too much")

// ReasonInvalidUTF8 is the reason of the 1007 close frame that answers a
// client's close frame whose reason is not valid UTF-8; part of the
// documented protocol.
const ReasonInvalidUTF8 = "invalid UTF-8"

// Options are the room's settings a socket needs.
type Options struct {
	CloseTimeout time.Duration // bounds the closing handshake
	SendBuffer   int           // SO_SNDBUF; 0 leaves the kernel's
}

// New wraps a connection just hijacked with its buffered reader and
// writer, and returns the small buffered reader and writer to use instead.
// The deadlines the HTTP server set on the connection (http.Server's
// ReadTimeout and WriteTimeout) are cleared: they were meant for one
// request, and the room sets its own.
func New(c net.Conn, brw *bufio.ReadWriter, buffers *sync.Pool, opts Options) (*Socket, *bufio.ReadWriter, error) {
	s := &Socket{Conn: c, buffers: buffers, closeTimeout: opts.CloseTimeout}
	_ = c.SetDeadline(time.Time{})
	if opts.SendBuffer > 0 {
		setSendBuffer(c, opts.SendBuffer)
	}
	if brw != nil {
		if err := brw.Writer.Flush(); err != nil {
			return nil, nil, err
		}
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			s.leftover = append([]byte(nil), b...)
		}
	}
	s.br = bufio.NewReaderSize(s, connReadBuffer)
	s.canWait = s.wait.init(c)
	return s, bufio.NewReadWriter(s.br, bufio.NewWriterSize(s, connWriteBuffer)), nil
}

// An idle member must cost little, and what costs most is its reader's
// goroutine stack: coder/websocket's Reader waits for the next frame deep
// in its calls, and the stack a read has grown stays with the goroutine
// while it waits. So the member's reader waits for the next message
// itself, between messages, on a shallow stack (Ready, Wait), and only
// then calls Reader. The pongs that answer the room's pings arrive
// between messages too, and TakeControl consumes them there, and answers a
// client's pings, so that neither leaves an idle member's reader waiting
// inside Reader either.

// Ready reports whether the next message's first bytes can be read
// without waiting: they are buffered, or the kernel has them (or the
// connection has failed, which a read will tell). Where the socket cannot
// tell without reading, it reports true.
func (s *Socket) Ready() bool {
	if len(s.leftover) > 0 || s.br.Buffered() > 0 || !s.canWait {
		return true
	}
	return s.wait.ready()
}

// Wait blocks until Ready would report true, on a shallow stack. It
// returns at once where the socket cannot wait that way, and when the
// connection fails or the close deadline passes: the read that follows
// reports it.
func (s *Socket) Wait() {
	if len(s.leftover) > 0 || s.br.Buffered() > 0 || !s.canWait {
		return
	}
	s.wait.park()
}

// Accepted is called once websocket.Accept has returned, before any read.
// Accept wraps what the reader it was given reads in an io.MultiReader
// with what that reader had buffered, nothing here (golang/go#32314):
// reading the socket directly again saves every member the wrapper.
func (s *Socket) Accepted() {
	if s.br.Buffered() == 0 {
		s.br.Reset(s)
	}
}

// A Control is what TakeControl found at the start of the next frame.
type Control int

// What TakeControl found.
const (
	NoControl Control = iota // not a whole ping or pong: the Conn reads it
	Ping                     // a ping, answered with a pong
	Pong                     // a pong, whose payload TakeControl returns
)

// TakeControl consumes the ping or pong frame the connection's next bytes
// are, if they are one, whole; otherwise it consumes nothing, and the Conn
// reads what follows. It answers a ping with a pong of the same payload,
// as the Conn would (RFC 6455, section 5.5.2), and returns a pong's
// payload, valid until the next read. It is called between messages only,
// where a frame starts, so that a ping is answered after everything the
// client sent before it has been handled. Waiting for the rest of a frame
// begun, if it must, it waits on a shallow stack too.
func (s *Socket) TakeControl() (Control, []byte) {
	h, err := s.br.Peek(2)
	// FIN and ping or pong; masked, as a client's frames are, with a
	// control frame's payload (RFC 6455, sections 5.2 and 5.5).
	if err != nil || (h[0] != 0x89 && h[0] != 0x8a) || h[1]&0x80 == 0 || h[1]&0x7f > 125 {
		return NoControl, nil
	}
	n := 6 + int(h[1]&0x7f)
	f, err := s.br.Peek(n)
	if err != nil {
		return NoControl, nil
	}
	p := f[6:n]
	for i := range p {
		p[i] ^= f[2+i%4] // unmasked in place: the bytes are consumed
	}
	_, _ = s.br.Discard(n)
	if f[0] == 0x8a {
		return Pong, p
	}
	// A failed write is the writer's to report, and the next read's.
	_ = s.writeControl(0x8a, p)
	return Ping, nil
}

// WritePing writes a ping frame with payload, at most 125 bytes. While the
// member's writer holds the socket, the ping joins the batch between two
// whole frames; otherwise every write is a whole frame, and so is the ping.
func (s *Socket) WritePing(payload []byte) error { return s.writeControl(0x89, payload) } // FIN, ping

// writeControl writes the control frame whose first byte is b0, unmasked,
// in one Write.
func (s *Socket) writeControl(b0 byte, payload []byte) error {
	var buf [2 + 125]byte
	buf[0], buf[1] = b0, byte(len(payload))
	_, err := s.Write(append(buf[:2], payload...))
	return err
}

// setSendBuffer bounds the kernel's send buffer of c's TCP connection, also
// under TLS. Without it the kernel grows the buffer of a connection that
// does not read up to net.ipv4.tcp_wmem's maximum (4 MiB by default).
func setSendBuffer(c net.Conn, n int) {
	for {
		switch t := c.(type) {
		case interface{ SetWriteBuffer(int) error }:
			_ = t.SetWriteBuffer(n)
			return
		case interface{ NetConn() net.Conn }:
			c = t.NetConn()
		default:
			return
		}
	}
}

// Read reads what the HTTP server buffered first, then the network. Once
// the socket is closing, it counts what it reads and fails past
// DrainLimit.
func (s *Socket) Read(p []byte) (int, error) {
	if len(s.leftover) > 0 {
		n := copy(p, s.leftover)
		s.leftover = s.leftover[n:]
		if len(s.leftover) == 0 {
			s.leftover = nil
		}
		return n, nil
	}
	n, err := s.Conn.Read(p)
	if s.closing.Load() && s.drained.Add(int64(n)) > DrainLimit {
		return n, errDrainLimit
	}
	return n, err
}

// Write adds p to the batch while the writer holds the socket, and writes it
// to the network otherwise. The Conn writes each control frame in one call;
// a close frame starts the closing handshake, and after it nothing is
// written.
func (s *Socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeSent {
		return len(p), nil // RFC 6455, section 5.5.1: nothing after a close frame
	}
	n := len(p)
	if len(p) > 0 && p[0] == 0x88 { // FIN, close
		p = validCloseFrame(p)
		s.StartClosing()
		s.closeSent = true
		s.closing.Store(true)
	}
	if s.holding {
		*s.batch = append(*s.batch, p...)
		return n, nil
	}
	if _, err := s.Conn.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// validCloseFrame returns the close frame f, a whole unmasked frame of at
// most 125 bytes of payload, or a close frame with status 1007 instead if
// f's reason is not valid UTF-8. coder/websocket echoes a client's close
// frame as it came, and a client must never be sent invalid UTF-8 (RFC
// 6455, sections 5.5.1 and 8.1).
func validCloseFrame(f []byte) []byte {
	if len(f) < 4 || utf8.Valid(f[4:]) {
		return f
	}
	return closeFrameBytes(websocket.StatusInvalidFramePayloadData, ReasonInvalidUTF8)
}

// closeFrameBytes encodes a close frame; reason is at most 123 bytes.
func closeFrameBytes(code websocket.StatusCode, reason string) []byte {
	f := make([]byte, 4, 4+len(reason))
	f[0], f[1] = 0x88, byte(2+len(reason))
	binary.BigEndian.PutUint16(f[2:], uint16(code))
	return append(f, reason...)
}

// StartClosing starts the closing handshake: from now on every read and
// write, the ones under way included, must end by the close deadline. The
// first deadline stays. It does not take mu, which a blocked write holds.
func (s *Socket) StartClosing() {
	s.closeStart.Do(func() { _ = s.Conn.SetDeadline(time.Now().Add(s.closeTimeout)) })
}

// StartDraining starts the closing handshake before the close frame: what
// is read from now on counts against DrainLimit, and the close
// deadline applies.
func (s *Socket) StartDraining() {
	s.StartClosing()
	s.closing.Store(true)
}

// WriteClose writes the close frame that ends the connection, unless one has
// been written already. The caller has stopped the member's writer.
func (s *Socket) WriteClose(code websocket.StatusCode, reason string) error {
	_, err := s.Write(closeFrameBytes(code, reason))
	return err
}

// hold starts gathering writes into a batch.
func (s *Socket) Hold() {
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
func (s *Socket) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil {
		return 0
	}
	return len(*s.batch)
}

// flush writes the batch in one call and stops holding. It blocks until the
// network takes the batch, the write deadline passes or the connection closes.
func (s *Socket) Flush() error {
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
func (s *Socket) Discard() {
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

// Close closes the connection; coder/websocket calls it once the handshake
// is over. A batch still held is written first, briefly: it can end with
// the close frame the Conn has just written in answer to the client's, and
// without it the client would see an abnormal closure. After a close frame
// it only shuts the write side, and finish closes the rest once the client
// has closed its side. If a write to the network is under way, Close does
// not wait for it: closing is what cuts a write to a client that does not
// read.
func (s *Socket) Close() error {
	if s.dropped.Load() || !s.mu.TryLock() {
		return s.Conn.Close()
	}
	defer s.mu.Unlock()
	if s.holding && len(*s.batch) > 0 {
		_ = s.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		_, _ = s.Conn.Write(*s.batch)
		*s.batch = (*s.batch)[:0]
	}
	if s.halfClosed {
		return nil
	}
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok && s.closeSent {
		s.halfClosed = true
		return cw.CloseWrite()
	}
	return s.Conn.Close()
}

// drop closes the connection at once, with no handshake: Room.Close, and
// Shutdown once its context has ended.
func (s *Socket) Drop() error {
	s.dropped.Store(true)
	return s.Conn.Close()
}

// finish ends the connection once nothing else uses it. After a
// half-close, it first reads and discards what the client still sends
// until the client closes its side too, by the close deadline and within
// DrainLimit, so that nothing unread is left for the kernel to answer
// with a reset.
func (s *Socket) Finish() {
	s.mu.Lock()
	drain := s.halfClosed && !s.dropped.Load()
	s.mu.Unlock()
	if drain {
		var buf [512]byte
		for {
			if _, err := s.Read(buf[:]); err != nil {
				break
			}
		}
	}
	_ = s.Conn.Close()
}

// ReleaseBatch hands the batch buffer back to the room once the writer has
// nothing left to write.
func (s *Socket) ReleaseBatch() {
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

// MaxFrameHeader is the longest header of a frame the server sends: no mask,
// a 64-bit length.
const MaxFrameHeader = 10

// TextFrame turns buf, MaxFrameHeader bytes of room followed by a payload,
// into a final unmasked text frame and returns it (RFC 6455, section 5.2).
func TextFrame(buf []byte) []byte { return frame(buf, 0x81) } // FIN, text

// DeflatedTextFrame is TextFrame for a payload compressed by
// permessage-deflate: the frame has RSV1 set (RFC 7692, section 6).
func DeflatedTextFrame(buf []byte) []byte { return frame(buf, 0xc1) } // FIN, RSV1, text

// Payload returns the payload of f, a frame TextFrame or DeflatedTextFrame
// made.
func Payload(f []byte) []byte {
	switch f[1] {
	case 126:
		return f[4:]
	case 127:
		return f[MaxFrameHeader:]
	}
	return f[2:]
}

// frame writes the header with first byte b0 in front of buf's payload.
func frame(buf []byte, b0 byte) []byte {
	n := len(buf) - MaxFrameHeader
	var h []byte
	switch {
	case n < 126:
		h = buf[MaxFrameHeader-2 : MaxFrameHeader]
		h[1] = byte(n)
	case n <= 0xffff:
		h = buf[MaxFrameHeader-4 : MaxFrameHeader]
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h = buf[:MaxFrameHeader]
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	h[0] = b0
	return buf[MaxFrameHeader-len(h):]
}

// ErrCloseSent refuses data frames once the Conn has sent a close frame.
var ErrCloseSent = errors.New("chatroom: close frame already sent")

// AppendMessage encodes a frame straight into the held batch, with
// payload appending its payload, and returns the size of the batch: for
// frames that go to one member only, such as a joiner's history, a copy
// saved.
func (s *Socket) AppendMessage(payload func([]byte) []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeSent {
		return 0, ErrCloseSent
	}
	b := *s.batch
	start := len(b)
	b = append(b, make([]byte, MaxFrameHeader)...)
	b = payload(b)
	f := TextFrame(b[start:])
	n := copy(b[start:], f)
	*s.batch = b[:start+n]
	return len(*s.batch), nil
}

// AppendFrame adds a frame the room encoded to the held batch. The room
// writes its data frames itself, through the socket, rather than through the
// Conn: encoded once with their header, they cost each member a copy, not a
// pass through the Conn's locks and buffers. The Conn still writes every
// control frame, which the socket keeps in order with the data.
//
// It returns the size of the batch, for the writer to flush at MaxBatch.
func (s *Socket) AppendFrame(f []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeSent {
		return 0, ErrCloseSent
	}
	*s.batch = append(*s.batch, f...)
	return len(*s.batch), nil
}
