package natsbroker_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildServer builds nats-server, at the version go.mod requires, from the
// module cache into a temporary directory, and returns its path: tests that
// stop a server's process (SIGSTOP) need one, which an in-process server is
// not.
func buildServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH, to build nats-server: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "nats-server")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	return bin
}

// serverProcess is a nats-server process with JetStream, on a loopback
// port and a store directory that it keeps across restarts.
type serverProcess struct {
	t    *testing.T
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process's output ends
}

// startProcess starts a nats-server from bin, killed when the test ends.
func startProcess(t *testing.T, bin string) *serverProcess {
	t.Helper()
	p := &serverProcess{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(p.kill)
	// The free port found may be taken before the server binds it: try a
	// few.
	for attempt := range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if err = p.run(); err == nil {
			return p
		}
		t.Logf("nats-server, attempt %d: %v", attempt+1, err)
	}
	t.Fatal("could not start nats-server")
	return nil
}

func (p *serverProcess) url() string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// run starts the process and waits until it logs that it is ready, or
// exits.
func (p *serverProcess) run() error {
	cmd := exec.Command(p.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(p.port), "-js", "-sd", p.dir, "-n", "suite")
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	var log bytes.Buffer
	var logMu sync.Mutex
	// This goroutine ends with the process's output, when it exits.
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "Server is ready") {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		p.mu.Lock()
		p.cmd, p.done = cmd, done
		p.mu.Unlock()
		return nil
	case <-done:
		_ = cmd.Wait()
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	}
	logMu.Lock()
	defer logMu.Unlock()
	return fmt.Errorf("nats-server did not become ready; its output:\n%s", log.String())
}

// current returns the running process, failing the test if there is none.
func (p *serverProcess) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.t.Fatal("nats-server is not running")
	}
	return p.cmd, p.done
}

// stop shuts the server down as an operator would (SIGTERM), waiting for
// it to exit, or kills it if it has not within waitTimeout.
func (p *serverProcess) stop() {
	cmd, done := p.current()
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process handles no signal
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(waitTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
	_ = cmd.Wait()
	p.mu.Lock()
	p.cmd = nil
	p.mu.Unlock()
}

// restart starts the server again on its port and store.
func (p *serverProcess) restart() {
	if err := p.run(); err != nil {
		p.t.Fatalf("restarting nats-server on port %d: %v", p.port, err)
	}
}

// pause stops the process without ending it (SIGSTOP): its connections
// stay open, and what clients send waits, unread, until resume (SIGCONT),
// when the server handles it.
func (p *serverProcess) pause() {
	p.signal(syscall.SIGSTOP)
	cmd, _ := p.current()
	waitStopped(p.t, cmd.Process.Pid)
}

func (p *serverProcess) resume() { p.signal(syscall.SIGCONT) }

func (p *serverProcess) signal(sig syscall.Signal) {
	cmd, _ := p.current()
	if err := cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("nats-server: %v: %v", sig, err)
	}
}

// kill kills the process, if it runs, and waits for it.
func (p *serverProcess) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	_ = cmd.Wait()
}

// waitStopped waits until the process pid is stopped, as SIGSTOP leaves it
// some time after kill returns, failing the test after waitTimeout. Linux
// shows it as state T in /proc/<pid>/stat, which has no event to wait on.
func waitStopped(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for range int(waitTimeout / time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatalf("process %d: %v", pid, err)
		}
		// The state follows the command name, which is in parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'T' || stat[i+2] == 't') {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("process %d not stopped within %v", pid, waitTimeout)
}
