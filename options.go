package chatroom

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/seed014c2c51/chatroom/broker"
)

// Defaults of the options below.
const (
	// DefaultMaxMessageSize is the largest client message, in bytes, that a
	// room accepts unless WithMaxMessageSize says otherwise. It is the
	// default read limit of github.com/coder/websocket.
	DefaultMaxMessageSize = 32 << 10

	// DefaultQueueMessages and DefaultQueueBytes bound how far one member may
	// fall behind before it is disconnected as a slow consumer. They are
	// sized so that a member that reads normally survives a burst of
	// thousands of messages sent at full speed.
	DefaultQueueMessages = 8192
	// DefaultQueueBytes: see DefaultQueueMessages.
	DefaultQueueBytes = 4 << 20

	// DefaultWriteTimeout is how long one write to a member may block.
	DefaultWriteTimeout = 10 * time.Second

	// DefaultPingInterval and DefaultPongTimeout drive the keepalive: every
	// interval the room pings each member and drops it if no pong arrives
	// within the timeout.
	DefaultPingInterval = 30 * time.Second
	// DefaultPongTimeout: see DefaultPingInterval.
	DefaultPongTimeout = 15 * time.Second

	// DefaultSendBuffer is the kernel's send buffer of each member's TCP
	// connection (SO_SNDBUF) unless WithSendBuffer says otherwise. Linux
	// doubles it for its bookkeeping, so a member that does not read
	// holds about 128 KiB of kernel memory on the server.
	DefaultSendBuffer = 64 << 10

	// DefaultCloseTimeout bounds a close handshake: the room waits this long
	// for a member to receive its close frame and answer before it drops the
	// TCP connection.
	DefaultCloseTimeout = 3 * time.Second

	// DefaultCompressionThreshold is the smallest payload, in bytes, that
	// a room compresses for members that negotiated permessage-deflate,
	// unless WithCompression says otherwise. Below it deflate saves
	// almost nothing (BENCHMARKS.md).
	DefaultCompressionThreshold = 128
)

// Off turns off, in the options that take it, something a room does by
// default: WithKeepalive(Off, 0) sends no pings, WithPacing(Off, 0) reads
// every member as fast as it sends, WithJoinLimit(Off, 0) lets a client IP
// join as often as it likes, WithSendBuffer(Off) leaves the send buffer to
// the kernel, WithCompression(Off) declines permessage-deflate.
// WithRateLimit(Off, 0) is its default, no limit. Off is -1,
// the one negative value those options accept; any other negative
// argument makes New panic.
const Off = -1

// An Option configures a Room. Pass options to New, in any order. Every
// option follows the same rules:
//
//   - A zero argument (0, nil, "", or no arguments at all) means the
//     option's default, which its documentation names: WithWriteTimeout(0)
//     is the same as no WithWriteTimeout.
//   - An argument out of range (a negative size, duration or rate; a rate
//     that is NaN or infinite; a malformed pattern), or options that
//     contradict each other (a burst without a rate), make New panic with
//     a message that begins "chatroom: " and the option's name, such as
//     "chatroom: WithPacing: burst 50 without a rate". Options only
//     record their arguments; New checks them all together, so that a
//     misconfigured room fails where it is made rather than when a client
//     connects.
//   - What a room does by default and can do without (keepalive pings,
//     pacing, the join limit, setting the send buffer) is turned off with
//     Off, and with nothing else. The limits that protect the server from
//     a client (the message size, the send queue, the write and close
//     timeouts) cannot be turned off.
//   - Given more than once, an option's last call wins, with all of its
//     arguments: WithPacing(0, 50) after WithPacing(100, 0) leaves the
//     default rate.
//   - An option that needs another turns it on, and says so with "It turns
//     on WithEnvelope.": the other option's doc then holds. One that only
//     matters together with another says "It has no effect without ...".
type Option func(*config)

// config is a room's configuration. Options record their arguments in it
// as given; resolve (options_validate.go) checks them, puts in the
// defaults and turns Off into each field's "off" below.
type config struct {
	log            *slog.Logger
	originPatterns []string
	maxMessageSize int64
	queueMessages  int
	queueBytes     int
	writeTimeout   time.Duration
	pingInterval   time.Duration // 0: no keepalive
	pongTimeout    time.Duration
	closeTimeout   time.Duration
	rateLimit      rate.Limit // 0: no rate limit
	rateBurst      int
	sendBuffer     int        // 0: the kernel's
	compressMin    int        // 0: no permessage-deflate
	joinRate       rate.Limit // rate.Inf: no join limit
	joinBurst      int
	paceRate       rate.Limit // rate.Inf: no pacing
	paceBurst      int
	clientIP       func(*http.Request) string
	validate       func(nickname string) error
	onJoin         func(ctx context.Context, m *Member) error
	onLeave        func(ctx context.Context, m *Member, reason error)
	onMessage      func(ctx context.Context, from *Member, msg Message) (Message, error)

	// Host features, all off by default (envelope.go, direct.go, presence.go,
	// history.go, auth.go). resolve turns on what the others need: the
	// envelope, the notices.
	name            string
	now             func() time.Time
	envelope        bool
	notices         bool
	presence        bool
	announceRate    bool          // WithAnnouncedRateLimit
	deltas          bool          // WithPresenceDeltas
	deltaWindow     time.Duration // its Window, resolved
	maxMembers      int           // its MaxMembers, resolved: 0 for no cap
	errorFrames     bool
	direct          bool
	uniqueNicknames bool
	excludeSender   bool
	keepWhenEmpty   bool
	history         *History // WithHistory's, as given; nil without
	historyLen      int      // New sets them from history: 0 without
	historyBytes    int
	broker          broker.Broker
	metrics         Metrics // nil without
	heartbeat       time.Duration
	authenticate    func(*http.Request) (Identity, error)
	authHTTP        bool

	// joined is a test seam: called on the member's goroutine right after it
	// has been added to the room, so tests can wait for membership without
	// polling.
	joined func(*Member)
	// handedOver is a test seam: if set, every wait counts as quiet, so
	// that a member's reader hands over after each message (awaitMessage),
	// and it is called as the reader does.
	handedOver func()
	// finished is a test seam: called when an upgraded connection's
	// goroutine ends, after the room has counted it out and told a
	// registry that it is empty.
	finished func()
}

// WithLogger sends the room's logs to l (default: nowhere). Every line
// names the room ("room") and, where there is one, the member ("member",
// "nickname#id"); a leave or a refusal has its "reason" (ReasonLabel) and
// the level an operator alerts on: Debug for a client that left or broke
// its connection and for a shutdown, Info for a client the room or the
// host closed or refused, Warn for a member cut as too slow and for the
// start of a broker outage (its end is at Info), Error for a hook that
// panicked. docs/operations.md lists the lines.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// WithOriginPatterns allows browsers on other origins to connect. Patterns
// are host patterns as in websocket.AcceptOptions.OriginPatterns, for
// example "localhost:3000" or "*.example.com"; a malformed one (path.Match
// refuses it) makes New panic. By default, and with no patterns, only
// same-origin requests (and clients that send no Origin header) are
// accepted; a cross-origin request is answered with HTTP 403.
func WithOriginPatterns(patterns ...string) Option {
	patterns = slices.Clone(patterns)
	return func(c *config) { c.originPatterns = patterns }
}

// WithMaxMessageSize sets the largest client message in bytes (default
// DefaultMaxMessageSize, 32 KiB). A larger message closes the connection
// with status 1009.
func WithMaxMessageSize(n int64) Option {
	return func(c *config) { c.maxMessageSize = n }
}

// WithSendQueue bounds each member's queue of messages not yet written to
// its socket, by count and by bytes (defaults DefaultQueueMessages, 8192,
// and DefaultQueueBytes, 4 MiB). A member whose queue would exceed either
// bound is disconnected with ErrQueueOverflow and close status 1008 "too
// slow"; the broadcaster never waits for it. A single message is always
// accepted into an empty queue, whatever its size. The queue also paces
// its own member's reads (see WithPacing) and bounds a joiner's history
// (WithHistory).
func WithSendQueue(messages, bytes int) Option {
	return func(c *config) { c.queueMessages, c.queueBytes = messages, bytes }
}

// WithSendBuffer sets the kernel's send buffer of each member's TCP
// connection (SO_SNDBUF; default DefaultSendBuffer, 64 KiB). It bounds what
// the kernel holds for a member that does not read, on top of its send
// queue (WithSendQueue): without it Linux lets the buffer of such a
// connection grow to net.ipv4.tcp_wmem's maximum, 4 MiB by default. A
// member that reads keeps up with any buffer of a few tens of KiB on a
// local network; across continents, a larger one lets a fast member take
// more at once. Off leaves the buffer to the kernel.
func WithSendBuffer(bytes int) Option {
	return func(c *config) { c.sendBuffer = bytes }
}

// WithCompression sets the smallest message, in bytes of payload, that the
// room compresses for a client that negotiated permessage-deflate (RFC
// 7692; default DefaultCompressionThreshold, 128). The room accepts the
// extension, without context takeover in either direction, from every
// client that offers it: browsers, Node's ws and most clients do by
// default, and a client that does not offer it is sent exactly the bytes it
// would be sent without. Each frame is compressed at most once, when the
// first member that negotiated it is reached, and the same compressed
// bytes go to all of them; a room none of whose members negotiated it
// compresses nothing. Frames below the threshold, or that deflate would
// not shrink, go out uncompressed, as the extension allows message by
// message. What clients send compressed is inflated within
// WithMaxMessageSize, counted after inflation. Compressing a 1 KiB frame
// costs about 9 µs once per broadcast, and a member that has sent a
// compressed message keeps about 4 KiB more while idle (BENCHMARKS.md).
// Off turns the extension off: the room declines every offer, and a
// compressed frame is a protocol error (close status 1002).
func WithCompression(minBytes int) Option {
	return func(c *config) { c.compressMin = minBytes }
}

// WithWriteTimeout sets how long one write to a member's socket may block
// (default DefaultWriteTimeout, 10s). A member whose socket accepts nothing
// for that long has stopped reading: it is disconnected with
// ErrWriteTimeout and close status 1008 "too slow".
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) { c.writeTimeout = d }
}

// WithKeepalive sets how often the room pings each member and how long it
// waits for the pong (defaults DefaultPingInterval, 30s, and
// DefaultPongTimeout, 15s). A member that does not answer in time is
// dropped without a close frame and leaves with ErrPingTimeout. The next
// ping goes out an interval after the last pong, so any timeout works with
// any interval. An interval Off sends no pings; a timeout with it
// contradicts it.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(c *config) { c.pingInterval, c.pongTimeout = interval, timeout }
}

// WithCloseTimeout bounds each close handshake (default DefaultCloseTimeout,
// 3s): after sending a close frame the room waits this long for the client's
// answer before dropping the TCP connection.
func WithCloseTimeout(d time.Duration) Option {
	return func(c *config) { c.closeTimeout = d }
}

// WithRateLimit limits each member to perSecond messages per second on
// average with bursts of up to burst messages (a token bucket; burst 0
// means 1). A member that sends faster is disconnected with ErrRateLimited
// and close status 1008 "rate limit exceeded", or answered with an error
// frame under WithErrorFrames; nothing it sent within the limit is lost.
// By default, with perSecond 0 or Off, there is no limit, and a burst
// without a rate contradicts it.
//
// This is policing, on top of the pacing that every room does (WithPacing),
// which reads a fast sender later instead: a rate at or below the pace
// still polices.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(c *config) { c.rateLimit, c.rateBurst = rate.Limit(perSecond), burst }
}

// WithClientIP sets how the room learns a client's IP address, which names
// members that choose no nickname ("unknown_{ip}"), keys the join limit
// (WithJoinLimit) and is reported by Member.ClientIP. The default,
// RemoteIP, uses the connection's address; behind a reverse proxy, read
// the header your proxy sets, and only from the proxy:
//
//	chatroom.WithClientIP(func(r *http.Request) string {
//		if ip := r.Header.Get("X-Real-IP"); ip != "" {
//			return ip
//		}
//		return chatroom.RemoteIP(r)
//	})
func WithClientIP(fn func(*http.Request) string) Option {
	return func(c *config) { c.clientIP = fn }
}

// WithNicknameValidator replaces the check applied to every nickname
// (default ValidateNickname): the one a client chose with the "nickname"
// query parameter, which it sees prepared (PrepareNickname) if the PRECIS
// profile accepts it and else as sent, and the one an authenticator gives
// (WithAuthenticator), as given. Client-chosen names beginning with
// "unknown_" are refused whatever it says. A non-nil error refuses the
// connection before the upgrade with HTTP 400 and the error's text as a
// plain-text body.
func WithNicknameValidator(fn func(nickname string) error) Option {
	return func(c *config) { c.validate = fn }
}

// OnJoin sets a hook (default: none) that runs once for every upgraded
// connection, on the goroutine net/http serves the request on, before the
// member is added to the room and before ServeHTTP returns: the member
// receives no broadcast and appears in no Members list until it returns
// nil (Member.Send reaches it already, e.g. for a greeting). The hook may
// block (only this member waits) and may call any method of the Room or
// the Member but wait for Shutdown or Close, which wait for hooks; ctx
// ends when the member leaves.
//
// A non-nil error refuses the member: the connection is closed with the
// status of a websocket.CloseError in the error's chain, or 1008 "join
// refused" otherwise, and the leave hook does not run. A panic closes the
// connection with 1011.
func OnJoin(fn func(ctx context.Context, m *Member) error) Option {
	return func(c *config) { c.onJoin = fn }
}

// OnLeave sets a hook (default: none) that runs exactly once for every
// member that joined, on that member's own goroutine, after the member has
// been removed from the room and its connection closed. reason is a
// LeaveError: it wraps exactly one of the leave reasons (ErrRoomClosed,
// ErrClientClosed, ErrQueueOverflow, ... ErrRefused) for errors.Is, and
// holds the close status the member left with, whichever side sent it. The
// hook may block; Shutdown waits for it. ctx is cancelled when Shutdown
// gives up or Close is called. A panic is recovered and logged.
func OnLeave(fn func(ctx context.Context, m *Member, reason error)) Option {
	return func(c *config) { c.onLeave = fn }
}

// OnMessage sets a hook (default: none) that sees every client message
// before it is broadcast, on the sender's own goroutine (the one reading
// its connection), so a member's messages reach the hook in the order sent
// and a slow hook delays only its sender. It returns the message to broadcast: unchanged,
// rewritten (text or nickname), or refused with an error.
//
// A refused message is dropped and the member stays connected; with
// WithErrorFrames it is told so by an error frame, unless the error wraps
// ErrHandled (the hook has answered it itself). If the error's chain holds a
// websocket.CloseError, the member is closed with that status instead and
// leaves with ErrRefused. A panic closes the member with 1011 and
// ErrHookPanic. ctx ends when the member leaves.
//
// Messages sent with Room.Broadcast do not pass through this hook.
func OnMessage(fn func(ctx context.Context, from *Member, msg Message) (Message, error)) Option {
	return func(c *config) { c.onMessage = fn }
}
