package chatroomtest_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeTB is a chatroomtest.TB that records failures instead of failing the
// test, so that tests can check what the kit reports. Its cleanups run as
// the real test's. Failures nobody took with take fail the real test when
// it ends.
type fakeTB struct {
	t      *testing.T
	mu     sync.Mutex
	errors []string
	fatals []string
}

func newFakeTB(t *testing.T) *fakeTB {
	f := &fakeTB{t: t}
	// Registered first, so it runs last: after the servers' cleanups, which
	// may report to f.
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, msg := range f.errors {
			t.Errorf("unexpected Errorf: %s", msg)
		}
		for _, msg := range f.fatals {
			t.Errorf("unexpected Fatalf: %s", msg)
		}
	})
	return f
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) { f.t.Cleanup(fn) }

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

// do calls fn on a goroutine of its own, so that Fatalf can end it, and
// reports whether fn returned normally.
func (f *fakeTB) do(fn func()) (returned bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
		returned = true
	}()
	<-done
	return returned
}

// take returns the failures recorded so far and forgets them.
func (f *fakeTB) take() (errors, fatals []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	errors, fatals = f.errors, f.fatals
	f.errors, f.fatals = nil, nil
	return errors, fatals
}

// wantFailure checks that exactly one failure of the given kind was
// recorded, containing every one of parts, and returns it.
func (f *fakeTB) wantFailure(kind string, parts ...string) string {
	f.t.Helper()
	errs, fatals := f.take()
	got, other := errs, fatals
	if kind == "Fatalf" {
		got, other = fatals, errs
	}
	if len(got) != 1 || len(other) != 0 {
		f.t.Fatalf("failures: Errorf %q, Fatalf %q; want one %s", errs, fatals, kind)
	}
	for _, p := range parts {
		if !strings.Contains(got[0], p) {
			f.t.Errorf("%s message does not contain %q:\n%s", kind, p, got[0])
		}
	}
	return got[0]
}

// wantNoFailure checks that nothing was recorded.
func (f *fakeTB) wantNoFailure() {
	f.t.Helper()
	if errs, fatals := f.take(); len(errs)+len(fatals) > 0 {
		f.t.Fatalf("failures: Errorf %q, Fatalf %q; want none", errs, fatals)
	}
}

// checkNoReaders fails if a client's reader goroutine is still running.
// Call it once the servers are closed. A goroutine that has signalled its end
// may still be on its way out, and an exit has no event to wait for, so the
// check yields until they are gone or a bound passes; it never sleeps.
func checkNoReaders(t *testing.T) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
		if left = readers(); len(left) == 0 {
			return
		}
	}
	for _, g := range left {
		t.Errorf("reader goroutine left behind:\n%s", g)
	}
}

func readers() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "chatroomtest.(*Client).readLoop") {
			found = append(found, g)
		}
	}
	return found
}

// wsHandler is a WebSocket handler other than a Room: it accepts each
// connection, has serve serve it, and closes it. The test waits for the
// handlers when it ends: made before the test's server, after the server
// has dropped its clients.
func wsHandler(t *testing.T, serve func(r *http.Request, conn *websocket.Conn)) http.Handler {
	var handlers sync.WaitGroup
	t.Cleanup(handlers.Wait)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		serve(r, conn)
	})
}
