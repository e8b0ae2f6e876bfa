package chatroom

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// countingMetrics is a Metrics that counts with atomics, as a Prometheus
// implementation does; every room it is given shares its counts.
type countingMetrics struct {
	rooms, closed, connected, disconnected, received atomic.Int64
	fanouts, broadcasts, frames, bytes, deepest      atomic.Int64
	took                                             atomic.Int64
	resumes, truncated, published, brokerFailures    atomic.Int64
}

func (c *countingMetrics) Room(string) RoomMetrics { c.rooms.Add(1); return c }
func (c *countingMetrics) Closed()                 { c.closed.Add(1) }
func (c *countingMetrics) Connected()              { c.connected.Add(1) }
func (c *countingMetrics) Disconnected(error)      { c.disconnected.Add(1) }
func (c *countingMetrics) Received()               { c.received.Add(1) }
func (c *countingMetrics) Fanout(f Fanout) {
	c.fanouts.Add(1)
	c.frames.Add(int64(f.Frames))
	c.bytes.Add(int64(f.Bytes))
	if f.Broadcast {
		c.broadcasts.Add(1)
		c.deepest.Store(int64(f.DeepestQueue))
		c.took.Add(int64(f.Took))
	}
}
func (c *countingMetrics) Resumed(truncated bool) {
	c.resumes.Add(1)
	if truncated {
		c.truncated.Add(1)
	}
}
func (c *countingMetrics) BrokerPublished(n int, _ time.Duration) { c.published.Add(int64(n)) }
func (c *countingMetrics) BrokerFailed(BrokerOp, error)           { c.brokerFailures.Add(1) }

// fakeMembers adds n members to rm that have no connection and whose writer
// never runs (writing is set): a delivery only queues for them.
func fakeMembers(rm *Room, n int) []*Member {
	ms := make([]*Member, n)
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for i := range ms {
		m := &Member{room: rm, id: uint64(i + 1), nickname: "m", index: i, writing: true}
		ms[i] = m
		rm.members = append(rm.members, m)
	}
	return ms
}

// drain empties the queues of fake members, as their writer would.
func drain(rm *Room, ms []*Member) {
	for _, m := range ms {
		m.mu.Lock()
		m.queue.Release(&rm.chunks)
		m.queuedMsgs, m.queuedBytes = 0, 0
		m.mu.Unlock()
	}
}

// The delivery path allocates no more with metrics than without: the room
// reports a broadcast once, from locals, whatever the number of members.
func TestMetricsDeliveryAllocs(t *testing.T) {
	allocs := func(opts ...Option) float64 {
		rm := New(opts...)
		ms := fakeMembers(rm, 100)
		p := post{msg: Message{Type: TypeMessage, Nickname: "sei", Text: "hello"}}
		p.frame = rm.encode(p.msg)
		return testing.AllocsPerRun(1000, func() {
			rm.mu.Lock()
			rm.deliverLocked(&p, 0)
			rm.mu.Unlock()
			drain(rm, ms)
		})
	}
	cm := &countingMetrics{}
	off, on := allocs(), allocs(WithMetrics(cm))
	// The race detector drops sync.Pool's items at random, so the counts
	// differ run to run: .ci/run runs this test without it too.
	if on > off && !raceEnabled {
		t.Errorf("a broadcast to 100 members allocates %v times with metrics, %v without", on, off)
	}
	if got, want := cm.frames.Load(), int64(100*1001); got != want { // AllocsPerRun runs once more to warm up
		t.Errorf("frames reported = %d, want %d", got, want)
	}
	if got, want := cm.fanouts.Load(), int64(1001); got != want {
		t.Errorf("fan-outs reported = %d, want %d: once per broadcast", got, want)
	}
	t.Logf("allocations per broadcast to 100 members: %v without metrics, %v with", off, on)
}

// Every leave reason the room makes has its name, whatever its detail
// wraps.
func TestReasonLabel(t *testing.T) {
	for _, tt := range []struct {
		reason error
		want   string
	}{
		{cause(ErrClientClosed, 0, "", websocket.CloseError{Code: websocket.StatusNormalClosure}), ReasonNormal},
		{cause(ErrClientClosed, 0, "", websocket.CloseError{Code: websocket.StatusGoingAway}), ReasonNormal},
		{cause(ErrClientClosed, 0, "", websocket.CloseError{Code: websocket.StatusNoStatusRcvd}), ReasonNormal},
		{cause(ErrClientClosed, 0, "", io.EOF), ReasonAbnormal},
		{cause(ErrClientClosed, 0, "", websocket.CloseError{Code: websocket.StatusProtocolError}), ReasonAbnormal},
		{cause(ErrQueueOverflow, websocket.StatusPolicyViolation, reasonTooSlow, nil), ReasonSlow},
		{cause(ErrWriteTimeout, websocket.StatusPolicyViolation, reasonTooSlow, nil), ReasonSlow},
		{cause(ErrPingTimeout, 0, "", nil), ReasonPingTimeout},
		{cause(ErrInvalidMessage, websocket.StatusInvalidFramePayloadData, "invalid", nil), ReasonInvalid},
		{cause(ErrUnsupportedData, websocket.StatusUnsupportedData, "binary", nil), ReasonInvalid},
		{tooBigReason(), ReasonTooBig},
		{cause(ErrRateLimited, websocket.StatusPolicyViolation, reasonRateLimited, nil), ReasonRateLimited},
		{cause(ErrRefused, websocket.StatusPolicyViolation, reasonJoinRefused, errors.New("no")), ReasonRefused},
		{cause(ErrNicknameTaken, StatusNicknameTaken, reasonNicknameTaken, nil), ReasonRefused},
		// The authenticator's error is the detail: the kind decides.
		{cause(ErrUnauthorized, StatusUnauthorized, reasonUnauthorized, fmt.Errorf("%w: bad token", ErrRefused)), ReasonUnauthorized},
		{cause(ErrHookPanic, websocket.StatusInternalError, "internal error", nil), ReasonHookPanic},
		{roomClosed(), ReasonShutdown},
		{cause(ErrRoomClosed, 0, "", nil), ReasonShutdown},
		{errors.New("something else"), ReasonOther},
	} {
		if got := ReasonLabel(tt.reason); got != tt.want {
			t.Errorf("ReasonLabel(%v) = %q, want %q", tt.reason, got, tt.want)
		}
		if !slices.Contains(ReasonLabels(), tt.want) {
			t.Errorf("ReasonLabels lacks %q", tt.want)
		}
	}
}

// BenchmarkDeliverMetrics measures the delivery path alone, without
// sockets: one broadcast queued for 100 members whose writers never run
// (fakeMembers), with metrics off and on. It is the worst case for the
// metrics' share, since a real broadcast also costs its writes. cpu-ns/op
// is the process's CPU time per broadcast, steadier than ns/op on a shared
// machine.
func BenchmarkDeliverMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		name, opts := "metrics=off", []Option(nil)
		if on {
			name, opts = "metrics=on", []Option{WithMetrics(&countingMetrics{})}
		}
		b.Run(name, func(b *testing.B) {
			rm := New(opts...)
			ms := fakeMembers(rm, 100)
			p := post{msg: Message{Type: TypeMessage, Nickname: "sei", Text: "hello"}}
			p.frame = rm.encode(p.msg)
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				rm.mu.Lock()
				rm.deliverLocked(&p, 0)
				rm.mu.Unlock()
				drain(rm, ms)
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
