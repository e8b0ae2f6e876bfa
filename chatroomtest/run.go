package chatroomtest

import (
	"fmt"
	"io"
	"runtime"
	"sync"
)

// TB is the part of testing.TB that the kit uses. *testing.T, *testing.B,
// *testing.F and testing.TB implement it; so does the TB that Run provides.
//
// Fatalf must stop the goroutine that calls it (testing.T's calls
// runtime.Goexit), which is why the kit's blocking methods must be called
// from the test's goroutine.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Run calls f with a TB of its own, outside any test: for runnable examples,
// which have no *testing.T, and for programs that check a handler with the
// kit. In a test, use the test's *testing.T instead.
//
// The TB writes every Errorf and Fatalf message to w, one per line. Fatalf
// ends f as testing.T's does, by runtime.Goexit on f's goroutine, which is one
// Run starts; Run waits for it. When f has ended, Run calls the functions
// given to Cleanup, last registered first, and then reports whether nothing
// failed.
func Run(w io.Writer, f func(t TB)) bool {
	t := &runTB{w: w}
	t.do(func() { f(t) })
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		cleanup := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		t.do(cleanup)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.failed
}

// runTB is the TB of Run.
type runTB struct {
	w        io.Writer
	mu       sync.Mutex // guards the fields below and writes to w
	failed   bool
	cleanups []func()
}

// do calls f on a goroutine of its own, so that Fatalf can end it, and waits
// for it.
func (t *runTB) do(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (t *runTB) Helper() {}

func (t *runTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *runTB) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
	fmt.Fprintf(t.w, format+"\n", args...)
}

func (t *runTB) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}
