//go:build unix

// Package serverproc runs a server binary for tests: see Process. The
// broker adapters' tests use it to run nats-server and redis-server as
// processes of their own, which they can stop, kill and pause, as an
// in-process server cannot be.
package serverproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one run of a command that logs a line when it is ready.
// Its goroutine waits for the process to exit, which Stop and Kill make
// sure of; exec's, which copies the output, ends with the output, or the
// timeout after the process exits.
type Process struct {
	cmd     *exec.Cmd
	timeout time.Duration
	out     *output
	exited  chan struct{} // closed when cmd.Wait has returned
}

// Start starts cmd, with its standard output and error read together, and
// waits until a line of it contains ready. If the process exits first, or
// no such line comes within timeout, Start kills it and returns an error
// with the output so far. timeout also bounds Stop's wait for the process
// to exit and Pause's for it to stop, and the wait for output that a
// child of the process keeps open after it exits.
func Start(cmd *exec.Cmd, ready string, timeout time.Duration) (*Process, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("serverproc: the command's output is already taken")
	}
	p := &Process{cmd: cmd, timeout: timeout, out: &output{want: ready, ready: make(chan struct{})}, exited: make(chan struct{})}
	// One writer for both, so that exec copies them on one goroutine, in
	// the order the process wrote them.
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = timeout
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("serverproc: starting %s: %w", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.out.ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("serverproc: %s exited (%v) before it was ready; its output:\n%s", cmd.Path, cmd.ProcessState, p.Output())
	case <-timer.C:
		p.Kill()
		return nil, fmt.Errorf("serverproc: %s not ready within %v; its output:\n%s", cmd.Path, timeout, p.Output())
	}
}

// StartOnFreePort starts the command that command returns for a free
// loopback port, as Start does, and returns the process and the port. A
// port free when found may be taken before the server binds it, so it
// tries again, with another port, up to attempts times in all; the error
// it returns then has each attempt's.
func StartOnFreePort(attempts int, ready string, timeout time.Duration, command func(port int) *exec.Cmd) (*Process, int, error) {
	var errs []error
	for attempt := range attempts {
		port, err := FreePort()
		if err != nil {
			return nil, 0, err
		}
		p, err := Start(command(port), ready, timeout)
		if err == nil {
			return p, port, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d, port %d: %w", attempt+1, port, err))
	}
	return nil, 0, errors.Join(errs...)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("serverproc: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Output returns what the process has written so far, standard output and
// error together.
func (p *Process) Output() string { return p.out.String() }

// Stop shuts the process down as an operator would, with SIGTERM (and
// SIGCONT first, as a paused process handles no signal), and waits for it
// to exit. If it has not within the timeout, Stop kills it and says so.
func (p *Process) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return nil
	case <-timer.C:
		p.Kill()
		return fmt.Errorf("serverproc: %s did not exit within %v of SIGTERM: killed", p.cmd.Path, p.timeout)
	}
}

// Kill kills the process at once, as a crash would, if it still runs, and
// waits for it to exit. It may be called more than once, and after Stop.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Pause stops the process without ending it (SIGSTOP): its connections
// stay open, and what its clients send waits, unread, until Resume. It
// returns once the process is stopped, which it learns from
// /proc/<pid>/stat, so only on Linux.
func (p *Process) Pause() error {
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("serverproc: SIGSTOP to %s: %w", p.cmd.Path, err)
	}
	return p.waitStopped()
}

// Resume lets a paused process go on (SIGCONT).
func (p *Process) Resume() error {
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("serverproc: SIGCONT to %s: %w", p.cmd.Path, err)
	}
	return nil
}

// waitStopped waits until the process is stopped, as SIGSTOP leaves it
// some time after kill returns.
func (p *Process) waitStopped() error {
	if err := p.waitState(stopped); err != nil {
		return fmt.Errorf("serverproc: %s, after SIGSTOP: %w", p.cmd.Path, err)
	}
	return nil
}

// stopped reports whether st is the state of a stopped process.
func stopped(st byte) bool { return st == 'T' || st == 't' }

// waitState waits, at most the timeout, until the process's state is one
// that ok accepts. Linux shows it in /proc, which has no event to wait
// on: it polls.
func (p *Process) waitState(ok func(byte) bool) error {
	deadline := time.Now().Add(p.timeout)
	for range int(p.timeout/time.Millisecond) + 1 {
		select {
		case <-p.exited:
			return errors.New("the process exited")
		default:
		}
		st, err := state(p.cmd.Process.Pid)
		if err != nil {
			return err
		}
		if ok(st) {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("state not reached within %v", p.timeout)
}

// state returns the state of process pid, as Linux's /proc/<pid>/stat
// shows it: R running, S sleeping, T stopped and so on.
func state(pid int) (byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The state follows the command name, which is in parentheses and may
	// hold any byte.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("no state in %q", b)
	}
	return b[i+2], nil
}

// output keeps what a process writes, and closes ready at the first line
// that contains want.
type output struct {
	want  string
	ready chan struct{}

	mu      sync.Mutex
	buf     bytes.Buffer
	checked int  // buf's bytes up to here are in lines already checked
	found   bool // ready is closed
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(b)
	if o.found {
		return len(b), nil
	}
	// Each round checks one whole line; a write holds at most len(b) of
	// them.
	for range len(b) {
		rest := o.buf.Bytes()[o.checked:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		o.checked += i + 1
		if strings.Contains(string(rest[:i]), o.want) {
			o.found = true
			close(o.ready)
			break
		}
	}
	return len(b), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
