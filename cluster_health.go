package chatroom

import (
	"sync"
	"time"
)

// brokerHealth tells a broker outage apart from the calls that fail
// during it, so that an operator reads one Warn line when the outage
// begins and one Info line when it ends, not one per message: every
// failed broker call goes through failed, every call that succeeds
// through ok. The metrics count every failure (RoomMetrics.BrokerFailed).
type brokerHealth struct {
	c *cluster

	mu       sync.Mutex // guards the fields below; a leaf: nothing is taken or called under it
	down     bool
	since    time.Time // when the outage began
	failures int       // calls failed since
}

// failed records a broker call that failed, and logs it: at Warn the
// first of an outage, at Debug the others.
func (h *brokerHealth) failed(op BrokerOp, err error, attrs ...any) {
	rm := h.c.rm
	if rm.metrics != nil {
		rm.metrics.BrokerFailed(op, err)
	}
	h.mu.Lock()
	began := !h.down
	if began {
		h.down, h.since, h.failures = true, time.Now(), 0
	}
	h.failures++
	h.mu.Unlock()
	args := append([]any{"room", rm.cfg.name, "op", string(op), "err", err}, attrs...)
	if began {
		rm.cfg.log.Warn("chatroom: broker unavailable", args...)
	} else {
		rm.cfg.log.Debug("chatroom: broker call failed", args...)
	}
}

// ok records a broker call that succeeded, and logs the end of an
// outage, if there was one, at Info with how long it lasted.
func (h *brokerHealth) ok() {
	h.mu.Lock()
	ended, since, failures := h.down, h.since, h.failures
	h.down = false
	h.mu.Unlock()
	if ended {
		rm := h.c.rm
		rm.cfg.log.Info("chatroom: broker recovered", "room", rm.cfg.name,
			"down_for", time.Since(since), "failed_calls", failures)
	}
}
