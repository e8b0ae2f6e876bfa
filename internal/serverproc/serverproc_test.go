//go:build unix

package serverproc

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitTimeout bounds every wait of the tests for something to happen.
const waitTimeout = 10 * time.Second

// short is the timeout of the processes that are meant to run out of it.
const short = 300 * time.Millisecond

// start starts sh -c script, as Start does, killed when the test ends.
func start(t *testing.T, script string, timeout time.Duration) *Process {
	t.Helper()
	p, err := Start(exec.Command("sh", "-c", script), "ready", timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// exitSignal returns the signal that ended p, failing the test if p has
// not exited or did so on its own.
func exitSignal(t *testing.T, p *Process) syscall.Signal {
	t.Helper()
	select {
	case <-p.exited:
	default:
		t.Fatal("the process has not exited")
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		t.Fatalf("the process ended with %v, not by a signal", p.cmd.ProcessState)
	}
	return ws.Signal()
}

// wantError fails the test unless err says each of want.
func wantError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// A process is ready at the line that says so, with what it wrote before
// in Output, standard output and error together; Stop ends it with
// SIGTERM.
func TestStartAndStop(t *testing.T) {
	p := start(t, "echo starting >&2; echo is ready now; exec sleep 60", waitTimeout)
	if out := p.Output(); !strings.HasPrefix(out, "starting\nis ready now\n") {
		t.Errorf("Output = %q, want the lines up to the ready one", out)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if sig := exitSignal(t, p); sig != syscall.SIGTERM {
		t.Errorf("ended by %v, want SIGTERM", sig)
	}
	p.Kill() // after Stop, it has nothing to do
}

// The ready line may come in pieces, and after other lines in one write.
func TestReadyLineInPieces(t *testing.T) {
	o := &output{want: "ready", ready: make(chan struct{})}
	for _, w := range []string{"one\ntwo\nre", "a", "dy", " at last", "\nmore\n"} {
		select {
		case <-o.ready:
			t.Fatalf("ready before %q", w)
		default:
		}
		_, _ = o.Write([]byte(w))
	}
	select {
	case <-o.ready:
	default:
		t.Fatal("not ready after the ready line")
	}
	if got, want := o.String(), "one\ntwo\nready at last\nmore\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// A process that exits before it is ready, or is not ready in time, is
// an error with its output; the one not ready is killed.
func TestStartFails(t *testing.T) {
	_, err := Start(exec.Command("sh", "-c", "echo oops; exit 3"), "ready", waitTimeout)
	wantError(t, err, "exited (exit status 3) before it was ready", "oops")

	begun := time.Now()
	_, err = Start(exec.Command("sh", "-c", "echo not yet; exec sleep 60"), "ready", short)
	wantError(t, err, "not ready within 300ms", "not yet")
	if took := time.Since(begun); took > waitTimeout {
		t.Errorf("Start took %v, with a timeout of %v", took, short)
	}

	cmd := exec.Command("true")
	cmd.Stderr = new(strings.Builder)
	_, err = Start(cmd, "ready", short)
	wantError(t, err, "output is already taken")
}

// Stop kills a process that does not exit on SIGTERM in time, and says so.
func TestStopKillsTheStubborn(t *testing.T) {
	// An ignored signal stays ignored across exec.
	p := start(t, "trap '' TERM; echo ready; exec sleep 60", short)
	wantError(t, p.Stop(), "did not exit within 300ms of SIGTERM: killed")
	if sig := exitSignal(t, p); sig != syscall.SIGKILL {
		t.Errorf("ended by %v, want SIGKILL", sig)
	}
}

func TestKill(t *testing.T) {
	p := start(t, "echo ready; exec sleep 60", waitTimeout)
	p.Kill()
	if sig := exitSignal(t, p); sig != syscall.SIGKILL {
		t.Errorf("ended by %v, want SIGKILL", sig)
	}
	p.Kill()
	if err := p.Stop(); err != nil {
		t.Errorf("Stop after Kill: %v", err)
	}
	wantError(t, p.Pause(), "SIGSTOP")
}

// A child that keeps the output open does not keep Kill waiting beyond
// the timeout.
func TestKillWithChildHoldingOutput(t *testing.T) {
	p := start(t, "sleep 5 & echo ready; exec sleep 60", short)
	begun := time.Now()
	p.Kill()
	if took := time.Since(begun); took > waitTimeout {
		t.Errorf("Kill took %v, with a timeout of %v", took, short)
	}
}

// Pause returns with the process stopped; Resume lets it go on, and Stop
// ends a paused one too.
func TestPauseAndResume(t *testing.T) {
	p := start(t, "echo ready; exec sleep 60", waitTimeout)
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if st, err := state(p.cmd.Process.Pid); err != nil || !stopped(st) {
		t.Fatalf("state after Pause: %c, %v; want T", st, err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	// SIGCONT, like SIGSTOP, takes effect some time after kill returns.
	if err := p.waitState(func(st byte) bool { return !stopped(st) }); err != nil {
		t.Fatalf("after Resume: %v", err)
	}

	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if sig := exitSignal(t, p); sig != syscall.SIGTERM {
		t.Errorf("ended by %v, want SIGTERM", sig)
	}
}

// StartOnFreePort gives the command a port, and tries another when the
// process does not get ready.
func TestStartOnFreePort(t *testing.T) {
	tries := 0
	p, port, err := StartOnFreePort(3, "ready", waitTimeout, func(port int) *exec.Cmd {
		tries++
		if tries == 1 {
			return exec.Command("sh", "-c", "echo port taken; exit 1")
		}
		return exec.Command("sh", "-c", fmt.Sprintf("echo ready on %d; exec sleep 60", port))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	if want := fmt.Sprintf("ready on %d\n", port); port <= 0 || p.Output() != want {
		t.Errorf("port %d, output %q; want a port, and output %q", port, p.Output(), want)
	}
	if tries != 2 {
		t.Errorf("%d tries, want 2", tries)
	}

	_, _, err = StartOnFreePort(2, "ready", waitTimeout, func(int) *exec.Cmd {
		return exec.Command("sh", "-c", "echo port taken; exit 1")
	})
	wantError(t, err, "attempt 1, port ", "attempt 2, port ", "port taken")
}
