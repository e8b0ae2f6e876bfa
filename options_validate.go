package chatroom

import (
	"fmt"
	"log/slog"
	"math"
	"path"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// newConfig applies opts and resolves the result: the configuration of a
// new room.
func newConfig(opts []Option) config {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	c.resolve()
	return c
}

// resolve checks the arguments the options recorded, all together, and
// panics naming the option if one is out of range or two contradict each
// other. It then puts in the default of every zero argument, turns Off into
// each field's "off", and turns on what the options given need (Option's
// rules).
func (c *config) resolve() {
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range c.originPatterns {
		// As websocket.Accept matches them; it would refuse every
		// cross-origin request for a malformed one, and only log it.
		if _, err := path.Match(strings.ToLower(p), ""); err != nil {
			badOption("WithOriginPatterns", "pattern %q: %v", p, err)
		}
	}
	c.maxMessageSize = orDefault("WithMaxMessageSize", "n", c.maxMessageSize, DefaultMaxMessageSize)
	c.queueMessages = orDefault("WithSendQueue", "messages", c.queueMessages, DefaultQueueMessages)
	c.queueBytes = orDefault("WithSendQueue", "bytes", c.queueBytes, DefaultQueueBytes)
	c.writeTimeout = orDefault("WithWriteTimeout", "d", c.writeTimeout, DefaultWriteTimeout)
	c.closeTimeout = orDefault("WithCloseTimeout", "d", c.closeTimeout, DefaultCloseTimeout)
	c.sendBuffer = offOrDefault("WithSendBuffer", "bytes", c.sendBuffer, DefaultSendBuffer)
	c.compressMin = offOrDefault("WithCompression", "minBytes", c.compressMin, DefaultCompressionThreshold)
	c.pingInterval = offOrDefault("WithKeepalive", "interval", c.pingInterval, DefaultPingInterval)
	if c.pingInterval == 0 {
		if c.pongTimeout != 0 {
			badOption("WithKeepalive", "timeout %v without pings (interval Off)", c.pongTimeout)
		}
	} else {
		c.pongTimeout = orDefault("WithKeepalive", "timeout", c.pongTimeout, DefaultPongTimeout)
	}
	c.paceRate, c.paceBurst = bucket("WithPacing", c.paceRate, c.paceBurst, DefaultPaceRate, DefaultPaceBurst)
	c.joinRate, c.joinBurst = bucket("WithJoinLimit", c.joinRate, c.joinBurst, DefaultJoinRate, DefaultJoinBurst)
	// The rate limit is off by default, and its burst defaults to 1.
	if c.rateLimit == 0 {
		c.rateLimit = Off
	}
	c.rateLimit, c.rateBurst = bucket("WithRateLimit", c.rateLimit, c.rateBurst, 0, 1)
	if c.rateLimit == rate.Inf {
		c.rateLimit = 0 // the field's "off"
	}
	if c.clientIP == nil {
		c.clientIP = RemoteIP
	}
	if c.validate == nil {
		c.validate = ValidateNickname
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.heartbeat = orDefault("WithHeartbeat", "d", c.heartbeat, DefaultHeartbeat)
	c.history = c.resolveHistory()
	c.historyLen, c.historyBytes = 0, 0
	if c.history != nil {
		c.historyLen, c.historyBytes = c.history.Len, c.history.Bytes
	}

	if c.deltas {
		c.presence = true
		c.deltaWindow = orDefault("WithPresenceDeltas", "Window", c.deltaWindow, DefaultDeltaWindow)
		c.maxMembers = offOrDefault("WithPresenceDeltas", "MaxMembers", c.maxMembers, DefaultMaxMembers)
	}
	if c.announceRate && !c.presence {
		badOption("WithAnnouncedRateLimit", "without WithPresence, whose members frame carries the limit")
	}
	if c.presence {
		c.notices = true
	}
	if c.notices || c.errorFrames || c.direct {
		c.envelope = true
	}
}

// orDefault returns v, or def if v is 0. A negative v panics.
func orDefault[T int | int64 | time.Duration](option, arg string, v, def T) T {
	switch {
	case v < 0:
		badOption(option, "%s is %v; it must be > 0, or 0 for the default (%v)", arg, v, def)
	case v == 0:
		return def
	}
	return v
}

// offOrDefault is orDefault for an argument that takes Off, which it
// returns as 0.
func offOrDefault[T int | time.Duration](option, arg string, v, def T) T {
	switch {
	case v == Off:
		return 0
	case v < 0:
		badOption(option, "%s is %v; it must be > 0, 0 for the default (%v), or Off", arg, v, def)
	case v == 0:
		return def
	}
	return v
}

// bucket resolves the rate and burst of a token bucket: 0 means the
// default, a rate Off means no bucket (rate.Inf), which takes no burst.
func bucket(option string, r rate.Limit, burst int, defRate rate.Limit, defBurst int) (rate.Limit, int) {
	f := float64(r)
	switch {
	case r == Off:
		if burst != 0 {
			badOption(option, "burst %d without a rate", burst)
		}
		return rate.Inf, 0
	case math.IsNaN(f) || math.IsInf(f, 0):
		badOption(option, "perSecond is %v; it must be finite (Off turns it off)", f)
	case r < 0:
		badOption(option, "perSecond is %v; it must be > 0, 0 for the default, or Off", f)
	case r == 0:
		r = defRate
	}
	return r, orDefault(option, "burst", burst, defBurst)
}

// badOption panics with the message of an option New refuses.
func badOption(option, format string, args ...any) {
	panic(fmt.Sprintf("chatroom: "+option+": "+format, args...))
}
