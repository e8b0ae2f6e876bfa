package cluster

import (
	"bytes"
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed014c2c51/chatroom/broker"
)

// HeartbeatMeter counts one node's heartbeats and the CPU time spent on
// them where the broker sees them: taking in another node's heartbeat (the
// room's whole handling of it, reconciling the view included), and handing
// the node's own to the broker (Publish and SetPresence, the client's
// encoding and I/O). Building the node's own heartbeat before Publish is
// not included. CPU time is the thread's (CLOCK_THREAD_CPUTIME_ID, the
// goroutine locked to its thread for the call), so waiting on a lock or on
// the network does not count.
type HeartbeatMeter struct {
	Received, Sent    atomic.Int64
	receiveNs, sendNs atomic.Int64
}

// ReceiveCPU and SendCPU are the CPU times counted so far.
func (m *HeartbeatMeter) ReceiveCPU() time.Duration { return time.Duration(m.receiveNs.Load()) }

// SendCPU is the CPU time spent handing heartbeats to the broker.
func (m *HeartbeatMeter) SendCPU() time.Duration { return time.Duration(m.sendNs.Load()) }

// fullBroker is what redisbroker.Broker implements; meter wraps only such
// a broker, so that the room finds every optional interface it had.
type fullBroker interface {
	broker.BatchBroker
	broker.HistoryBroker
	broker.PresenceBroker
}

// meter returns b measured by m, or b itself if it is not a fullBroker.
func meter(b broker.Broker, m *HeartbeatMeter) broker.Broker {
	if fb, ok := b.(fullBroker); ok {
		return meteredBroker{fb, m}
	}
	return b
}

type meteredBroker struct {
	fullBroker
	m *HeartbeatMeter
}

// heartbeatField is in the publication of a heartbeat alone: chatroom's
// wire encodes it as JSON with the field "p" set, and a quote in any
// string would be escaped.
var heartbeatField = []byte(`,"p":true`)

func isHeartbeat(data []byte) bool { return bytes.Contains(data, heartbeatField) }

func (b meteredBroker) Publish(ctx context.Context, room string, p broker.Publication) error {
	if !isHeartbeat(p.Data) {
		return b.fullBroker.Publish(ctx, room, p)
	}
	var err error
	b.m.Sent.Add(1)
	b.m.sendNs.Add(int64(threadCPU(func() { err = b.fullBroker.Publish(ctx, room, p) })))
	return err
}

func (b meteredBroker) SetPresence(ctx context.Context, room, node string, nicknames []string, ttl time.Duration) error {
	var err error
	b.m.sendNs.Add(int64(threadCPU(func() { err = b.fullBroker.SetPresence(ctx, room, node, nicknames, ttl) })))
	return err
}

func (b meteredBroker) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	return b.fullBroker.Subscribe(ctx, room, func(p broker.Publication) {
		if !isHeartbeat(p.Data) {
			deliver(p)
			return
		}
		b.m.Received.Add(1)
		b.m.receiveNs.Add(int64(threadCPU(func() { deliver(p) })))
	})
}

// threadCPU runs f on a thread of its own and returns the CPU time that
// thread spent on it.
func threadCPU(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var start, end unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &start)
	f()
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &end)
	return time.Duration(end.Nano() - start.Nano())
}
