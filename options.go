package chatroom

import (
	"context"
	"github.com/seed014c2c51/chatroom/broker"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/time/rate"
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
)

// An Option configures a Room. Pass options to New.
type Option func(*config)

type config struct {
	log            *slog.Logger
	originPatterns []string
	maxMessageSize int64
	queueMessages  int
	queueBytes     int
	writeTimeout   time.Duration
	pingInterval   time.Duration
	pongTimeout    time.Duration
	closeTimeout   time.Duration
	rateLimit      rate.Limit
	rateBurst      int
	sendBuffer     int
	joinRate       rate.Limit
	joinBurst      int
	paceRate       rate.Limit
	paceBurst      int
	clientIP       func(*http.Request) string
	nicknameFunc   func(r *http.Request, clientIP string) (string, error)
	validate       func(nickname string) error
	onJoin         func(ctx context.Context, m *Member) error
	onLeave        func(ctx context.Context, m *Member, reason error)
	onMessage      func(ctx context.Context, from *Member, msg Message) (Message, error)

	// Host features, all off by default (envelope.go, direct.go, presence.go,
	// history.go, auth.go).
	name            string
	now             func() time.Time
	envelope        bool
	notices         bool
	presence        bool
	errorFrames     bool
	direct          bool
	uniqueNicknames bool
	excludeSender   bool
	keepWhenEmpty   bool
	history         *History // WithHistory's, as given; nil without
	historyLen      int      // New sets them from history: 0 without
	historyBytes    int
	broker          broker.Broker
	heartbeat       time.Duration
	authenticate    func(*http.Request) (Identity, error)
	authHTTP        bool

	// joined is a test seam: called on the member's goroutine right after it
	// has been added to the room, so tests can wait for membership without
	// polling.
	joined func(*Member)
	// finished is a test seam: called when an upgraded connection's
	// goroutine ends, after the room has counted it out.
	finished func()
}

func defaultConfig() config {
	return config{
		log:            slog.New(slog.DiscardHandler),
		maxMessageSize: DefaultMaxMessageSize,
		queueMessages:  DefaultQueueMessages,
		queueBytes:     DefaultQueueBytes,
		writeTimeout:   DefaultWriteTimeout,
		pingInterval:   DefaultPingInterval,
		pongTimeout:    DefaultPongTimeout,
		closeTimeout:   DefaultCloseTimeout,
		sendBuffer:     DefaultSendBuffer,
		joinRate:       DefaultJoinRate,
		joinBurst:      DefaultJoinBurst,
		paceRate:       DefaultPaceRate,
		paceBurst:      DefaultPaceBurst,
		clientIP:       RemoteIP,
		validate:       ValidateNickname,
		now:            time.Now,
		heartbeat:      DefaultHeartbeat,
	}
}

// WithLogger sends the room's logs to l. Joins and leaves are logged at
// Debug, recovered hook panics at Error. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithOriginPatterns allows browsers on other origins to connect. Patterns
// are host patterns as in websocket.AcceptOptions.OriginPatterns, for
// example "localhost:3000" or "*.example.com". By default only same-origin
// requests (and clients that send no Origin header) are accepted; a
// cross-origin request is answered with HTTP 403.
func WithOriginPatterns(patterns ...string) Option {
	return func(c *config) { c.originPatterns = append(c.originPatterns, patterns...) }
}

// WithMaxMessageSize sets the largest client message in bytes (default
// DefaultMaxMessageSize, 32 KiB). A larger message closes the connection with
// status 1009. A value <= 0 keeps the default.
func WithMaxMessageSize(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.maxMessageSize = n
		}
	}
}

// WithSendQueue bounds each member's queue of messages not yet written to
// its socket, by count and by bytes (defaults DefaultQueueMessages, 8192, and
// DefaultQueueBytes, 4 MiB). A member whose queue would exceed either bound
// is disconnected with ErrSlowConsumer and close status 1008 "too slow"; the
// broadcaster never waits for it. A single message is always accepted into an
// empty queue, whatever its size. A value <= 0 keeps that bound's default.
func WithSendQueue(messages, bytes int) Option {
	return func(c *config) {
		if messages > 0 {
			c.queueMessages = messages
		}
		if bytes > 0 {
			c.queueBytes = bytes
		}
	}
}

// WithSendBuffer sets the kernel's send buffer of each member's TCP
// connection (SO_SNDBUF; default DefaultSendBuffer, 64 KiB). It bounds what
// the kernel holds for a member that does not read, on top of its send
// queue (WithSendQueue): without it Linux lets the buffer of such a
// connection grow to net.ipv4.tcp_wmem's maximum, 4 MiB by default. A
// member that reads keeps up with any buffer of a few tens of KiB on a
// local network; across continents, a larger one lets a fast member take
// more at once. A value < 0 leaves the buffer to the kernel; 0 keeps the
// default.
func WithSendBuffer(bytes int) Option {
	return func(c *config) {
		switch {
		case bytes < 0:
			c.sendBuffer = 0
		case bytes > 0:
			c.sendBuffer = bytes
		}
	}
}

// WithWriteTimeout sets how long one write to a member's socket may block
// (default DefaultWriteTimeout, 10s). A member whose socket accepts nothing
// for that long has stopped reading: it is disconnected with ErrSlowConsumer.
// A value <= 0 keeps the default.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.writeTimeout = d
		}
	}
}

// WithKeepalive sets how often the room pings each member and how long it
// waits for the pong (defaults DefaultPingInterval, 30s, and
// DefaultPongTimeout, 15s). A member that does not answer in time is
// disconnected with ErrPingTimeout. An interval <= 0 turns keepalive off; a
// timeout <= 0 keeps the default.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(c *config) {
		c.pingInterval = max(interval, 0)
		if timeout > 0 {
			c.pongTimeout = timeout
		}
	}
}

// WithCloseTimeout bounds each close handshake (default DefaultCloseTimeout,
// 3s): after sending a close frame the room waits this long for the client's
// answer before dropping the TCP connection. A value <= 0 keeps the default.
func WithCloseTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.closeTimeout = d
		}
	}
}

// WithRateLimit limits each member to perSecond messages per second on
// average with bursts of up to burst messages (a token bucket). A member that
// sends faster is disconnected with ErrRateLimited and close status 1008
// "rate limit exceeded", or answered with an error frame under
// WithErrorFrames; nothing it sent within the limit is lost. This is
// policing, on top of the pacing that every room does (WithPacing), which
// reads a fast sender later instead. By default there is no limit. perSecond <= 0 turns the limit off; burst < 1
// counts as 1.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(c *config) {
		c.rateLimit = rate.Limit(max(perSecond, 0))
		c.rateBurst = max(burst, 1)
	}
}

// WithClientIP sets how the room learns a client's IP address, which names
// members that choose no nickname ("unknown_{ip}") and is reported by
// Member.ClientIP. The default, RemoteIP, uses the connection's address;
// behind a reverse proxy, read the header your proxy sets, and only from the
// proxy:
//
//	chatroom.WithClientIP(func(r *http.Request) string {
//		if ip := r.Header.Get("X-Real-IP"); ip != "" {
//			return ip
//		}
//		return chatroom.RemoteIP(r)
//	})
func WithClientIP(fn func(*http.Request) string) Option {
	return func(c *config) {
		if fn != nil {
			c.clientIP = fn
		}
	}
}

// WithNicknameValidator replaces the check applied to a nickname the client
// chose with the "nickname" query parameter (default ValidateNickname). It
// sees the nickname prepared (PrepareNickname) if the PRECIS profile accepts
// it, else as sent; names beginning with "unknown_" are refused whatever it
// says. A non-nil error refuses the connection before the upgrade with HTTP
// 400 and the error's text as a plain-text body.
func WithNicknameValidator(fn func(nickname string) error) Option {
	return func(c *config) {
		if fn != nil {
			c.validate = fn
		}
	}
}

// WithNicknameFunc lets the host assign nicknames, for example from its own
// session. fn receives the upgrade request and the client IP (see
// WithClientIP); the "nickname" query parameter and the validator are then not
// consulted. An error refuses the connection with HTTP 400 and the error's
// text; wrap ErrInvalidNickname or not, as you like.
func WithNicknameFunc(fn func(r *http.Request, clientIP string) (string, error)) Option {
	return func(c *config) { c.nicknameFunc = fn }
}

// OnJoin sets a hook that runs once for every upgraded connection, on the
// goroutine net/http serves the request on, before the member is added to
// the room and before ServeHTTP returns: the
// member receives no broadcast and appears in no Members list until it
// returns nil (Member.Send reaches it already, e.g. for a greeting). The hook may block (only this member waits) and may call any method of
// the Room or the Member but wait for Shutdown or Close, which wait for hooks;
// ctx ends when the member leaves.
//
// A non-nil error refuses the member: the connection is closed with the
// status of a websocket.CloseError in the error's chain, or 1008 "join
// refused" otherwise, and the leave hook does not run. A panic closes the
// connection with 1011.
func OnJoin(fn func(ctx context.Context, m *Member) error) Option {
	return func(c *config) { c.onJoin = fn }
}

// OnLeave sets a hook that runs exactly once for every member that joined,
// on that member's own goroutine, after the member has been removed from the room
// and its connection closed. reason wraps one of the sentinel errors
// (ErrClientClosed, ErrSlowConsumer, ErrRoomClosed, ...). The hook may block;
// Shutdown waits for it. ctx is cancelled when Shutdown gives up or Close is
// called. A panic is recovered and logged.
func OnLeave(fn func(ctx context.Context, m *Member, reason error)) Option {
	return func(c *config) { c.onLeave = fn }
}

// OnMessage sets a hook that sees every client message before it is
// broadcast, on the sender's own goroutine (the one reading its connection),
// so a member's messages reach the hook in the order sent and a slow hook
// delays only its sender. It returns the message to broadcast: unchanged,
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
