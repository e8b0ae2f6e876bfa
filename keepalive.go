package chatroom

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// The room pings each member itself, through the socket, rather than with
// coder/websocket's Conn.Ping: Ping waits for a Reader call to deliver the
// pong, which would leave an idle member's reader waiting inside Reader,
// on a deep stack. Instead the reader takes the pong between messages
// (awaitMessage), or Reader hands it over when it meets one inside a
// message (AcceptOptions.OnPongReceived), and either way gotPong records it.
// The payload is the ping's number in decimal, as Conn.Ping's.

// errNoPong is why a member that did not answer a ping in time left.
var errNoPong = errors.New("no pong within the timeout")

// startKeepalive arms the first ping.
func (m *Member) startKeepalive() {
	if m.room.cfg.pingInterval <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.reaped {
		m.pingTimer = time.AfterFunc(m.room.cfg.pingInterval, m.ping)
	}
}

// ping runs on the timer's goroutine. With no ping awaiting its pong, it
// pings and arms the timer for the pong timeout; with one, the pong is
// late, and the member leaves with ErrPingTimeout.
func (m *Member) ping() {
	m.mu.Lock()
	if m.reaped || m.reason != nil {
		m.mu.Unlock()
		return
	}
	if m.pingOut != 0 {
		// The peer is unresponsive: a close handshake would only wait for
		// an answer that will not come.
		m.leaveLocked(cause(ErrPingTimeout, 0, "", errNoPong))
		m.mu.Unlock()
		return
	}
	if d := time.Until(m.nextPing); d > 0 {
		// A pong came as the timer fired, and rearmed it: this run is
		// early.
		m.pingTimer.Reset(d)
		m.mu.Unlock()
		return
	}
	m.pings++
	m.pingOut = m.pings
	m.pingTimer.Reset(m.room.cfg.pongTimeout)
	m.wg.Add(1) // the write may block, until the timeout closes the connection
	m.mu.Unlock()
	defer m.wg.Done()

	var buf [20]byte
	if err := m.sock.WritePing(strconv.AppendUint(buf[:0], m.pingOut, 10)); err != nil {
		m.leave(cause(ErrPingTimeout, 0, "", err))
	}
}

// gotPong records a pong with payload p, from the member's reader: if it
// answers the ping awaiting one, the next ping is due an interval from now.
func (m *Member) gotPong(p []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var buf [20]byte
	if m.pingOut == 0 || !bytes.Equal(p, strconv.AppendUint(buf[:0], m.pingOut, 10)) {
		return // unsolicited, or an answer too late
	}
	m.pingOut = 0
	m.nextPing = time.Now().Add(m.room.cfg.pingInterval)
	if !m.reaped {
		m.pingTimer.Reset(m.room.cfg.pingInterval)
	}
}
