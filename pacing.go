package chatroom

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// A room shapes what members send rather than policing it: when a member
// sends faster than the room lets it, or faster than it reads what the room
// sends it back, the room reads its next message later. TCP then makes the
// client wait: nothing is lost, and nobody is closed for its own speed.
// Policing (WithRateLimit) is an option on top.

// Defaults of WithPacing.
const (
	// DefaultPaceRate is how many messages per second, on average, a room
	// reads from one member unless WithPacing says otherwise. A member
	// that reads at least this many frames per second keeps up with any
	// one other member's flood.
	DefaultPaceRate = 1000
	// DefaultPaceBurst is how many messages a member may send at once
	// before pacing starts.
	DefaultPaceBurst = 200
)

// WithPacing sets how fast the room reads each member's messages: perSecond
// on average, in bursts of up to burst (defaults DefaultPaceRate, 1000/s,
// and DefaultPaceBurst, 200). A member that sends faster is read later: its
// messages wait in its own TCP connection, and the client's writes slow
// down. Nothing is dropped and the member stays. Pacing keeps one member's
// flood from filling the others' queues, so that honest members are not cut
// as slow consumers because of it. perSecond Off turns pacing off; a burst
// with it contradicts it.
//
// Pacing happens before the rate limit (WithRateLimit), which closes or
// answers with error frames: a rate limit at or below the pace still
// polices.
//
// Independently of pacing, and even with it off, the room also stops
// reading a member while that member's own send queue is more than half
// full (WithSendQueue), and resumes once it is down to a quarter: a client
// that sends a burst without reading (a single-threaded JavaScript loop)
// is not cut by the echoes of its own messages. A member that has stopped
// reading is still cut, by the write timeout (WithWriteTimeout) or when
// others' messages fill its queue.
func WithPacing(perSecond float64, burst int) Option {
	return func(c *config) { c.paceRate, c.paceBurst = rate.Limit(perSecond), burst }
}

// newPacer returns the member's pacer, or nil without pacing.
func (c *config) newPacer() *rate.Limiter {
	if math.IsInf(float64(c.paceRate), 1) {
		return nil
	}
	return rate.NewLimiter(c.paceRate, c.paceBurst)
}

// pace waits until the member may send its next message: its own queue is
// no longer deep and the pacer has a token. It reports false once the member
// is leaving.
func (m *Member) pace() bool {
	if !m.waitForOwnQueue() {
		return false
	}
	if m.pacer == nil {
		// Made on the member's first message: most members send few.
		if m.pacer = m.room.cfg.newPacer(); m.pacer == nil {
			return true
		}
	}
	if m.pacer.Allow() { // Allow allocates nothing
		return true
	}
	r := m.pacer.Reserve()
	d := r.Delay()
	if d == 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-m.ctx.Done():
		return false
	}
}

// waitForOwnQueue blocks while the member's own queue is more than half
// full, until the writer has taken it down to a quarter. It reports false
// once the member is leaving.
func (m *Member) waitForOwnQueue() bool {
	m.mu.Lock()
	if m.reason != nil {
		m.mu.Unlock()
		return false
	}
	cfg := &m.room.cfg
	if m.queuedMsgs*2 <= cfg.queueMessages && m.queuedBytes*2 <= cfg.queueBytes {
		m.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	m.readsPaused = ch
	m.mu.Unlock()
	<-ch
	return !m.closing.Load()
}

// resumeReadsLocked wakes the reader paused by waitForOwnQueue once the
// queue is down to a quarter, or if force (the member leaves or its writer
// stops). m.mu is held.
func (m *Member) resumeReadsLocked(force bool) {
	if m.readsPaused == nil {
		return
	}
	cfg := &m.room.cfg
	if force || (m.queuedMsgs*4 <= cfg.queueMessages && m.queuedBytes*4 <= cfg.queueBytes) {
		close(m.readsPaused)
		m.readsPaused = nil
	}
}
