package chatroom

import "time"

// Metrics is where rooms report what they do, for a monitoring system
// (package chatroomprom implements it with Prometheus). Set it with
// WithMetrics. New calls Room once for every room it makes; the room then
// reports its own events to what Room returned, and nothing else.
type Metrics interface {
	// Room returns the sink of the room named name (its WithName, or its
	// name in a Registry; "" for a room without one). It is called once,
	// by New: a sink that keeps a per-room label decides it here, once.
	Room(name string) RoomMetrics
}

// RoomMetrics receives one room's events. Its methods are called on the
// room's hot paths, some with the room's lock held: they must be fast
// (counters, not I/O), must not block, and must not call the room. Per
// delivery the room reports nothing: it reports once per frame it queues,
// whatever the number of members that receive it (Fanout).
type RoomMetrics interface {
	// Closed reports that the room closed (Shutdown, Close, or a
	// Registry removing it once empty). It is called once, and last.
	Closed()
	// Connected reports an upgraded WebSocket connection, before it
	// joins; Disconnected reports its end, with why: a LeaveError, as an
	// OnLeave hook receives it, also for a connection the room refused
	// after the upgrade (ErrUnauthorized, ErrNicknameTaken, a join hook's
	// ErrRefused). ReasonLabel names the reason in a fixed set. Every
	// Connected is followed by exactly one Disconnected.
	Connected()
	Disconnected(reason error)
	// Received reports a client message read and decoded, before the
	// message hook sees it.
	Received()
	// Fanout reports one frame queued for this node's members: a
	// broadcast, a notice, a direct message, a frame for one member.
	Fanout(f Fanout)
	// Resumed reports a client that reconnected with ?since=<id>
	// (WithHistory) and was replayed what it missed: all of it, or, if
	// truncated, what was left (it received a truncated notice).
	Resumed(truncated bool)
	// BrokerPublished reports one call to the broker (WithBroker) that
	// handed it n publications, and how long it took, whether or not it
	// failed.
	BrokerPublished(n int, took time.Duration)
	// BrokerFailed reports a broker call that failed, by what it was.
	BrokerFailed(op BrokerOp, err error)
}

// Fanout is one frame queued for members, as reported to
// RoomMetrics.Fanout.
type Fanout struct {
	// Frames is the number of members the frame was queued for, and Bytes
	// their total size on the wire: the size of the frame with its
	// WebSocket header, compressed for the members that negotiated
	// permessage-deflate (WithCompression), summed over the Frames. A member cut as too slow by this frame is
	// not counted; one cut later is, for the frames queued before. The
	// history replayed to a joiner is not counted: it is encoded as it is
	// written.
	Frames, Bytes int
	// DeepestQueue is, after a broadcast was queued, the largest number of
	// bytes one of those members had queued and not yet written: how far
	// the slowest is behind. The room cuts a member at WithSendQueue's
	// byte bound.
	DeepestQueue int
	// Broadcast says the frame was for every member (a broadcast, a
	// member's message, a notice), not for some only (a direct message,
	// a frame for one member). Only then are DeepestQueue and Took set.
	Broadcast bool
	// Took is how long queuing a broadcast took, with the room's lock
	// held: the time the room could deliver nothing else.
	Took time.Duration
}

// A BrokerOp names a call to the broker, in RoomMetrics.BrokerFailed and
// in the broker's log lines.
type BrokerOp string

// The broker calls a room makes.
const (
	BrokerPublish     BrokerOp = "publish"
	BrokerSubscribe   BrokerOp = "subscribe"
	BrokerUnsubscribe BrokerOp = "unsubscribe"
	BrokerHistory     BrokerOp = "history"
	BrokerPresence    BrokerOp = "presence"
)

// WithMetrics sends the room's counts to m (default: none). A Registry's
// rooms share one with WithRoomOptions, which is how a registry
// configures its rooms:
//
//	metrics, err := chatroomprom.New(prometheus.DefaultRegisterer)
//	if err != nil { ... }
//	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option {
//		return []chatroom.Option{chatroom.WithMetrics(metrics)}
//	}))
//
// It costs no allocation and no lock per delivery: the room reports once
// per frame it queues (RoomMetrics.Fanout), whatever the number of
// members.
func WithMetrics(m Metrics) Option {
	return func(c *config) { c.metrics = m }
}
