// Package servetest runs an example's server in its test, as the command
// does, and checks from outside and over loopback that it applies the limits
// of package serve. The examples' tests use it; nothing else should. What
// the tests say to the chat rooms goes through package chatroomtest, which
// connects to the running server with chatroomtest.Remote.
package servetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/examples/internal/serve"
)

// Timeout bounds every dial, write and read of this package, beyond the
// idle timeout it waits for.
const Timeout = 10 * time.Second

// Server is one run of an example's run function, which every example has:
// run(ctx, args, stderr, ready) serves until ctx ends, as main does until
// SIGINT, and sends on ready what it listens on once it accepts
// connections: an address, or the addresses of several nodes.
type Server[R any] struct {
	// Ready is what run sent on ready: "127.0.0.1:port" for an example that
	// listens on one address.
	Ready R

	stop context.CancelFunc
	done chan error
	once sync.Once
	err  error
}

// Start calls run with args on a goroutine of its own, with its logs
// discarded, and returns once run is ready; it fails the test if run returns
// first, or is not ready within twice Timeout (an embedded NATS server
// starts in that time under the race detector). When the test ends, the server is stopped, and the test fails
// unless run returns nil.
func Start[R any](t testing.TB, run func(ctx context.Context, args []string, stderr io.Writer, ready chan<- R) error, args ...string) *Server[R] {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	s := &Server[R]{stop: stop, done: make(chan error, 1)}
	ready := make(chan R, 1)
	go func() { s.done <- run(ctx, args, io.Discard, ready) }()
	select {
	case s.Ready = <-ready:
	case err := <-s.done:
		stop()
		t.Fatalf("run(%q) = %v before it was ready", args, err)
	case <-time.After(2 * Timeout):
		err := s.Stop()
		t.Fatalf("run(%q) was not ready within %v; stopped: %v", args, 2*Timeout, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

// Stop stops the server as SIGINT stops the command, waits for run to
// return, and returns what it returned. It may be called more than once.
// The examples shut down within 10 seconds; Stop waits twice Timeout.
func (s *Server[R]) Stop() error {
	s.once.Do(func() {
		s.stop()
		select {
		case s.err = <-s.done:
		case <-time.After(2 * Timeout):
			s.err = fmt.Errorf("run did not return within %v of the stop", 2*Timeout)
		}
	})
	return s.err
}

// Short returns limits short enough for a test to wait them out: the
// read and write timeouts are half the idle timeout, so a test that has
// waited for the idle timeout has outlived them too.
func Short() serve.Limits {
	return serve.Limits{
		ReadHeaderTimeout: 250 * time.Millisecond,
		ReadTimeout:       250 * time.Millisecond,
		WriteTimeout:      250 * time.Millisecond,
		IdleTimeout:       500 * time.Millisecond,
		MaxHeaderBytes:    serve.DefaultMaxHeaderBytes,
	}
}

// Args returns the command-line flags that give an example the limits l.
func Args(l serve.Limits) []string {
	return []string{
		"-read-header-timeout", l.ReadHeaderTimeout.String(),
		"-read-timeout", l.ReadTimeout.String(),
		"-write-timeout", l.WriteTimeout.String(),
		"-idle-timeout", l.IdleTimeout.String(),
		"-max-header-bytes", fmt.Sprint(l.MaxHeaderBytes),
	}
}

// ExpectOutlived fails the test unless a member that joined at joined has
// been connected for longer than l's read and write timeouts, which bound
// ordinary requests, not WebSockets: the test then checks the member still
// works.
func ExpectOutlived(t testing.TB, l serve.Limits, joined time.Time) {
	t.Helper()
	if alive := time.Since(joined); alive <= l.ReadTimeout || alive <= l.WriteTimeout {
		t.Fatalf("waited %v, not longer than the read and write timeouts", alive)
	}
}

// IdleResult is what ExpectIdleClosed saw.
type IdleResult struct {
	Conns  int           // connections opened, each with one request answered
	Closed int           // of them, closed by the server
	First  time.Duration // the earliest close, after its connection's request
	Last   time.Duration // the latest
}

func (r IdleResult) String() string {
	return fmt.Sprintf("%d of %d idle keep-alive connections closed by the server, %v to %v after their request",
		r.Closed, r.Conns, r.First.Round(time.Millisecond), r.Last.Round(time.Millisecond))
}

// ExpectIdleClosed opens n TCP connections to addr, sends on each one
// complete HTTP/1.1 GET of path, reads the response, and then waits for the
// server to close each connection (a read returns EOF). It fails the test
// unless the server kept every connection alive after its response, and
// then closed every one, none of them sooner than idle after its request
// was sent, and none later than Timeout beyond that.
func ExpectIdleClosed(t testing.TB, addr, path string, n int, idle time.Duration) IdleResult {
	t.Helper()
	// Each connection waits for its close on a goroutine of its own, from
	// the moment its response is read, so that opening the next ones does
	// not delay the measurement.
	closes := make(chan idleClose, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, Timeout)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		sent := time.Now()
		if err := c.SetDeadline(sent.Add(Timeout)); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
			t.Fatalf("connection %d: write: %v", i, err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("connection %d: GET %s: %v", i, path, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("connection %d: GET %s: body: %v", i, path, err)
		}
		if resp.Close {
			t.Fatalf("connection %d: GET %s = %s, closing the connection: want it kept alive", i, path, resp.Status)
		}
		if err := c.SetReadDeadline(sent.Add(idle + Timeout)); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := br.ReadByte()
			closes <- idleClose{i, time.Since(sent), err}
		}()
	}

	r := IdleResult{Conns: n}
	for range n {
		c := <-closes
		var ne net.Error
		switch {
		case errors.As(c.err, &ne) && ne.Timeout():
			continue // still open; counted below
		case errors.Is(c.err, io.EOF):
		case c.err == nil:
			t.Errorf("connection %d: the server sent data on an idle connection", c.i)
			continue
		default:
			t.Errorf("connection %d: %v, want EOF", c.i, c.err)
			continue
		}
		if c.after < idle {
			t.Errorf("connection %d: closed %v after its request, before the idle timeout %v", c.i, c.after, idle)
		}
		if r.Closed == 0 || c.after < r.First {
			r.First = c.after
		}
		r.Last = max(r.Last, c.after)
		r.Closed++
	}
	if r.Closed != n {
		t.Errorf("%d of %d idle connections still open %v after their request, with an idle timeout of %v",
			n-r.Closed, n, idle+Timeout, idle)
	}
	return r
}

// idleClose is how an idle connection ended: err is io.EOF if the server
// closed it after it had been open for after.
type idleClose struct {
	i     int
	after time.Duration
	err   error
}

// Do sends req, within Timeout, and returns the response with its body
// read; it fails the test if either fails.
func Do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), Timeout)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
