package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loginFrom returns a client whose connections come from the loopback
// address ip. It skips the test if the machine does not route ip to
// itself.
func loginFrom(t *testing.T, addr, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from %s: %v", ip, err)
	}
	c.Close()
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64},
		Timeout:   10 * time.Second,
	}
}

// attempt is one answer to POST /login.
type attempt struct {
	status     int
	body       string
	retryAfter string
	err        error
}

// try posts one login attempt.
func try(ctx context.Context, client *http.Client, addr, nickname, password string) attempt {
	body := url.Values{"nickname": {nickname}, "password": {password}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/login", strings.NewReader(body))
	if err != nil {
		return attempt{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return attempt{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return attempt{status: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After"), err: err}
}

// floodResult counts the answers to a flood of guesses.
type floodResult struct {
	sent      int
	byStatus  map[int]int
	elapsed   time.Duration
	last429   attempt   // the last refusal received
	last429At time.Time // when
}

// flood sends wrong guesses as fast as 32 connections can until n have
// been answered or the time is up.
func flood(t *testing.T, client *http.Client, addr string, n int, limit time.Duration) floodResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		wg      sync.WaitGroup
		r       = floodResult{byStatus: map[int]int{}}
		errs    []error
		started = time.Now()
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				a := try(ctx, client, addr, "sei", "guess")
				mu.Lock()
				switch {
				case a.err != nil && ctx.Err() != nil: // out of time
				case a.err != nil:
					errs = append(errs, a.err)
				default:
					r.sent++
					r.byStatus[a.status]++
					if a.status == http.StatusTooManyRequests {
						r.last429, r.last429At = a, time.Now()
					}
				}
				mu.Unlock()
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(started)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("flood: %v", err)
	}
	return r
}

// 10,000 guesses as fast as possible: the burst and about one a second
// are checked, the rest refused with 429 before the password is looked at.
// Another address is not affected, and once the time the server asked for
// has passed, the right password works again.
func TestLoginThrottle(t *testing.T) {
	srv := start(t) // the defaults: a burst of 5, then one a second
	attacker := loginFrom(t, srv.Ready, "127.0.0.1")

	r := flood(t, attacker, srv.Ready, 10_000, 5*time.Second)
	checked := r.byStatus[http.StatusUnauthorized]
	refused := r.byStatus[http.StatusTooManyRequests]
	t.Logf("%d guesses in %v: %d checked (401), %d refused (429)", r.sent, r.elapsed.Round(time.Millisecond), checked, refused)
	if checked+refused != r.sent {
		t.Errorf("answers by status: %v, want only 401 and 429", r.byStatus)
	}
	// The burst, one per second of the flood, and one for a second begun.
	allowed := defaultLoginBurst + int(r.elapsed/defaultLoginInterval) + 1
	if checked < defaultLoginBurst || checked > allowed {
		t.Errorf("%d guesses checked in %v, want %d to %d", checked, r.elapsed, defaultLoginBurst, allowed)
	}
	if r.sent < 1000 || refused < r.sent*9/10 {
		t.Errorf("%d of %d guesses refused, want most of at least 1000", refused, r.sent)
	}
	secs, err := strconv.Atoi(r.last429.retryAfter)
	if err != nil || secs != 1 {
		t.Fatalf("Retry-After: %q, want 1 (second)", r.last429.retryAfter)
	}
	if want := fmt.Sprintf("too many login attempts from your address; try again in %d s\n", secs); r.last429.body != want {
		t.Errorf("429 body %q, want %q", r.last429.body, want)
	}

	// Another address has its own budget.
	other := loginFrom(t, srv.Ready, "127.0.0.2")
	if a := try(t.Context(), other, srv.Ready, "ann", "guess"); a.err != nil || a.status != http.StatusUnauthorized {
		t.Errorf("a wrong password from 127.0.0.2: %d %q (%v), want 401", a.status, a.body, a.err)
	}
	if a := try(t.Context(), other, srv.Ready, "ann", password); a.err != nil || a.status != http.StatusOK {
		t.Errorf("the password from 127.0.0.2: %d %q (%v), want 200", a.status, a.body, a.err)
	}

	// The attacker's address logs in with the right password once the
	// Retry-After of its last refusal has passed. Waiting for it is what a
	// client should do; what is under test is that the server keeps its
	// word.
	wait := time.NewTimer(time.Until(r.last429At.Add(time.Duration(secs) * time.Second)))
	defer wait.Stop()
	<-wait.C
	if a := try(t.Context(), attacker, srv.Ready, "sei", password); a.err != nil || a.status != http.StatusOK {
		t.Errorf("the password from 127.0.0.1 after Retry-After: %d %q (%v), want 200", a.status, a.body, a.err)
	}
}

// A throttled client is refused before its password is looked at: the
// right one is refused too, with the time to wait.
func TestLoginThrottleBeforePassword(t *testing.T) {
	srv := start(t, "-login-burst", "1", "-login-interval", "1h")
	client := loginFrom(t, srv.Ready, "127.0.0.1")
	if a := try(t.Context(), client, srv.Ready, "sei", "guess"); a.err != nil || a.status != http.StatusUnauthorized {
		t.Fatalf("the first guess: %d %q (%v), want 401", a.status, a.body, a.err)
	}
	a := try(t.Context(), client, srv.Ready, "sei", password)
	want := attempt{
		status:     http.StatusTooManyRequests,
		body:       "too many login attempts from your address; try again in 3600 s\n",
		retryAfter: "3600",
	}
	if a != want {
		t.Errorf("the password after the burst: %+v, want %+v", a, want)
	}
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func addr4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestThrottleBucket(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	th := newLoginThrottle(time.Second, 3, 100, clock.now)
	ip := addr4(1)
	for i := range 3 {
		if wait, err := th.allow(ip); err != nil {
			t.Fatalf("attempt %d of the burst: %v (wait %v)", i+1, err, wait)
		}
	}
	wait, err := th.allow(ip)
	if !errors.Is(err, errTooManyAttempts) || wait != time.Second {
		t.Fatalf("after the burst: %v, wait %v; want errTooManyAttempts, 1s", err, wait)
	}
	clock.advance(400 * time.Millisecond)
	if wait, err := th.allow(ip); !errors.Is(err, errTooManyAttempts) || wait != 600*time.Millisecond {
		t.Fatalf("0.4 s later: %v, wait %v; want errTooManyAttempts, 600ms", err, wait)
	}
	clock.advance(600 * time.Millisecond)
	if _, err := th.allow(ip); err != nil {
		t.Fatalf("1 s later: %v", err)
	}
	if _, err := th.allow(ip); !errors.Is(err, errTooManyAttempts) {
		t.Fatalf("one at a time: %v", err)
	}
	// A refusal takes nothing: one second later there is one attempt.
	clock.advance(time.Second)
	if _, err := th.allow(ip); err != nil {
		t.Fatalf("refusals consumed the bucket: %v", err)
	}
}

// The table forgets full buckets and never holds more than its cap, however
// many addresses an attacker has.
func TestThrottleMemoryBound(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	const limit = 100
	th := newLoginThrottle(time.Second, 5, limit, clock.now)

	// 100,000 addresses, one guess each, within a second.
	refused := 0
	for i := range 100_000 {
		if i%10_000 == 0 {
			clock.advance(100 * time.Millisecond)
		}
		wait, err := th.allow(addr4(i))
		switch {
		case err == nil:
		case errors.Is(err, errTooManyClients) && wait > 0 && wait <= 5*time.Second:
			refused++
		default:
			t.Fatalf("address %d: %v, wait %v", i, err, wait)
		}
		if n := th.len(); n > limit {
			t.Fatalf("%d clients tracked, over the cap of %d", n, limit)
		}
	}
	if refused != 100_000-limit {
		t.Errorf("%d addresses refused, want %d", refused, 100_000-limit)
	}
	// A client the table knows is still counted while it is full...
	if _, err := th.allow(addr4(0)); err != nil {
		t.Errorf("a known client: %v", err)
	}
	// ...and once the buckets have refilled, they are forgotten, and new
	// clients are let in.
	clock.advance(5 * time.Second)
	if _, err := th.allow(addr4(200_000)); err != nil {
		t.Errorf("a new client after the refill: %v", err)
	}
	if n := th.len(); n != 1 {
		t.Errorf("%d clients tracked after the refill, want 1", n)
	}
}

// A client that keeps trying stays known across sweeps: forgetting it
// would hand it a fresh burst.
func TestThrottleSweepKeepsActive(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	th := newLoginThrottle(time.Second, 2, 10, clock.now)
	ip := addr4(7)
	for range 2 {
		th.allow(ip)
	}
	for i := range 10 { // past several sweeps, one attempt a second
		clock.advance(time.Second)
		if _, err := th.allow(ip); err != nil {
			t.Fatalf("second %d: %v", i+1, err)
		}
		if _, err := th.allow(ip); !errors.Is(err, errTooManyAttempts) {
			t.Fatalf("second %d: a second attempt: %v; the bucket was reset", i+1, err)
		}
	}
}

func TestClientKey(t *testing.T) {
	for _, tt := range []struct{ ip, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2::ffff", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
		{"::1", "::"},
		{"not an address", "invalid IP"},
	} {
		if got := clientKey(tt.ip).String(); got != tt.want {
			t.Errorf("clientKey(%q) = %s, want %s", tt.ip, got, tt.want)
		}
	}
}
