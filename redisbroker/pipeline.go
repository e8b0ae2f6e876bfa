package redisbroker

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom/broker"
)

// How this file works.
//
// SendBatch (broker.PipelineBroker) lets a room hand Redis its next batch
// while Redis has not answered for those before. Redis runs the commands of
// one connection in the order they arrive, so the batches' scripts run in
// the order they were written; but go-redis spreads commands over a pool of
// connections, where two in flight could run in either order, and its
// autopipelining (v9.23, experimental) does not fit either: its ordered
// half-duplex mode sends one batch of commands per round trip, which is
// the wait this is meant to avoid, and its full-duplex mode runs a command
// whose reply is a retryable error (LOADING, READONLY) again through the
// ordinary path, off the ordered stream; and redis.Script falls back from
// EVALSHA to EVAL as a second command, after the batches written behind
// the first. So the broker has a connection of
// its own for the publish script (a pipe), which it dials with the client's
// options: SendBatch queues a batch's EVALSHA, one goroutine writes what is
// queued, in order, and another reads the replies, which come in the same
// order, and hands each to the batch's wait.
//
// Retries would reorder too: a batch tried again goes after those written
// behind it. So the pipe exists only when the client runs each command at
// most once (runsOnce), and never retries itself, with one exception that
// keeps the order:
//
// NOSCRIPT. Redis forgets scripts on SCRIPT FLUSH (and a new server, after
// a restart or a failover, has none). A batch whose EVALSHA finds no script
// did not run, and must be sent again after SCRIPT LOAD; so must every
// batch written after it. If another client could load the script in the
// meantime, one of those could run before the first one's second attempt,
// out of order. So the pipe's script is publishScript with a comment that
// is this broker's own (a random token): its SHA is unknown to every other
// client, and only the pipe loads it. Once one EVALSHA finds no script,
// every one written after it on the connection finds none either, until
// the pipe's next SCRIPT LOAD; the reader puts that SCRIPT LOAD, then all
// those batches in their order, ahead of what is not written yet, and
// drops the NOSCRIPT replies still to come for them. Every connection
// begins with SCRIPT LOAD, so that this happens only when a SCRIPT FLUSH
// comes while the connection is open. Each Broker adds its script (about
// 3.5 KB) to Redis's cache, where it stays until a SCRIPT FLUSH.
//
// Failures. A connection that breaks, or on which a batch is not answered
// within its context (the broker's timeout, WithTimeout), is closed, and
// what it still owes fails: the batches already written may have run (the
// error leaves the outcome open, as Publish's does), those not written
// certainly did not (broker.ErrUnavailable). The next SendBatch dials
// again.

// maxScriptTries bounds how often a batch is sent after NOSCRIPT: a Redis
// whose scripts are flushed again and again refuses it in the end.
const maxScriptTries = 3

// pipe is the broker's connection of its own for SendBatch, dialed when
// first needed and again after a failure.
type pipe struct {
	opts *redis.Options
	sha  string // of the pipe's own publish script
	load []byte // SCRIPT LOAD of it, encoded
	ctx  context.Context

	mu     sync.Mutex
	conn   *pipeConn // nil before the first SendBatch, and after a failure
	closed bool
	wg     sync.WaitGroup // every connection's writer and reader
}

// newPipe returns the pipe of a broker on client, or nil if the client's
// commands could be run again or on other connections, or its connections
// need what the pipe does not do: a client that is not a *redis.Client, or
// that retries (MaxRetries other than -1), has an OnConnect hook, or gets
// its credentials from a StreamingCredentialsProvider. ctx ends dials.
func newPipe(ctx context.Context, client redis.UniversalClient) *pipe {
	c, ok := client.(*redis.Client)
	if !ok || !runsOnce(client) {
		return nil
	}
	opts := c.Options()
	if opts.Dialer == nil || opts.OnConnect != nil || opts.StreamingCredentialsProvider != nil {
		return nil
	}
	var token [12]byte
	_, _ = rand.Read(token[:])
	src := publishSource + "-- redisbroker pipe " + hex.EncodeToString(token[:]) + "\n"
	sum := sha1.Sum([]byte(src))
	return &pipe{
		opts: opts,
		sha:  hex.EncodeToString(sum[:]),
		load: appendCommand(nil, "SCRIPT", "LOAD", src),
		ctx:  ctx,
	}
}

// SendBatch implements broker.PipelineBroker: it queues ps for Redis as
// PublishBatch would publish them, and returns at once with a wait for
// Redis's answer. With a *redis.Client that runs each command once
// (MaxRetries -1, as the README recommends), batches go on a connection of
// the broker's own, written in order and answered in order, so that up to
// as many as the room sends are in flight at once; with any other client
// SendBatch publishes ps as PublishBatch does before it returns (one batch
// in flight). It fails as Publish does; wait's error leaves the outcome
// open, except with broker.ErrUnavailable.
func (b *Broker) SendBatch(ctx context.Context, room string, ps []broker.Publication) (wait func() error, err error) {
	if b.pipe == nil {
		if err := b.PublishBatch(ctx, room, ps); err != nil {
			return nil, err
		}
		return func() error { return nil }, nil
	}
	k, err := b.publishable(room)
	if err != nil {
		return nil, err
	}
	ctx, cancel := b.opContext(ctx)
	args := append([]any{"EVALSHA", b.pipe.sha, 4}, anys(k.publishKeys())...)
	a, err := b.pipe.send(ctx, appendCommand(nil, append(args, b.publishArgs(k, ps)...)...))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("redisbroker: publish to room %q: %w", room, err)
	}
	return func() error {
		defer cancel()
		select {
		case <-a.done:
		case <-ctx.Done():
			// Redis hangs, or the connection died unseen: answers that
			// come later are of no use to anyone.
			a.conn.fail(fmt.Errorf("no answer from Redis: %w", ctx.Err()))
			<-a.done
		}
		if a.err != nil {
			return fmt.Errorf("redisbroker: publish to room %q: %w", room, a.err)
		}
		return nil
	}, nil
}

func anys(ss []string) []any {
	r := make([]any, len(ss))
	for i, s := range ss {
		r[i] = s
	}
	return r
}

// answer is what Redis replied to a batch, once done is closed.
type answer struct {
	conn *pipeConn
	done chan struct{}
	err  error
}

func (a *answer) finish(err error) {
	a.err = err
	close(a.done)
}

// send queues cmd on the pipe's connection, dialing it first if there is
// none, within ctx.
func (p *pipe) send(ctx context.Context, cmd []byte) (*answer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.closed {
			return nil, errClosed("publish")
		}
		c := p.conn
		if c == nil {
			// Dialing under the lock: the rooms that send meanwhile wait
			// for this connection rather than dial their own.
			var err error
			if c, err = p.dial(ctx); err != nil {
				return nil, fmt.Errorf("%w (%w)", err, broker.ErrUnavailable)
			}
			p.conn = c
		}
		a := &answer{conn: c, done: make(chan struct{})}
		if c.queue(&request{cmd: cmd, ans: a}) {
			return a, nil
		}
		if p.conn == c {
			p.conn = nil // it failed just now: dial again
		}
	}
}

// close fails the connection and waits for its goroutines to end.
func (p *pipe) close() {
	p.mu.Lock()
	p.closed = true
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		c.fail(errClosed("publish"))
	}
	p.wg.Wait()
}

// forget drops c, which failed, so that the next send dials again.
func (p *pipe) forget(c *pipeConn) {
	p.mu.Lock()
	if p.conn == c {
		p.conn = nil
	}
	p.mu.Unlock()
}

// dial connects to Redis as the client would, authenticates and selects
// the client's database, and starts the connection's writer and reader
// with the script's SCRIPT LOAD queued first.
func (p *pipe) dial(ctx context.Context) (*pipeConn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel) // Close abandons a dial
	defer stop()
	nc, err := p.opts.Dialer(ctx, p.opts.Network, p.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	rd := bufio.NewReaderSize(nc, 16<<10)
	if err := p.handshake(ctx, nc, rd); err != nil {
		_ = nc.Close()
		return nil, err
	}
	c := &pipeConn{p: p, nc: nc, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.out = []*request{{cmd: p.load, load: true}}
	p.wg.Add(2)
	go c.write()
	go c.read(rd)
	c.signal()
	return c, nil
}

// handshake sends what go-redis would on a new connection for the
// client's options (AUTH, SELECT, CLIENT SETNAME), within ctx. The
// connection speaks RESP2: the replies it reads are plain.
func (p *pipe) handshake(ctx context.Context, nc net.Conn, rd *bufio.Reader) error {
	var cmds [][]any
	user, pass := p.opts.Username, p.opts.Password
	switch {
	case p.opts.CredentialsProviderContext != nil:
		var err error
		if user, pass, err = p.opts.CredentialsProviderContext(ctx); err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
	case p.opts.CredentialsProvider != nil:
		user, pass = p.opts.CredentialsProvider()
	}
	switch {
	case pass != "" && user != "":
		cmds = append(cmds, []any{"AUTH", user, pass})
	case pass != "":
		cmds = append(cmds, []any{"AUTH", pass})
	}
	if p.opts.DB != 0 {
		cmds = append(cmds, []any{"SELECT", p.opts.DB})
	}
	if p.opts.ClientName != "" {
		cmds = append(cmds, []any{"CLIENT", "SETNAME", p.opts.ClientName})
	}
	if len(cmds) == 0 {
		return nil
	}
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
		defer func() { _ = nc.SetDeadline(time.Time{}) }()
	}
	var buf []byte
	for _, cmd := range cmds {
		buf = appendCommand(buf, cmd...)
	}
	if _, err := nc.Write(buf); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	for _, cmd := range cmds {
		reply, err := readReply(rd)
		if err == nil && reply != nil {
			err = reply
		}
		if err != nil {
			return fmt.Errorf("handshake: %v: %w", cmd[0], err)
		}
	}
	return nil
}

// pipeConn is one connection of the pipe.
type pipeConn struct {
	p    *pipe
	nc   net.Conn
	wake chan struct{} // tells the writer about out
	done chan struct{} // closed by fail

	mu       sync.Mutex
	out      []*request // not written yet, in order
	inflight []*request // written, in order: their replies come in this order
	err      error      // why the connection failed; nil while it works
}

// request is a command on a pipeConn.
type request struct {
	cmd   []byte
	load  bool    // SCRIPT LOAD: its error fails the connection
	ans   *answer // nil: the reply is dropped
	tries int     // NOSCRIPT replies so far
}

// queue adds r to what the writer writes, unless c has failed.
func (c *pipeConn) queue(r *request) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.out = append(c.out, r)
	c.signal()
	return true
}

func (c *pipeConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default: // woken already
	}
}

// write writes what is queued, in order, in one system call each time it
// wakes: what several rooms queue meanwhile goes together.
func (c *pipeConn) write() {
	defer c.p.wg.Done()
	var buf []byte
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return
		}
		buf = buf[:0]
		for _, r := range c.out {
			buf = append(buf, r.cmd...)
		}
		// In flight before they are written: a reply cannot come sooner.
		c.inflight = append(c.inflight, c.out...)
		clear(c.out)
		c.out = c.out[:0]
		c.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		// No deadline: a batch's wait ends the connection when Redis does
		// not answer within the batch's context, and this write with it.
		if _, err := c.nc.Write(buf); err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// read reads the replies and hands each to its request, in order.
func (c *pipeConn) read(rd *bufio.Reader) {
	defer c.p.wg.Done()
	for {
		reply, err := readReply(rd)
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		c.mu.Lock()
		if len(c.inflight) == 0 {
			c.mu.Unlock()
			c.fail(errors.New("read: a reply to no command"))
			return
		}
		r := c.inflight[0]
		c.inflight[0] = nil
		c.inflight = c.inflight[1:]
		switch {
		case r.load && reply != nil:
			c.mu.Unlock()
			c.fail(fmt.Errorf("SCRIPT LOAD: %w", reply))
			return
		case r.load || r.ans == nil:
		case isNoScript(reply) && r.tries+1 < maxScriptTries:
			c.resendLocked(r)
		case isNoScript(reply):
			// It did not run.
			r.ans.finish(fmt.Errorf("%w (%w)", reply, broker.ErrUnavailable))
		default:
			r.ans.finish(reply)
		}
		c.mu.Unlock()
	}
}

// resendLocked handles a NOSCRIPT reply to r: it queues SCRIPT LOAD, r
// and every batch written after r, in their order, ahead of what is not
// written yet (see the top of this file); the replies still to come for
// those written are dropped. c.mu is held.
func (c *pipeConn) resendLocked(r *request) {
	again := []*request{{cmd: c.p.load, load: true}, {cmd: r.cmd, ans: r.ans, tries: r.tries + 1}}
	for i, w := range c.inflight {
		if w.ans != nil {
			again = append(again, &request{cmd: w.cmd, ans: w.ans, tries: w.tries + 1})
			c.inflight[i] = &request{}
		}
	}
	c.out = append(again, c.out...)
	c.signal()
}

// fail closes the connection, if it is not closed already, and fails what
// it owes: with err for what was written, which may have run, and with
// err and broker.ErrUnavailable for what was not.
func (c *pipeConn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	inflight, out := c.inflight, c.out
	c.inflight, c.out = nil, nil
	c.mu.Unlock()
	close(c.done)
	_ = c.nc.Close()
	c.p.forget(c)
	for _, r := range inflight {
		if r.ans != nil {
			r.ans.finish(err)
		}
	}
	unsent := err
	if !errors.Is(err, broker.ErrUnavailable) {
		unsent = fmt.Errorf("%w (%w)", err, broker.ErrUnavailable)
	}
	for _, r := range out {
		if r.ans != nil {
			r.ans.finish(unsent)
		}
	}
}

// replyError is an error reply of Redis.
type replyError string

func (e replyError) Error() string { return string(e) }

func isNoScript(err error) bool {
	var e replyError
	return errors.As(err, &e) && strings.HasPrefix(string(e), "NOSCRIPT")
}

// appendCommand appends args to b as a RESP command. Arguments are
// strings, byte slices or integers.
func appendCommand(b []byte, args ...any) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		var s []byte
		switch a := a.(type) {
		case string:
			s = []byte(a)
		case []byte:
			s = a
		case int:
			s = strconv.AppendInt(nil, int64(a), 10)
		case int64:
			s = strconv.AppendInt(nil, a, 10)
		default:
			panic(fmt.Sprintf("redisbroker: appendCommand: argument of type %T", a))
		}
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, '\r', '\n')
		b = append(b, s...)
		b = append(b, '\r', '\n')
	}
	return b
}

// readReply reads one RESP2 reply and returns the error Redis replied
// with (a replyError), if it did, or the error reading it. The content of
// other replies is not needed.
func readReply(rd *bufio.Reader) (reply error, err error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("malformed reply %q", line)
	}
	line = line[:len(line)-2]
	switch line[0] {
	case '+', ':':
		return nil, nil
	case '-':
		return replyError(line[1:]), nil
	case '$':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil {
			return nil, fmt.Errorf("malformed reply %q", line)
		}
		if n >= 0 {
			_, err = rd.Discard(n + 2)
		}
		return nil, err
	case '*':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil {
			return nil, fmt.Errorf("malformed reply %q", line)
		}
		for range n {
			if _, err := readReply(rd); err != nil {
				return nil, err
			}
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("unexpected reply %q", line)
	}
}
