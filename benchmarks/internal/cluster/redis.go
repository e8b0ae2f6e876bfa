package cluster

import (
	"bufio"
	"context"
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

	"github.com/redis/go-redis/v9"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/redisbroker"
)

// startRedis connects one client and one broker per node to cfg.RedisURL,
// or to a redis-server it starts.
func (c *Cluster) startRedis(cfg Config) ([]broker.Broker, error) {
	url := cfg.RedisURL
	if url == "" {
		p, err := startRedisServer(cfg.RedisServer)
		if err != nil {
			return nil, err
		}
		c.BrokerPID = p.cmd.Process.Pid
		c.kill = p.stop
		url = "redis://" + p.addr
		cfg.logf("started redis-server pid %d on %s", c.BrokerPID, p.addr)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster: redis url: %w", err)
	}
	if err := loopbackAddr(opts.Addr); err != nil {
		return nil, err
	}
	// As redisbroker.WithTimeout advises: let the broker's timeouts bound
	// reads and writes too, so that Publish fails fast when Redis hangs.
	opts.ContextTimeoutEnabled = true
	var brokers []broker.Broker
	for i := range cfg.Nodes {
		client := redis.NewClient(opts)
		c.closers = append(c.closers, client.Close)
		if i == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := client.Ping(ctx).Err()
			cancel()
			if err != nil {
				return nil, fmt.Errorf("cluster: redis at %s: %w", opts.Addr, err)
			}
		}
		b := redisbroker.New(client) // the adapter's defaults, history of 100 included
		c.closers = append(c.closers, b.Close)
		brokers = append(brokers, b)
	}
	return brokers, nil
}

// loopbackAddr refuses a HOST:PORT whose host is not a loopback IP.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("cluster: broker address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("cluster: broker address %q: host must be a loopback IP", addr)
	}
	return nil
}

// redisProcess is a redis-server that startRedisServer started.
type redisProcess struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when it has exited
	once sync.Once
}

// startRedisServer starts bin (default "redis-server" from PATH) on a free
// loopback port, without persistence, and waits until it answers PING. It
// tries three ports, in case another process takes the one it picked.
func startRedisServer(bin string) (*redisProcess, error) {
	if bin == "" {
		bin = "redis-server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w (install redis-server, or pass a Redis URL)", err)
	}
	var lastErr error
	for range 3 {
		p, err := tryRedisServer(path)
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func tryRedisServer(path string) (*redisProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Without persistence it writes no file, so nothing is left behind
	// even if it is killed; its log, on stdout, is kept in memory and
	// quoted in errors.
	log := &logTail{}
	cmd := exec.Command(path,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", os.TempDir(),
		"--daemonize", "no", "--loglevel", "warning", "--logfile", "")
	cmd.Stdout, cmd.Stderr = log, log
	// Should this process die without stopping it (SIGKILL), the kernel
	// kills redis-server too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cluster: starting redis-server: %w", err)
	}
	p := &redisProcess{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }() // ends when the process does; stop waits for it

	deadline := time.Now().Add(5 * time.Second)
	for {
		err := ping(addr)
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			p.stop()
			return nil, fmt.Errorf("cluster: redis-server on %s exited at start (%v): %s", addr, cmd.ProcessState, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("cluster: redis-server on %s did not answer within 5s (%w): %s", addr, err, log)
		}
	}
}

// stop terminates redis-server, kills it if it has not exited within 2 s,
// and waits for it. It may be called more than once.
func (p *redisProcess) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// ping sends PING to the Redis server at addr and expects +PONG, within a
// second.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if reply != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

// logTail keeps the last 4 KiB written to it.
type logTail struct {
	mu  sync.Mutex
	buf []byte
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - 4096; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	return len(p), nil
}

// String returns the last three lines, on one line.
func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(l.buf)), "\n")
	return strings.Join(lines[max(len(lines)-3, 0):], " | ")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("cluster: listener without a TCP address")
	}
	return addr.Port, nil
}
