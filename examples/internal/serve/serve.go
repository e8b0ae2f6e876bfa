// Package serve holds what the examples' HTTP servers share: the timeouts
// and size limits that a net/http server reachable from the Internet needs,
// and the flags that tune them. examples/chat, mux, auth, bot and cluster use
// it; it is internal because it is part of the examples, not of the library.
// (examples/cluster is a module of its own, but its import path,
// github.com/seed014c2c51/chatroom/examples/cluster, lies inside
// github.com/seed014c2c51/chatroom/examples, so Go lets it import this
// package.)
//
// An http.Server's zero value bounds nothing: a client may take forever to
// send its headers or its body, never read the response, or keep a
// keep-alive connection open and idle for ever, each holding a goroutine and
// buffers. These limits bound every one of them.
//
// None of them reaches a WebSocket. The upgrade hijacks the connection, and
// net/http clears the connection's deadlines when it hands it over (the
// library clears them again after the upgrade), so a chat member may stay
// connected for hours. The rooms bound their members themselves: they ping
// every member and drop one that does not answer (chatroom.WithKeepalive),
// and cut one that stops reading (chatroom.WithWriteTimeout).
package serve

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// The defaults, and why.
const (
	// DefaultReadHeaderTimeout bounds the request line and headers. A
	// browser sends them in one packet as soon as it has connected; ten
	// seconds leaves room for a poor mobile link and stops a client that
	// trickles its headers a byte at a time (Slowloris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds the whole request, headers and body. The
	// examples' bodies are small (a login is at most 4 KiB), which even a
	// slow link sends in well under a second; 30 seconds stops a client
	// that trickles a body.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds the time from the end of the headers to the
	// end of the response. The handlers do no slow work, and the largest
	// response is the chat page's script, 13 KB; 30 seconds stops a client
	// that asks and then never reads.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection that has been idle
	// this long. Reusing a connection saves a handshake when a page loads its
	// files or a client logs in twice; beyond a minute the saving is
	// small, while every idle connection costs a goroutine and about 8 KiB
	// of buffers. It is longer than the idle timeout of common load
	// balancers (AWS's is 60 s), so that behind one it is the balancer that
	// closes an idle connection, and no request races the server's close.
	DefaultIdleTimeout = 75 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and headers (net/http
	// allows 4 KiB more before it answers 431). Its own default is 1 MiB;
	// the examples' requests carry a short token at most, and browsers'
	// headers rarely pass 8 KiB, the limit of common proxies.
	DefaultMaxHeaderBytes = 16 << 10
)

// Limits are an HTTP server's timeouts and header size limit, as the fields
// of http.Server of the same names.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// Defaults returns the limits the examples serve with unless told
// otherwise.
func Defaults() Limits {
	return Limits{
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	}
}

// AddFlags registers on fs one flag per limit, -read-header-timeout,
// -read-timeout, -write-timeout, -idle-timeout and -max-header-bytes, which
// set l's fields; l's values are the flags' defaults.
func (l *Limits) AddFlags(fs *flag.FlagSet) {
	fs.DurationVar(&l.ReadHeaderTimeout, "read-header-timeout", l.ReadHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&l.ReadTimeout, "read-timeout", l.ReadTimeout, "how long a client may take to send a whole request, headers and body (WebSockets are not affected)")
	fs.DurationVar(&l.WriteTimeout, "write-timeout", l.WriteTimeout, "how long the server may take to answer a request, from the end of its headers (WebSockets are not affected)")
	fs.DurationVar(&l.IdleTimeout, "idle-timeout", l.IdleTimeout, "how long a keep-alive connection may stay idle between requests")
	fs.IntVar(&l.MaxHeaderBytes, "max-header-bytes", l.MaxHeaderBytes, "largest request line and headers, in bytes")
}

// Validate reports an error for a limit that is not positive: for
// net/http, zero means no limit, and no limit is what the examples avoid.
func (l Limits) Validate() error {
	var errs []error
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"-read-header-timeout", l.ReadHeaderTimeout},
		{"-read-timeout", l.ReadTimeout},
		{"-write-timeout", l.WriteTimeout},
		{"-idle-timeout", l.IdleTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", d.flag, d.v))
		}
	}
	if l.MaxHeaderBytes <= 0 {
		errs = append(errs, fmt.Errorf("-max-header-bytes %d: must be positive", l.MaxHeaderBytes))
	}
	return errors.Join(errs...)
}

// Server returns a server of h with the limits. What net/http has to say
// about failures it handles itself (a handler's panic, an error accepting
// a connection) goes to log at level Error.
func (l Limits) Server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelError),
	}
}
