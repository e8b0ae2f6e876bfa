package chatroom

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/seed014c2c51/chatroom/internal/socket"

	"github.com/coder/websocket"
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
			rm.release(upgraded)
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
		rm.cfg.log.Debug("chatroom: request refused", "room", rm.cfg.name, "remote", r.RemoteAddr, "status", status, "err", err)
		http.Error(w, msg, status)
		return
	}

	hw := &hijackRecorder{ResponseWriter: w, batches: &rm.batches, opts: socket.Options{
		CloseTimeout: rm.cfg.closeTimeout,
		SendBuffer:   rm.cfg.sendBuffer,
	}}
	aw := http.ResponseWriter(hw)
	if !canHijack(w) {
		aw = w // let Accept answer 501 before it writes anything
	}
	// The member, set before its reader starts, which is where the Conn
	// calls OnPongReceived: with a pong it meets inside a message
	// (keepalive.go).
	var m *Member
	conn, err := websocket.Accept(aw, r, &websocket.AcceptOptions{
		OriginPatterns:  rm.cfg.originPatterns,
		CompressionMode: rm.deflater.acceptMode(),
		OnPongReceived:  func(_ context.Context, p []byte) { m.gotPong(p) },
	})
	if err != nil {
		// Accept has written the HTTP error.
		rm.cfg.log.Debug("chatroom: upgrade failed", "room", rm.cfg.name, "remote", r.RemoteAddr, "err", err)
		return
	}
	// From here on r.Context() must not be used: the connection is hijacked.
	upgraded = true
	hw.sock.Accepted()
	// The room enforces the size limit itself (Member.read), so that it can
	// go on reading past it, discarding, until the client has seen the
	// close frame: coder/websocket's own limit leaves the rest unread.
	conn.SetReadLimit(-1)
	// Accept answers the client's offer of permessage-deflate, if it
	// takes it, with the one extension the room knows.
	adm.deflate = w.Header().Get("Sec-WebSocket-Extensions") != ""
	m = rm.newMember(conn, hw.sock, adm)
	// Joining runs here, on the HTTP server's goroutine, whose stack has
	// already grown. The member's own goroutine only reads, so an idle
	// member's stack stays at its smallest.
	if !rm.join(m) {
		return
	}
	handedOff = true
	go rm.serve(m)
}

// admission is what the handler decides about a request before upgrading it.
type admission struct {
	identity Identity
	clientIP string
	authErr  error  // the authenticator's refusal, sent as 4001 after the upgrade
	since    uint64 // the last frame ID the client saw, if resume
	resume   bool
	deflate  bool // the client negotiated permessage-deflate
}

// sinceParam is the query parameter of a resuming client (WithHistory).
const sinceParam = "since"

// admit decides who r is: the authenticated identity or the nickname the
// client chose, and where its history resumes. A non-nil error comes with
// the HTTP status that refuses the request.
func (rm *Room) admit(r *http.Request) (admission, int, error) {
	adm := admission{clientIP: rm.cfg.clientIP(r)}
	query := r.URL.Query() // parsed once: a handshake's garbage is an idle member's RSS
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
		nickname, err := rm.cfg.nickname(query.Get(nicknameParam), adm.clientIP)
		if err != nil {
			return adm, http.StatusBadRequest, err
		}
		adm.identity = Identity{Nickname: nickname}
	}
	if s := query.Get(sinceParam); s != "" && rm.cfg.history != nil {
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

// hijackRecorder hands the ResponseWriter to websocket.Accept and gives it
// the hijacked connection wrapped in a socket, which the member keeps.
type hijackRecorder struct {
	http.ResponseWriter
	batches *sync.Pool
	opts    socket.Options
	sock    *socket.Socket
}

// Hijack hijacks the underlying connection, also through middleware that
// wraps the ResponseWriter and offers Unwrap.
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	s, sbrw, err := socket.New(c, brw, h.batches, h.opts)
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
