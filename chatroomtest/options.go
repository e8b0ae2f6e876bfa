package chatroomtest

import (
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seed014c2c51/chatroom"
)

// DefaultTimeout bounds every wait of the kit unless Timeout says otherwise:
// connecting, each read and write, Sync, and shutting the server down.
const DefaultTimeout = 5 * time.Second

// An Option configures clients. Options given to NewServer apply to every
// client of that server; options given to Server.Connect or Server.Dial
// apply to that client, after the server's.
type Option func(*settings)

// settings is what the options configure.
type settings struct {
	timeout  time.Duration
	compare  []cmp.Option
	path     string
	query    url.Values
	header   http.Header
	joinWait bool
	strict   bool
}

func newSettings(opts ...[]Option) settings {
	s := settings{
		timeout: DefaultTimeout,
		// A frame that omits a list and one that sends it empty say the
		// same thing.
		compare:  []cmp.Option{cmpopts.EquateEmpty()},
		path:     "/",
		query:    url.Values{},
		header:   http.Header{},
		joinWait: true,
	}
	for _, list := range opts {
		for _, opt := range list {
			opt(&s)
		}
	}
	return s
}

// Timeout sets how long each wait may take before it fails the test: the
// connection and the join, each frame read, each write, Sync and Close
// (default DefaultTimeout). Given to NewServer, it also bounds the handler's
// shutdown in Server.Close. A duration <= 0 keeps the default. Waits that
// succeed return as soon as they can: the timeout is never waited out to
// prove that something did not happen.
func Timeout(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// IgnoreIDAndTime makes Client.Expect compare frames without their ID and
// Time fields, which the room stamps on envelope frames (WithEnvelope and the
// options that imply it) from its clock. The alternative is to give the room a
// fixed clock with chatroom.WithClock: Time is then that clock's reading,
// truncated to milliseconds, and IDs are the same in every run: the next
// frame's ID is the last one's plus 1024 (see chatroom.WithEnvelope).
func IgnoreIDAndTime() Option {
	return Compare(cmpopts.IgnoreFields(chatroom.Message{}, "ID", "Time"))
}

// Compare adds go-cmp options to the comparisons of Client.Expect, for
// example cmpopts.IgnoreFields(chatroom.Message{}, "Members"). Expect always
// treats an empty Members list and an absent one as equal.
func Compare(opts ...cmp.Option) Option {
	return func(s *settings) { s.compare = append(s.compare, opts...) }
}

// DisallowUnknownFields makes Next, NextFunc and Expect fail the test with
// Fatalf on a frame that has a field chatroom.Message lacks, which they would
// otherwise drop unseen: to check that a server sends nothing beyond the chat
// protocol (see PROTOCOL.md), such as a field a middleware or another
// version added. NextRaw returns any frame as it is.
func DisallowUnknownFields() Option {
	return func(s *settings) { s.strict = true }
}

// Query adds a query parameter to the client's handshake request, for
// example Query("since", "1795420800000042") to resume a room's history or
// Query("token", tok) for an authenticator. The nickname is a parameter of
// Server.Connect of its own.
func Query(key, value string) Option {
	return func(s *settings) { s.query.Add(key, value) }
}

// Header adds an HTTP header to the client's handshake request, for example
// Header("Authorization", "Bearer "+tok) for an authenticator, or
// Header("Origin", "http://localhost:3000") to test WithOriginPatterns.
func Header(key, value string) Option {
	return func(s *settings) { s.header.Add(key, value) }
}

// Path sets the path the client connects to (default "/"), for a handler
// that serves the chat protocol at some paths only: a ServeMux, or a Registry
// mounted with Mount.
func Path(p string) Option {
	return func(s *settings) { s.path = p }
}

// NoJoinWait makes Server.Connect and Server.Dial return as soon as the
// WebSocket handshake is done, without waiting for the handler to return.
//
// By default they also wait until the handler's ServeHTTP has returned for
// the client's request. A chatroom.Room or chatroom.Registry returns once the
// client has joined (its OnJoin hook has run and it receives every broadcast
// from then on) or has been refused, so a test can make another client talk
// at once. Use NoJoinWait for a handler that serves the connection within
// ServeHTTP for the connection's whole life, or to connect a client whose
// join hook blocks until the test lets it go; such a client may miss
// broadcasts sent before it has joined.
func NoJoinWait() Option {
	return func(s *settings) { s.joinWait = false }
}
