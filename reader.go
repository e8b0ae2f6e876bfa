package chatroom

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// readLoop reads, checks and publishes the member's messages until the
// member must leave, and returns why, or errHandOver to go on on a fresh
// goroutine (awaitMessage). It waits between messages with little on its
// stack: the loop's frame and those under it are small, and the work of a
// message is readOne's, whose frame is gone by the next wait.
func (rm *Room) readLoop(m *Member) error {
	var w readerWait
	for {
		if m.closing.Load() {
			return errLeaving
		}
		if m.awaitMessage(&w) {
			return errHandOver
		}
		if err := rm.readOne(m); err != nil {
			return err
		}
		w.read = true
	}
}

// readOne reads, checks and publishes one message, and returns the
// member's leave reason if it must leave.
//
//go:noinline
func (rm *Room) readOne(m *Member) error {
	if !m.pace() {
		return errLeaving
	}
	in, err := m.read()
	if m.closing.Load() {
		// The member is leaving, for a reason recorded elsewhere: what it
		// sent after that is not the room's.
		return errLeaving
	}
	if (err == nil || isBadInput(err)) && !m.allow() {
		err = cause(ErrRateLimited, websocket.StatusPolicyViolation, reasonRateLimited, nil)
	}
	if err != nil {
		if !rm.cfg.errorFrames || !(isBadInput(err) || errors.Is(err, ErrRateLimited)) {
			return err
		}
		answer := errorFrame(closeFrame(err))
		rm.refuse(m, nil, in.ref, &answer)
		return nil
	}
	if in.history != nil {
		rm.serveHistory(m, *in.history)
		return nil
	}
	if rm.metrics != nil {
		rm.metrics.Received()
	}
	return rm.take(m, in)
}

// errHandOver ends a reader goroutine whose loop goes on on a fresh one.
var errHandOver = errors.New("chatroom: reader handed over")

// quietPeriod is how long a member must have sent nothing for its next
// message to count as one of few: after it, the reader hands its loop
// over to a fresh goroutine before it waits again.
const quietPeriod = time.Second

// readerWait is what one reader goroutine knows of how its member sends.
type readerWait struct {
	read  bool // this goroutine has read a message: its stack has grown
	quiet bool // its last wait lasted quietPeriod or more
}

// awaitMessage waits, on a shallow stack, until the member's next message
// can be read (socket.Socket.Wait), taking the pongs and answering the
// pings that come first (socket.Socket.TakeControl). It
// reports true instead of waiting when the goroutine should hand over:
// a read and its publication grow the stack, the stack stays grown with
// the goroutine (the collector shrinks it only when it runs, by halves),
// and a fresh goroutine starts small. It does so only when the message just
// read came after a quiet period, so that a member that is sending keeps
// its goroutine, and the cost of a new one (a few microseconds, and the
// stack grown again by the next read) falls on few messages. A member that
// goes quiet after a busy spell hands over after the pong of its next
// ping.
func (m *Member) awaitMessage(w *readerWait) bool {
	for {
		if w.read && w.quiet && !m.sock.Ready() {
			m.pacer = dropFull(m.pacer)
			m.limiter = dropFull(m.limiter)
			return true
		}
		start := time.Now()
		m.sock.Wait()
		w.quiet = time.Since(start) >= quietPeriod || m.room.cfg.handedOver != nil
		switch c, p := m.sock.TakeControl(); c {
		case socket.Pong:
			m.gotPong(p)
		case socket.NoControl:
			return false
		}
	}
}

// dropFull returns nil for a limiter whose bucket is full, which is as a new
// one would be: a member gone quiet holds none until it sends again.
func dropFull(l *rate.Limiter) *rate.Limiter {
	if l != nil && l.Tokens() >= float64(l.Burst()) {
		return nil
	}
	return l
}

// allow reports whether the rate limit (WithRateLimit) lets the member's
// message through. The limiter is made on the member's first message.
func (m *Member) allow() bool {
	if m.limiter == nil {
		if m.room.cfg.rateLimit <= 0 {
			return true
		}
		m.limiter = rate.NewLimiter(m.room.cfg.rateLimit, m.room.cfg.rateBurst)
	}
	return m.limiter.Allow()
}

// take runs the message hook on m's message in, and publishes it unless
// the hook refuses it. It returns the member's leave reason if the member
// must leave. A message whose ref the room had taken already is only
// acknowledged (claimRef); a ref claimed for a message the room does not
// take is released, so that a resend is a new attempt.
func (rm *Room) take(m *Member, in inbound) error {
	var claim *refEntry
	published := false
	if in.ref != "" {
		var done bool
		if claim, done = rm.claimRef(m, in.ref); done {
			return nil
		}
		defer func() {
			if !published {
				rm.refuse(m, claim, in.ref, nil) // a no-op once refused
			}
		}()
	}
	msg := Message{Type: TypeMessage, Nickname: m.nickname, Text: in.text}
	if in.to != "" {
		msg.Type, msg.To = TypeDirect, in.to
	}
	if rm.cfg.onMessage != nil {
		var refusal error
		err := rm.callHook(m, func() error {
			msg, refusal = rm.cfg.onMessage(m.ctx, m, msg)
			return nil
		})
		if err != nil {
			return err
		}
		if refusal != nil {
			if reason, ok := hookClose(refusal); ok {
				return reason
			}
			rm.cfg.log.Debug("chatroom: message refused", "room", rm.cfg.name, "member", m.String(), "err", refusal)
			var answer *Message
			if rm.cfg.errorFrames && !errors.Is(refusal, ErrHandled) {
				e := errorFrame(websocket.StatusPolicyViolation, reasonMessageRefused)
				answer = &e
			}
			rm.refuse(m, claim, in.ref, answer)
			return nil
		}
	}
	p := post{msg: msg, sender: m, ref: in.ref, claim: claim}
	var err error
	if msg.Type == TypeDirect || msg.To != "" {
		err = rm.sendDirect(p)
	} else {
		_, err = rm.publish(m.ctx, p)
	}
	switch {
	case err == nil:
		published = true
		return nil
	case errors.Is(err, ErrRoomClosed):
		return roomClosed()
	case errors.Is(err, ErrNotStored):
		// Delivered all the same: the member stays.
		published = true
		rm.cfg.log.Warn("chatroom: message not stored", "room", rm.cfg.name, "member", m.String(), "err", err)
		return nil
	default:
		return errLeaving // m.ctx ended: the member is leaving
	}
}

// errLeaving ends the read loop of a member whose leave reason is already
// recorded; it is never a leave reason itself.
var errLeaving = errors.New("chatroom: member leaving")

// Reasons sent with status 1008; part of the documented protocol.
const (
	reasonRateLimited    = "rate limit exceeded"
	reasonMessageRefused = "message refused"
)

// isBadInput reports whether err is a client frame the room did not accept,
// after which the connection is still sound.
func isBadInput(err error) bool {
	return errors.Is(err, ErrInvalidMessage) || errors.Is(err, ErrUnsupportedData)
}

// read reads one client message and decodes it. The buffer is borrowed only
// for the message, so an idle member holds none.
func (m *Member) read() (inbound, error) {
	// A context without Done: the connection is ended by closing it, and a
	// cancellable context would cost a timer registration per read.
	typ, r, err := m.conn.Reader(context.Background())
	if err != nil {
		return inbound{}, readFailure(err)
	}
	limit := m.room.cfg.maxMessageSize
	if typ != websocket.MessageText {
		// Read it to the end, so that the next message can be read when
		// the room answers with an error frame instead of closing.
		n, err := io.Copy(io.Discard, io.LimitReader(r, limit+1))
		if err != nil {
			return inbound{}, readFailure(err)
		}
		if n > limit {
			return inbound{}, m.tooBig(r)
		}
		return inbound{}, cause(ErrUnsupportedData, websocket.StatusUnsupportedData, "binary messages are not supported", nil)
	}
	buf := m.room.getReadBuffer()
	defer m.room.putReadBuffer(buf)
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return inbound{}, readFailure(err)
	}
	if n > limit {
		return inbound{}, m.tooBig(r)
	}
	return decodeClient(buf.Bytes(), clientFields{direct: m.room.cfg.direct, ref: m.room.cfg.envelope, scrollback: m.room.scrollback()})
}

// tooBig reads and discards the rest of r, a message over the size limit,
// and returns the leave reason. The closing handshake starts here, within
// the close timeout and closeDrainLimit. The rest is read before the close
// frame goes out, for at most half the close timeout, because a browser
// that receives a close frame while it is still sending a message gives up
// the rest of it and then reports the close as not clean (wasClean false),
// whatever the server does next. A client that takes longer (a slow link)
// is sent the close frame then, and discardReads reads the rest.
//
// What is discarded counts against socket.DrainLimit after inflation too:
// a compressed message (permessage-deflate) can inflate a thousandfold,
// and past the limit the room stops inflating and only drains the bytes
// the client sends (socket.Socket.Finish).
func (m *Member) tooBig(r io.Reader) error {
	m.sock.StartDraining()
	rest := &io.LimitedReader{R: r, N: socket.DrainLimit}
	m.unread = rest
	until := time.Now().Add(m.room.cfg.closeTimeout / 2)
	chunk := make([]byte, 8<<10) // on the heap: a deep stack would stay with the goroutine
	for time.Now().Before(until) {
		if _, err := rest.Read(chunk); err != nil {
			if rest.N > 0 {
				rest.R = nil // read to its end, or the connection failed
			}
			return tooBigReason()
		}
	}
	return tooBigReason()
}

func tooBigReason() error {
	return cause(ErrMessageTooBig, websocket.StatusMessageTooBig, reasonTooBig, nil)
}

// reasonTooBig is the reason sent with status 1009; part of the documented
// protocol.
const reasonTooBig = "message too big"

// discardReads reads and discards what the client sends after the room has
// decided that it leaves, until the client's close frame or the end of the
// connection, as RFC 6455 (section 7.1.1) asks: closing a connection with
// unread data makes the kernel send a reset, which destroys the close frame
// before the client reads it. The close deadline and closeDrainLimit bound
// it.
//
// The messages are read as the client sent them, inflated if compressed,
// within socket.DrainLimit bytes after inflation in all: past it, the rest
// of the message is left to socket.Socket.Finish, which drains the bytes
// on the wire without inflating them.
func (m *Member) discardReads() {
	rest := m.unread
	m.unread = nil
	if rest == nil {
		rest = &io.LimitedReader{N: socket.DrainLimit}
	}
	for {
		if rest.R != nil {
			if _, err := io.Copy(io.Discard, rest); err != nil || rest.N <= 0 {
				return
			}
		}
		_, r, err := m.conn.Reader(context.Background())
		if err != nil {
			return
		}
		rest.R = r
	}
}

// readFailure turns a failed read into a leave reason.
func readFailure(err error) error {
	return cause(ErrClientClosed, 0, "", err)
}

func (rm *Room) getReadBuffer() *bytes.Buffer {
	if b, ok := rm.readBuffers.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// putReadBuffer returns buf to the pool unless a huge message grew it.
func (rm *Room) putReadBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		rm.readBuffers.Put(buf)
	}
}
