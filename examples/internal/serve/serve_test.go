package serve_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom/examples/internal/serve"
	"github.com/seed014c2c51/chatroom/examples/internal/serve/servetest"
)

func TestFlags(t *testing.T) {
	l := serve.Defaults()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.AddFlags(fs)
	if err := fs.Parse(servetest.Args(servetest.Short())); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(servetest.Short(), l); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	if err := l.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	if err := serve.Defaults().Validate(); err != nil {
		t.Errorf("Defaults().Validate = %v", err)
	}
	for _, args := range [][]string{
		{"-read-header-timeout", "0s"},
		{"-read-timeout", "-1s"},
		{"-write-timeout", "0s"},
		{"-idle-timeout", "0s"},
		{"-max-header-bytes", "0"},
	} {
		l := serve.Defaults()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		l.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := l.Validate(); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%q: Validate = %v, want an error about %s", args, err, args[0])
		}
	}
}

// listen serves h with l on a loopback port until the test ends.
func listen(t *testing.T, l serve.Limits, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.Server(h, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	return ln.Addr().String()
}

// expectEOF reads from c until the server closes it, and returns how long
// that took from start and what was read.
func expectEOF(t *testing.T, c net.Conn, start time.Time) (time.Duration, string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(servetest.Timeout)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %q, then %v; want EOF", b, err)
	}
	return time.Since(start), string(b)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, servetest.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ok reads the request's body and answers "ok", or 400 if it cannot read
// the body.
func ok(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	io.WriteString(w, "ok\n")
}

// A client that sends half its headers and stops is cut off after
// ReadHeaderTimeout, without an answer.
func TestSlowHeaders(t *testing.T) {
	l := servetest.Short()
	addr := listen(t, l, http.HandlerFunc(ok))
	// Before the dial: the server's deadline starts when it accepts.
	start := time.Now()
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	took, got := expectEOF(t, c, start)
	if took < l.ReadHeaderTimeout || got != "" {
		t.Errorf("closed after %v, having sent %q; want nothing, after %v", took, got, l.ReadHeaderTimeout)
	}
}

// A client that sends its headers but only part of its body is cut off
// after ReadTimeout: the handler's read fails.
func TestSlowBody(t *testing.T) {
	l := servetest.Short()
	// The write deadline is set just after the read deadline; the 400 must
	// be written before it.
	l.WriteTimeout = 4 * l.ReadTimeout
	addr := listen(t, l, http.HandlerFunc(ok))
	c := dial(t, addr)
	start := time.Now()
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf"); err != nil {
		t.Fatal(err)
	}
	took, got := expectEOF(t, c, start)
	if took < l.ReadTimeout || !strings.HasPrefix(got, "HTTP/1.1 400 ") || !strings.Contains(got, "timeout") {
		t.Errorf("closed after %v, having sent %q; want a 400 for a timeout, after %v", took, got, l.ReadTimeout)
	}
}

// Headers over MaxHeaderBytes (and net/http's 4 KiB of slack) are refused
// with 431.
func TestLargeHeaders(t *testing.T) {
	l := serve.Defaults()
	addr := listen(t, l, http.HandlerFunc(ok))
	for _, tt := range []struct {
		size int
		want int
	}{
		{l.MaxHeaderBytes / 2, http.StatusOK},
		{l.MaxHeaderBytes + 8<<10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		c := dial(t, addr)
		if err := c.SetDeadline(time.Now().Add(servetest.Timeout)); err != nil {
			t.Fatal(err)
		}
		// Write and read at once: the server may answer before it has read
		// everything.
		go fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", tt.size))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", tt.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%d bytes of headers: %s, want %d", tt.size, resp.Status, tt.want)
		}
	}
}

// Idle keep-alive connections are closed after IdleTimeout.
func TestIdle(t *testing.T) {
	l := servetest.Short()
	addr := listen(t, l, http.HandlerFunc(ok))
	r := servetest.ExpectIdleClosed(t, addr, "/", 50, l.IdleTimeout)
	t.Log(r)
}
