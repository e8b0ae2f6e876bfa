package chatroom

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"
)

// panicOf runs f and returns what it panicked with, as text, or "" if it
// returned.
func panicOf(f func()) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprint(p)
		}
	}()
	f()
	return ""
}

// New refuses an out-of-range argument or a contradiction with a panic
// that names the option.
func TestNewPanicsNamingTheOption(t *testing.T) {
	tests := []struct {
		opt  Option
		want string // the panic's message begins with it
	}{
		{WithOriginPatterns("ok.example", "[bad"), `chatroom: WithOriginPatterns: pattern "[bad"`},
		{WithMaxMessageSize(-1), "chatroom: WithMaxMessageSize: n is -1; it must be > 0, or 0 for the default (32768)"},
		{WithSendQueue(-1, 0), "chatroom: WithSendQueue: messages is -1"},
		{WithSendQueue(0, -1), "chatroom: WithSendQueue: bytes is -1"},
		{WithSendBuffer(-2), "chatroom: WithSendBuffer: bytes is -2; it must be > 0, 0 for the default (65536), or Off"},
		{WithCompression(-5), "chatroom: WithCompression: minBytes is -5; it must be > 0, 0 for the default (128), or Off"},
		{WithWriteTimeout(-time.Second), "chatroom: WithWriteTimeout: d is -1s"},
		{WithWriteTimeout(Off), "chatroom: WithWriteTimeout: d is -1ns"}, // the write timeout cannot be turned off
		{WithCloseTimeout(-time.Second), "chatroom: WithCloseTimeout: d is -1s"},
		{WithKeepalive(-time.Second, 0), "chatroom: WithKeepalive: interval is -1s; it must be > 0, 0 for the default (30s), or Off"},
		{WithKeepalive(0, -time.Second), "chatroom: WithKeepalive: timeout is -1s"},
		{WithKeepalive(Off, time.Second), "chatroom: WithKeepalive: timeout 1s without pings (interval Off)"},
		{WithPacing(-2, 0), "chatroom: WithPacing: perSecond is -2; it must be > 0, 0 for the default, or Off"},
		{WithPacing(math.Inf(1), 0), "chatroom: WithPacing: perSecond is +Inf; it must be finite (Off turns it off)"},
		{WithPacing(math.NaN(), 0), "chatroom: WithPacing: perSecond is NaN"},
		{WithPacing(0, -1), "chatroom: WithPacing: burst is -1"},
		{WithPacing(Off, 50), "chatroom: WithPacing: burst 50 without a rate"},
		{WithJoinLimit(-2, 0), "chatroom: WithJoinLimit: perSecond is -2"},
		{WithJoinLimit(math.Inf(1), 0), "chatroom: WithJoinLimit: perSecond is +Inf"},
		{WithJoinLimit(Off, 1), "chatroom: WithJoinLimit: burst 1 without a rate"},
		{WithRateLimit(-2, 0), "chatroom: WithRateLimit: perSecond is -2"},
		{WithRateLimit(0, 5), "chatroom: WithRateLimit: burst 5 without a rate"},
		{WithRateLimit(Off, 5), "chatroom: WithRateLimit: burst 5 without a rate"},
		{WithRateLimit(10, -1), "chatroom: WithRateLimit: burst is -1"},
	}
	for _, tt := range tests {
		got := panicOf(func() { New(tt.opt) })
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("New panicked with %q, want %q...", got, tt.want)
		}
	}
}

// NewRegistry refuses an out-of-range argument with a panic that names the
// option, and a Registry's room options are checked when the room is made.
func TestNewRegistryPanicsNamingTheOption(t *testing.T) {
	want := "chatroom: WithMaxRooms: n is -1; it must be > 0, or 0 for no cap"
	if got := panicOf(func() { NewRegistry(WithMaxRooms(-1)) }); got != want {
		t.Errorf("NewRegistry panicked with %q, want %q", got, want)
	}
	rg := NewRegistry(WithRoomOptions(func(name string) []Option {
		if name == "bad" {
			return []Option{WithSendQueue(-1, 0)}
		}
		return nil
	}))
	if _, err := rg.Open("good"); err != nil {
		t.Fatal(err)
	}
	want = "chatroom: WithSendQueue: messages is -1"
	if got := panicOf(func() { _, _ = rg.Open("bad") }); !strings.HasPrefix(got, want) {
		t.Errorf("Open panicked with %q, want %q...", got, want)
	}
	if _, err := rg.Open("good"); err != nil { // the panic left the registry usable
		t.Fatal(err)
	}
}

// settings is what resolve makes of the options that have defaults or
// can be turned off.
type settings struct {
	MaxMessageSize           int64
	QueueMessages, QueueSize int
	SendBuffer               int
	CompressMin              int
	WriteTimeout             time.Duration
	CloseTimeout             time.Duration
	PingInterval             time.Duration
	PongTimeout              time.Duration
	PaceRate                 rate.Limit
	PaceBurst                int
	JoinRate                 rate.Limit
	JoinBurst                int
	RateLimit                rate.Limit
	RateBurst                int
	Heartbeat                time.Duration
	OriginPatterns           []string
	Envelope, Notices        bool
}

func settingsOf(c config) settings {
	return settings{
		c.maxMessageSize, c.queueMessages, c.queueBytes, c.sendBuffer, c.compressMin, c.writeTimeout, c.closeTimeout,
		c.pingInterval, c.pongTimeout, c.paceRate, c.paceBurst, c.joinRate, c.joinBurst,
		c.rateLimit, c.rateBurst, c.heartbeat, c.originPatterns, c.envelope, c.notices,
	}
}

// Zero means the default, Off turns off, the last call of an option wins,
// and options turn on what they need.
func TestOptionsResolve(t *testing.T) {
	defaults := settings{
		MaxMessageSize: DefaultMaxMessageSize, QueueMessages: DefaultQueueMessages, QueueSize: DefaultQueueBytes,
		SendBuffer: DefaultSendBuffer, CompressMin: DefaultCompressionThreshold, WriteTimeout: DefaultWriteTimeout, CloseTimeout: DefaultCloseTimeout,
		PingInterval: DefaultPingInterval, PongTimeout: DefaultPongTimeout,
		PaceRate: DefaultPaceRate, PaceBurst: DefaultPaceBurst, JoinRate: DefaultJoinRate, JoinBurst: DefaultJoinBurst,
		Heartbeat: DefaultHeartbeat,
	}
	tests := []struct {
		name string
		opts []Option
		edit func(*settings)
	}{
		{"none", nil, func(*settings) {}},
		{"zeros", []Option{
			WithMaxMessageSize(0), WithSendQueue(0, 0), WithSendBuffer(0), WithCompression(0), WithWriteTimeout(0),
			WithCloseTimeout(0), WithKeepalive(0, 0), WithPacing(0, 0), WithJoinLimit(0, 0),
			WithRateLimit(0, 0), WithOriginPatterns(), WithLogger(nil), WithClock(nil),
			WithClientIP(nil), WithNicknameValidator(nil), WithAuthenticator(nil),
		}, func(*settings) {}},
		{"Off", []Option{
			WithSendBuffer(Off), WithCompression(Off), WithKeepalive(Off, 0), WithPacing(Off, 0), WithJoinLimit(Off, 0), WithRateLimit(Off, 0),
		}, func(s *settings) {
			s.SendBuffer, s.CompressMin, s.PingInterval, s.PongTimeout = 0, 0, 0, 0
			s.PaceRate, s.PaceBurst, s.JoinRate, s.JoinBurst = rate.Inf, 0, rate.Inf, 0
		}},
		{"one of two", []Option{
			WithSendQueue(10, 0), WithKeepalive(0, time.Second), WithPacing(0, 5), WithJoinLimit(2, 0), WithRateLimit(3, 0),
		}, func(s *settings) {
			s.QueueMessages, s.PongTimeout, s.PaceBurst, s.JoinRate, s.RateLimit, s.RateBurst = 10, time.Second, 5, 2, 3, 1
		}},
		{"last wins", []Option{
			WithPacing(100, 10), WithPacing(0, 50), WithKeepalive(Off, 0), WithKeepalive(time.Minute, 0),
			WithOriginPatterns("a.example"), WithOriginPatterns("b.example"),
		}, func(s *settings) {
			s.PaceBurst, s.PingInterval, s.OriginPatterns = 50, time.Minute, []string{"b.example"}
		}},
		{"presence", []Option{WithPresence()}, func(s *settings) { s.Envelope, s.Notices = true, true }},
		{"direct", []Option{WithDirectMessages()}, func(s *settings) { s.Envelope = true }},
		{"error frames", []Option{WithErrorFrames()}, func(s *settings) { s.Envelope = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := defaults
			tt.edit(&want)
			c := newConfig(tt.opts)
			if diff := cmp.Diff(want, settingsOf(c)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if c.log == nil || c.clientIP == nil || c.validate == nil || c.now == nil {
				t.Errorf("a nil function option did not keep the default")
			}
		})
	}
}

// A Registry's room options are the function's, made anew for each room;
// the returned slice of the host's is not written to.
func TestRoomOptionsPerRoom(t *testing.T) {
	shared := make([]Option, 1, 10) // room to append: the registry must not
	shared[0] = WithExcludeSender()
	var names []string
	rg := NewRegistry(WithRoomOptions(func(name string) []Option {
		names = append(names, name)
		return shared
	}))
	for _, name := range []string{"a", "b"} {
		rm, err := rg.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if rm.Name() != name || !rm.cfg.excludeSender {
			t.Errorf("room %q: name %q, excludeSender %v", name, rm.Name(), rm.cfg.excludeSender)
		}
	}
	if diff := cmp.Diff([]string{"a", "b"}, names); diff != "" {
		t.Errorf("rooms made (-want +got):\n%s", diff)
	}
	if got := shared[:cap(shared)][1]; got != nil {
		t.Errorf("the registry appended to the host's slice")
	}
}
