package chatroom

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// ServeHTTP upgrades r to a WebSocket, joins the member to the room and hands
// it to a goroutine of the room's, which serves it until it leaves. ServeHTTP
// returns once the member has joined (OnJoin has returned and the member is
// in Members) or has been refused, so that the HTTP server's per-connection
// state (its goroutine, buffers and the request) is freed while the member
// stays. Shutdown and Close wait for the member's goroutine. Mount the room
// at any path; the original protocol uses /chat:
//
//	mux.Handle("/chat", room)
//
// Before upgrading it answers HTTP 503 once the room is closed; 429 with
// Retry-After to a client IP over the join limit (WithJoinLimit); 400 with a
// plain-text reason for an invalid nickname or since parameter; 401 or 500
// from the authenticator (see WithAuthenticator); and, through
// websocket.Accept, 403 for a cross-origin request that WithOriginPatterns
// does not allow and 426 for a request that is not a WebSocket handshake.
func (rm *Room) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !rm.acquire() {
		http.Error(w, ErrRoomClosed.Error(), http.StatusServiceUnavailable)
		return
	}
	rm.serveAcquired(w, r)
}

// serveAcquired is ServeHTTP for a connection already counted in. It counts
// the connection out once it is finished: before it returns, or when the
// member's goroutine ends.
func (rm *Room) serveAcquired(w http.ResponseWriter, r *http.Request) {
	upgraded, handedOff := false, false
	defer func() {
		if !handedOff {
			rm.finish(upgraded)
		}
	}()
	if rm.refuseJoin(w, r) {
		return
	}
	adm, status, err := rm.admit(r)
	if err != nil {
		msg := err.Error()
		switch status {
		case http.StatusUnauthorized:
			msg = reasonUnauthorized // the authenticator's error is for the host's log
		case http.StatusInternalServerError:
			msg = http.StatusText(status) // a panic's value may hold secrets: the log has it
		}
		rm.cfg.log.Debug("chatroom: request refused", "remote", r.RemoteAddr, "status", status, "err", err)
		http.Error(w, msg, status)
		return
	}

	hw := &hijackRecorder{ResponseWriter: w, batches: &rm.batches, opts: socketOptions{
		closeTimeout: rm.cfg.closeTimeout,
		sendBuffer:   rm.cfg.sendBuffer,
	}}
	aw := http.ResponseWriter(hw)
	if !canHijack(w) {
		aw = w // let Accept answer 501 before it writes anything
	}
	conn, err := websocket.Accept(aw, r, &websocket.AcceptOptions{OriginPatterns: rm.cfg.originPatterns})
	if err != nil {
		// Accept has written the HTTP error.
		rm.cfg.log.Debug("chatroom: upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// From here on r.Context() must not be used: the connection is hijacked.
	upgraded = true
	// The room enforces the size limit itself (Member.read), so that it can
	// go on reading past it, discarding, until the client has seen the
	// close frame: coder/websocket's own limit leaves the rest unread.
	conn.SetReadLimit(-1)
	m := rm.newMember(conn, hw.sock, adm)
	// Joining runs here, on the HTTP server's goroutine, whose stack has
	// already grown. The member's own goroutine only reads, so an idle
	// member's stack stays at its smallest.
	if !rm.admitMember(m) {
		return
	}
	handedOff = true
	go func() {
		defer rm.finish(true)
		rm.serve(m)
	}()
}

// finish counts a connection out of the room.
func (rm *Room) finish(upgraded bool) {
	rm.release()
	if upgraded && rm.cfg.finished != nil {
		rm.cfg.finished()
	}
}

// admission is what the handler decides about a request before upgrading it.
type admission struct {
	identity Identity
	clientIP string
	authErr  error  // the authenticator's refusal, sent as 4001 after the upgrade
	since    uint64 // the last frame ID the client saw, if resume
	resume   bool
}

// sinceParam is the query parameter of a resuming client (WithHistory).
const sinceParam = "since"

// admit decides who r is: the authenticated identity or the nickname the
// client chose, and where its history resumes. A non-nil error comes with
// the HTTP status that refuses the request.
func (rm *Room) admit(r *http.Request) (admission, int, error) {
	adm := admission{clientIP: rm.cfg.clientIP(r)}
	if rm.cfg.authenticate != nil {
		id, panicked, err := rm.cfg.runAuthenticator(r)
		switch {
		case panicked:
			return adm, http.StatusInternalServerError, err
		case errors.Is(err, ErrInvalidNickname):
			return adm, http.StatusBadRequest, err
		case err != nil && rm.cfg.authHTTP:
			return adm, http.StatusUnauthorized, err
		case err != nil:
			adm.authErr = err
		default:
			if err := rm.cfg.validate(id.Nickname); err != nil {
				return adm, http.StatusBadRequest, err
			}
			adm.identity = id
		}
	} else {
		nickname, err := rm.cfg.nickname(r, adm.clientIP)
		if err != nil {
			return adm, http.StatusBadRequest, err
		}
		adm.identity = Identity{Nickname: nickname}
	}
	if s := r.URL.Query().Get(sinceParam); s != "" && rm.cfg.history != nil {
		since, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return adm, http.StatusBadRequest, fmt.Errorf("chatroom: invalid %s: %q", sinceParam, s)
		}
		adm.since, adm.resume = since, true
	}
	// The names may be substrings of the request, which a member would
	// then keep whole for as long as it stays: a query of a megabyte for a
	// nickname of a few bytes.
	adm.identity.ID = strings.Clone(adm.identity.ID)
	adm.identity.Nickname = strings.Clone(adm.identity.Nickname)
	adm.clientIP = strings.Clone(adm.clientIP)
	return adm, 0, nil
}

func (rm *Room) newMember(conn *websocket.Conn, s *socket, adm admission) *Member {
	m := &Member{
		room:     rm,
		nickname: adm.identity.Nickname,
		identity: adm.identity,
		clientIP: adm.clientIP,
		since:    adm.since,
		resume:   adm.resume,
		conn:     conn,
		sock:     s,
		index:    -1,
		// Probe once: a connection that refuses deadlines gets a timer on
		// every flush instead.
		deadlines: s.SetWriteDeadline(time.Time{}) == nil,
	}
	if adm.authErr != nil {
		m.refusal = cause(ErrUnauthorized, StatusUnauthorized, reasonUnauthorized, adm.authErr)
	}
	m.writerDone = sync.NewCond(&m.mu)
	m.startWriter = m.writeLoop
	m.ctx, m.cancel = context.WithCancel(rm.ctx)
	if rm.cfg.rateLimit > 0 {
		m.limiter = rate.NewLimiter(rm.cfg.rateLimit, rm.cfg.rateBurst)
	}
	m.pacer = rm.cfg.newPacer()
	rm.mu.Lock()
	rm.nextID++
	m.id = rm.nextID
	rm.mu.Unlock()
	return m
}

// admitMember joins m to the room and reports whether it joined. A member
// refused is closed and cleaned up before it returns.
func (rm *Room) admitMember(m *Member) bool {
	if err := rm.join(m); err != nil {
		m.stop(err)
		m.reap()
		m.cancel()
		rm.cfg.log.Debug("chatroom: join refused", "member", m, "err", err)
		return false
	}
	rm.cfg.log.Debug("chatroom: joined", "member", m, "ip", m.clientIP)
	if rm.cfg.joined != nil {
		rm.cfg.joined(m)
	}
	m.startKeepalive()
	return true
}

// serve runs a joined member's life on its own goroutine: read until it
// leaves, then clean up and run the leave hook.
func (rm *Room) serve(m *Member) {
	defer m.cancel()
	m.stop(rm.readLoop(m))
	if rm.remove(m) {
		rm.announce(TypeLeave, m.nickname)
	}
	rm.link.detach()
	m.discardReads()
	m.reap()
	reason := m.leaveReason()
	rm.cfg.log.Debug("chatroom: left", "member", m, "reason", reason)
	rm.runLeaveHook(m, reason)
}

const reasonJoinRefused = "join refused"

// join runs the join hook and adds m to the room.
func (rm *Room) join(m *Member) error {
	if m.refusal != nil {
		return m.refusal
	}
	if rm.cfg.onJoin != nil {
		err := rm.callHook(m, func() error { return rm.cfg.onJoin(m.ctx, m) })
		if err != nil {
			if errors.Is(err, ErrHookPanic) {
				return err
			}
			if reason, ok := hookClose(err); ok {
				return reason
			}
			return cause(ErrRefused, websocket.StatusPolicyViolation, reasonJoinRefused, err)
		}
	}
	rm.link.attach()
	rm.link.readHistory(m)
	announce, err := rm.add(m)
	if err != nil {
		rm.link.forget(m)
		rm.link.detach()
		return err
	}
	if announce {
		rm.announce(TypeJoin, m.nickname)
	}
	return nil
}

// announce publishes a join or leave notice of nickname. A notice that
// cannot be published, once the room is closed, has no one left to tell.
func (rm *Room) announce(t MessageType, nickname string) {
	_ = rm.publish(context.Background(), nil, "", Message{Type: t, Nickname: nickname})
}

// hookClose reports whether a hook's error asks to close the member with a
// websocket.CloseError of its own, and returns the leave reason if so.
func hookClose(err error) (error, bool) {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return nil, false
	}
	return cause(ErrRefused, ce.Code, truncateReason(ce.Reason), err), true
}

// readLoop reads, checks and publishes the member's messages until the
// member must leave, and returns why.
func (rm *Room) readLoop(m *Member) error {
	for {
		if !m.pace() {
			return errLeaving
		}
		in, err := m.read()
		if m.closing.Load() {
			// The member is leaving, for a reason recorded elsewhere:
			// what it sent after that is not the room's.
			return errLeaving
		}
		if (err == nil || isBadInput(err)) && m.limiter != nil && !m.limiter.Allow() {
			err = cause(ErrRateLimited, websocket.StatusPolicyViolation, reasonRateLimited, nil)
		}
		if err != nil {
			if !rm.cfg.errorFrames || !(isBadInput(err) || errors.Is(err, ErrRateLimited)) {
				return err
			}
			code, reason := closeFrame(err)
			rm.reportError(m, code, reason)
			continue
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
				rm.cfg.log.Debug("chatroom: message refused", "member", m, "err", refusal)
				if rm.cfg.errorFrames && !errors.Is(refusal, ErrHandled) {
					rm.reportError(m, websocket.StatusPolicyViolation, reasonMessageRefused)
				}
				continue
			}
		}
		if msg.Type == TypeDirect || msg.To != "" {
			err = rm.sendDirect(m, msg)
		} else {
			err = rm.publish(m.ctx, m, "", msg)
		}
		if err != nil {
			if errors.Is(err, ErrRoomClosed) {
				return roomClosed()
			}
			return errLeaving // m.ctx ended: the member is leaving
		}
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

// reportError answers m's bad input with an error frame (WithErrorFrames).
func (rm *Room) reportError(m *Member, code websocket.StatusCode, reason string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.sendLocked(errorFrame(code, reason), m)
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
	return decodeClient(buf.Bytes(), m.room.cfg.direct)
}

// tooBig reads and discards the rest of r, a message over the size limit,
// and returns the leave reason. The closing handshake starts here, within
// the close timeout and closeDrainLimit. The rest is read before the close
// frame goes out, for at most half the close timeout, because a browser
// that receives a close frame while it is still sending a message gives up
// the rest of it and then reports the close as not clean (wasClean false),
// whatever the server does next. A client that takes longer (a slow link)
// is sent the close frame then, and discardReads reads the rest.
func (m *Member) tooBig(r io.Reader) error {
	m.sock.startDraining()
	until := time.Now().Add(m.room.cfg.closeTimeout / 2)
	chunk := make([]byte, 8<<10) // on the heap: a deep stack would stay with the goroutine
	for time.Now().Before(until) {
		if _, err := r.Read(chunk); err != nil {
			return tooBigReason()
		}
	}
	m.unread = r
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
func (m *Member) discardReads() {
	if m.unread != nil {
		_, err := io.Copy(io.Discard, m.unread)
		m.unread = nil
		if err != nil {
			return
		}
	}
	for {
		_, r, err := m.conn.Reader(context.Background())
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
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

// callHook runs a hook, turning a panic into an ErrHookPanic reason.
func (rm *Room) callHook(m *Member, hook func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			rm.cfg.log.Error("chatroom: hook panicked", "member", m, "panic", p, "stack", string(debug.Stack()))
			err = cause(ErrHookPanic, websocket.StatusInternalError, "internal error", fmt.Errorf("panic: %v", p))
		}
	}()
	return hook()
}

func (rm *Room) runLeaveHook(m *Member, reason error) {
	if rm.cfg.onLeave == nil {
		return
	}
	_ = rm.callHook(m, func() error {
		rm.cfg.onLeave(rm.ctx, m, reason)
		return nil
	})
}

// hijackRecorder hands the ResponseWriter to websocket.Accept and gives it
// the hijacked connection wrapped in a socket, which the member keeps.
type hijackRecorder struct {
	http.ResponseWriter
	batches *sync.Pool
	opts    socketOptions
	sock    *socket
}

// Hijack hijacks the underlying connection, also through middleware that
// wraps the ResponseWriter and offers Unwrap.
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	s, sbrw, err := newSocket(c, brw, h.batches, h.opts)
	if err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("chatroom: hijacked connection: %w", err)
	}
	h.sock = s
	return s, sbrw, nil
}

// Unwrap gives http.ResponseController access to the wrapped writer.
func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// canHijack reports whether w, or a writer it wraps, is an http.Hijacker,
// following Unwrap as http.ResponseController does.
func canHijack(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}
