//go:build linux

package socket

import (
	"net"
	"syscall"
	"unsafe"
)

// A waiter waits for a TCP connection to become readable without reading
// from it: a peek of one byte, and where there is none, Go's network
// poller parks the goroutine inside syscall.RawConn.Read, a few calls deep.
type waiter struct {
	raw syscall.RawConn
	// peek is w.recv as a func value made once: RawConn.Read takes a func,
	// and a closure made per call would be allocated per call.
	peek     func(fd uintptr) bool
	blocking bool // park, rather than only look
	readable bool // what the last peek found
}

// init makes w the waiter of c, and reports false if c is not a
// connection whose descriptor can be peeked (TLS, a test's pipe).
func (w *waiter) init(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	w.raw = raw
	w.peek = w.recv
	return true
}

// ready reports whether a read would not wait.
func (w *waiter) ready() bool {
	w.blocking = false
	if err := w.raw.Read(w.peek); err != nil {
		return true // the read will tell
	}
	return w.readable
}

// park blocks until a read would not wait, or the connection fails or its
// read deadline passes.
func (w *waiter) park() {
	w.blocking = true
	_ = w.raw.Read(w.peek)
}

// recv peeks at one byte without blocking. It reports false, which has
// RawConn.Read wait for the poller, only when parking and there is no
// byte yet (EAGAIN); an end of stream or an error is for the read to
// report.
func (w *waiter) recv(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		w.readable = errno != syscall.EAGAIN
		return w.readable || !w.blocking
	}
}
