package natsbroker_test

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/seed014c2c51/chatroom/internal/serverproc"
)

// buildServer builds nats-server, at the version go.mod requires, from the
// module cache into a temporary directory, and returns its path: tests that
// stop a server's process (SIGSTOP) need one, which an in-process server is
// not.
func buildServer(t testing.TB) string {
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
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	proc *serverproc.Process // nil while stopped
}

// readyLine is what nats-server logs when it takes clients.
const readyLine = "Server is ready"

// startProcess starts a nats-server from bin, killed when the test ends.
func startProcess(t testing.TB, bin string) *serverProcess {
	t.Helper()
	p := &serverProcess{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(p.kill)
	proc, port, err := serverproc.StartOnFreePort(5, readyLine, waitTimeout, p.command)
	if err != nil {
		t.Fatalf("could not start nats-server: %v", err)
	}
	p.proc, p.port = proc, port
	return p
}

func (p *serverProcess) command(port int) *exec.Cmd {
	return exec.Command(p.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", p.dir, "-n", "suite")
}

func (p *serverProcess) url() string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// current returns the running process, failing the test if there is none.
func (p *serverProcess) current() *serverproc.Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		p.t.Fatal("nats-server is not running")
	}
	return p.proc
}

// stop shuts the server down as an operator would (SIGTERM), waiting for
// it to exit, or kills it if it has not within waitTimeout.
func (p *serverProcess) stop() {
	if err := p.current().Stop(); err != nil {
		p.t.Log(err)
	}
	p.mu.Lock()
	p.proc = nil
	p.mu.Unlock()
}

// restart starts the server again on its port and store.
func (p *serverProcess) restart() {
	proc, err := serverproc.Start(p.command(p.port), readyLine, waitTimeout)
	if err != nil {
		p.t.Fatalf("restarting nats-server on port %d: %v", p.port, err)
	}
	p.mu.Lock()
	p.proc = proc
	p.mu.Unlock()
}

// pause stops the process without ending it (SIGSTOP): its connections
// stay open, and what clients send waits, unread, until resume (SIGCONT),
// when the server handles it.
func (p *serverProcess) pause() {
	if err := p.current().Pause(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *serverProcess) resume() {
	if err := p.current().Resume(); err != nil {
		p.t.Fatal(err)
	}
}

// kill kills the process, if it runs, and waits for it.
func (p *serverProcess) kill() {
	p.mu.Lock()
	proc := p.proc
	p.proc = nil
	p.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
}
