package main

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the login throttle.
const (
	// defaultLoginBurst attempts a client may make at once: enough for a
	// user who mistypes a few times.
	defaultLoginBurst = 5
	// defaultLoginInterval is how often a client may try once its burst is
	// spent. One guess a second from an address is a few dozen a minute, for
	// a person who is trying to remember a password; for a password-guessing
	// program it is 10,000 times slower than the server could check them.
	defaultLoginInterval = time.Second
	// maxLoginClients bounds the throttle's table: about 150 bytes per
	// client, so 1.5 MB at most. Beyond it, clients the table does not know
	// are refused until entries expire.
	maxLoginClients = 10_000
)

// Why the throttle refuses a login attempt. The client reads them, with how
// long to wait.
var (
	errTooManyAttempts = errors.New("too many login attempts from your address")
	errTooManyClients  = errors.New("too many clients are logging in")
)

// loginThrottle limits login attempts per client with a token bucket each:
// a burst of attempts, then one per interval.
//
// Its memory is bounded. A client whose bucket has filled up again (it made
// no attempt for burst × interval) is in the same state as one never seen,
// so it is forgotten: the table is swept of full buckets at most once per
// that time, which costs nothing to a client and keeps only those who tried
// recently. An attacker with many addresses could still make many of them
// recent, so the table holds at most maxClients clients; while it is full, a client
// it does not know is refused (errTooManyClients). Evicting a known one
// instead would hand it a fresh burst, which is what an attacker cycling
// through addresses wants.
type loginThrottle struct {
	interval   time.Duration
	burst      int
	maxClients int
	now        func() time.Time

	mu      sync.Mutex
	clients map[netip.Addr]*rate.Limiter
	swept   time.Time // when clients was last swept of full buckets
}

// newLoginThrottle returns a throttle that lets each client make burst
// attempts, then one per interval, and tracks at most maxClients clients.
func newLoginThrottle(interval time.Duration, burst, maxClients int, now func() time.Time) *loginThrottle {
	return &loginThrottle{
		interval:   interval,
		burst:      burst,
		maxClients: maxClients,
		now:        now,
		clients:    make(map[netip.Addr]*rate.Limiter),
	}
}

// refill is how long an unused bucket takes to fill up.
func (t *loginThrottle) refill() time.Duration { return t.interval * time.Duration(t.burst) }

// allow takes an attempt from client's bucket. If it cannot, it returns why,
// and how long the client should wait before it tries again.
func (t *loginThrottle) allow(client netip.Addr) (time.Duration, error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.swept) >= t.refill() {
		t.sweep(now)
	}
	lim, ok := t.clients[client]
	if !ok {
		if len(t.clients) >= t.maxClients {
			return t.swept.Add(t.refill()).Sub(now), errTooManyClients
		}
		lim = rate.NewLimiter(rate.Every(t.interval), t.burst)
		t.clients[client] = lim
	}
	if !lim.AllowN(now, 1) {
		return time.Duration((1 - lim.TokensAt(now)) * float64(t.interval)), errTooManyAttempts
	}
	return 0, nil
}

// sweep forgets the clients whose buckets are full.
func (t *loginThrottle) sweep(now time.Time) {
	for client, lim := range t.clients {
		if lim.TokensAt(now) >= float64(t.burst) {
			delete(t.clients, client)
		}
	}
	t.swept = now
}

// len returns how many clients the throttle tracks.
func (t *loginThrottle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}

// clientKey is what a client's attempts are counted against: its IPv4
// address, or the /64 network of its IPv6 address, since a single
// subscriber commonly has a whole /64 and could otherwise take a fresh
// bucket per address. Addresses that do not parse share the zero key.
func clientKey(ip string) netip.Addr {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64) // cannot fail: 64 bits of an IPv6 address
		return p.Addr()
	}
	return a
}
