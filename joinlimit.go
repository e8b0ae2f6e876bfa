package chatroom

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of WithJoinLimit.
const (
	// DefaultJoinRate is how many times per second, on average, one client
	// IP may join a room unless WithJoinLimit says otherwise.
	DefaultJoinRate = 20
	// DefaultJoinBurst is how many joins one client IP may make at once.
	DefaultJoinBurst = 100
)

// maxJoinClients bounds the client IPs a room tracks for its join limit.
// Past it, the IPs whose buckets are full again are forgotten; if that is
// not enough, joins from new IPs are not limited: the room never refuses a
// client it has never seen for lack of memory.
const maxJoinClients = 1 << 16

// WithJoinLimit throttles how often one client IP (WithClientIP) may join
// the room: perSecond on average, in bursts of up to burst (defaults
// DefaultJoinRate, 20/s, and DefaultJoinBurst, 100). A connection beyond it
// is refused before the upgrade with HTTP 429 Too Many Requests and a
// Retry-After header. It keeps one client that connects and disconnects in
// a loop from costing every member a stream of join and leave notices.
// perSecond Off turns the limit off, as load tests that connect thousands
// of clients from one address need; a burst with it contradicts it.
func WithJoinLimit(perSecond float64, burst int) Option {
	return func(c *config) { c.joinRate, c.joinBurst = rate.Limit(perSecond), burst }
}

// joinLimiter is a token bucket per client IP.
type joinLimiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*rate.Limiter
	pruneAt int // prune when clients grows to this size
}

// newJoinLimiter returns the room's join limiter, or nil without one.
func (c *config) newJoinLimiter() *joinLimiter {
	if math.IsInf(float64(c.joinRate), 1) {
		return nil
	}
	return &joinLimiter{rate: c.joinRate, burst: c.joinBurst, clients: make(map[string]*rate.Limiter), pruneAt: 1024}
}

// allow takes a token for ip, or reports how long until there is one.
func (l *joinLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[ip]
	if b == nil {
		if len(l.clients) >= l.pruneAt {
			l.pruneLocked(now)
		}
		if len(l.clients) >= maxJoinClients {
			return true, 0
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.clients[ip] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// pruneLocked forgets the IPs whose buckets are full: they are as good as
// new. l.mu is held.
func (l *joinLimiter) pruneLocked(now time.Time) {
	for ip, b := range l.clients {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, ip)
		}
	}
	l.pruneAt = max(1024, 2*len(l.clients))
}

// refuseJoin answers a request over the join limit, and reports whether it
// did.
func (rm *Room) refuseJoin(w http.ResponseWriter, r *http.Request) bool {
	if rm.joins == nil {
		return false
	}
	ok, wait := rm.joins.allow(rm.cfg.clientIP(r), time.Now())
	if ok {
		return false
	}
	rm.cfg.log.Debug("chatroom: join limited", "room", rm.cfg.name, "remote", r.RemoteAddr, "retry_after", wait)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	http.Error(w, reasonTooManyJoins, http.StatusTooManyRequests)
	return true
}

// reasonTooManyJoins is the body of a 429 answer; part of the documented
// protocol.
const reasonTooManyJoins = "too many joins from this address; retry later"
