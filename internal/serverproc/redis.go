//go:build unix

package serverproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// ErrNoRedis is returned by StartRedis when PATH has no redis-server.
var ErrNoRedis = errors.New("serverproc: redis-server not found on PATH")

// redisReady is what redis-server logs when it takes clients.
const redisReady = "Ready to accept connections"

// Redis is a redis-server of its own, without persistence, in a directory
// of its own, on a loopback port, that a test can kill, pause and start
// again, empty, on the same port. It is safe for concurrent use.
type Redis struct {
	Port    int
	path    string
	dir     string
	args    []string
	timeout time.Duration

	mu   sync.Mutex
	proc *Process // nil while killed
}

// StartRedis starts redis-server from PATH on a free loopback port, with
// the arguments args besides; timeout bounds its start and each restart
// (see Start).
func StartRedis(timeout time.Duration, args ...string) (*Redis, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedis
	}
	dir, err := os.MkdirTemp("", "serverproc-redis-")
	if err != nil {
		return nil, fmt.Errorf("serverproc: %w", err)
	}
	r := &Redis{path: path, dir: dir, args: args, timeout: timeout}
	r.proc, r.Port, err = StartOnFreePort(5, redisReady, timeout, r.command)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// command runs redis-server on port, without persistence.
func (r *Redis) command(port int) *exec.Cmd {
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
	}, r.args...)
	return exec.Command(r.path, args...)
}

// Addr returns the server's address, host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// Process returns the running process, or nil while it is killed.
func (r *Redis) Process() *Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// Kill kills the server at once, as a crash would, and waits for it.
func (r *Redis) Kill() {
	r.mu.Lock()
	proc := r.proc
	r.proc = nil
	r.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
}

// Restart kills the server if it runs, and starts it again on the same
// port, empty.
func (r *Redis) Restart() error {
	r.Kill()
	proc, err := Start(r.command(r.Port), redisReady, r.timeout)
	if err != nil {
		return fmt.Errorf("serverproc: restarting redis-server on port %d: %w", r.Port, err)
	}
	r.mu.Lock()
	r.proc = proc
	r.mu.Unlock()
	return nil
}

// Close kills the server and removes its directory.
func (r *Redis) Close() error {
	r.Kill()
	return os.RemoveAll(r.dir)
}
