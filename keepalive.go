package chatroom

import (
	"context"
	"time"
)

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

// ping runs on the timer's goroutine: it pings once and re-arms the timer.
func (m *Member) ping() {
	m.mu.Lock()
	if m.reaped || m.reason != nil {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()

	// Not derived from m.ctx: a context that ends during a write makes
	// coder/websocket drop the connection without a close frame, and the
	// member's context ends as soon as it starts leaving.
	ctx, cancel := context.WithTimeout(context.Background(), m.room.cfg.pongTimeout)
	err := m.conn.Ping(ctx)
	cancel()
	if err != nil {
		// The peer is unresponsive: a close handshake would only wait for
		// an answer that will not come.
		m.leave(cause(ErrPingTimeout, 0, "", err))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.reaped {
		m.pingTimer.Reset(m.room.cfg.pingInterval)
	}
}
