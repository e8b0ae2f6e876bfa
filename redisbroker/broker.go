// Package redisbroker is a broker.Broker on Redis: it joins the rooms of
// one name on several nodes through Redis pub/sub, numbers and keeps their
// history in Redis streams (broker.HistoryBroker), takes each keyed
// publication once, so that a client's resend is harmless on any node
// (broker.DedupBroker), and records which nicknames each node has in a room
// (broker.PresenceBroker).
//
// It is a nested module, so that the chatroom library does not depend on a
// Redis client:
//
//	go get github.com/seed014c2c51/chatroom/redisbroker
//
// The host creates and owns the go-redis client; see the README for the
// client options that keep Publish fast when Redis is down, the keys the
// broker uses, and what an outage loses.
package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom/broker"
)

// Defaults of the options.
const (
	DefaultKeyPrefix           = "chatroom"
	DefaultHistorySize         = 100
	DefaultHistoryTTL          = 24 * time.Hour
	DefaultTimeout             = time.Second
	DefaultHealthCheckInterval = 5 * time.Second
)

// Broker is a broker.HistoryBroker, broker.DedupBroker and
// broker.PresenceBroker on Redis.
// Create it with New; it is safe for concurrent use. Close it when done: from
// the first Subscribe on, it owns a pub/sub connection and three goroutines.
type Broker struct {
	client redis.UniversalClient
	cfg    config
	prefix string // escaped, with its ':'
	once   bool   // the client runs each command at most once (see runsOnce)

	// ctx is cancelled by Close, to abandon the pub/sub connection's dials
	// and writes in progress.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	ps     *redis.PubSub            // nil until the first Subscribe
	chans  map[string]*channelState // the channels subscribed to, by name
	ops    []op                     // for the writer, in order
	wake   chan struct{}            // tells the writer about ops
	pings  map[string]*pending      // PINGs sent, by payload
	tokens uint64                   // PING payloads given
	done   chan struct{}            // closed by Close
	wg     sync.WaitGroup           // the reader, writer and health checker
	active atomic.Uint64            // replies the reader received
	broken atomic.Uint64            // errors the reader received
}

// Compile-time checks that Broker implements what it promises.
var (
	_ broker.HistoryBroker  = (*Broker)(nil)
	_ broker.DedupBroker    = (*Broker)(nil)
	_ broker.PresenceBroker = (*Broker)(nil)
)

type config struct {
	prefix      string
	historySize int
	historyTTL  time.Duration
	timeout     time.Duration
	healthCheck time.Duration
}

// An Option configures a Broker.
type Option func(*config)

// WithKeyPrefix sets the prefix of every key and channel the broker uses
// (default DefaultKeyPrefix): brokers with different prefixes, on one
// Redis, are independent. An empty prefix is allowed.
func WithKeyPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithHistorySize sets how many kept publications each room keeps for
// History (default DefaultHistorySize). With 0, kept publications are still
// numbered, so that they are delivered in order and resuming clients learn
// what they missed, but none is kept: History returns nothing, and is
// complete only for the last ID. A negative n counts as 0. The nodes of a
// cluster must agree on it: each publication trims the history to its
// publisher's size.
func WithHistorySize(n int) Option {
	return func(c *config) { c.historySize = max(n, 0) }
}

// WithHistoryTTL sets how long a room's numbering and history stay in Redis
// after its last kept publication (default DefaultHistoryTTL); 0 keeps them
// until Redis drops them. When they expire, the room's next kept
// publication begins a new numbering, from the clock: clients resuming with
// an older ID then learn that their history is incomplete. Each kept
// publication sets its publisher's TTL.
func WithHistoryTTL(d time.Duration) Option {
	return func(c *config) { c.historyTTL = max(d, 0) }
}

// WithTimeout bounds each of the broker's calls to Redis (Publish, History,
// SetPresence, Presence, and Subscribe's wait for Redis to confirm; default
// DefaultTimeout), unless the caller's context ends sooner; 0 leaves them to
// the context alone. It is what keeps Publish from blocking the room when
// Redis is unreachable without refusing connections; for go-redis to apply
// it to reads and writes as well as dials, set ContextTimeoutEnabled in the
// client's options (see the README).
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = max(d, 0) }
}

// WithHealthCheckInterval sets how often the broker checks its pub/sub
// connection when nothing arrives on it (default
// DefaultHealthCheckInterval): it sends a PING, and if neither the reply
// nor anything else has arrived one interval later, it drops the connection
// and subscribes again on a new one. This finds connections that died
// without being closed (a peer that vanished, a network partition), which
// would otherwise stop deliveries silently. 0 disables the check.
func WithHealthCheckInterval(d time.Duration) Option {
	return func(c *config) { c.healthCheck = max(d, 0) }
}

// New returns a broker that uses client, which the host keeps owning:
// Close does not close it. client may be a *redis.Client (including one
// from redis.NewFailoverClient, for Sentinel) or a *redis.ClusterClient:
// each room's keys share a hash tag, so its scripts run in one slot, and
// PUBLISH reaches every node of a cluster. A *redis.Ring is not supported,
// and New panics with it: a Ring's shards do not share pub/sub, so the
// broker's one pub/sub connection would miss the rooms of the other shards.
func New(client redis.UniversalClient, opts ...Option) *Broker {
	if _, ok := client.(*redis.Ring); ok {
		panic("redisbroker: New: a *redis.Ring is not supported (its shards do not share pub/sub); use a Client or a ClusterClient")
	}
	cfg := config{
		prefix:      DefaultKeyPrefix,
		historySize: DefaultHistorySize,
		historyTTL:  DefaultHistoryTTL,
		timeout:     DefaultTimeout,
		healthCheck: DefaultHealthCheckInterval,
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Broker{
		client: client,
		cfg:    cfg,
		prefix: keyPrefix(cfg.prefix),
		once:   runsOnce(client),
		ctx:    ctx,
		cancel: cancel,
		chans:  make(map[string]*channelState),
		pings:  make(map[string]*pending),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// opContext bounds ctx by the broker's timeout.
func (b *Broker) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.cfg.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, b.cfg.timeout)
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func errClosed(op string) error {
	return fmt.Errorf("redisbroker: %s: %w", op, broker.ErrClosed)
}

// ErrNotSubscribed is what Publish returns, wrapped together with
// broker.ErrUnavailable, for a room that this broker subscribes to while
// Redis has not confirmed that subscription on the current connection:
// Redis is unreachable, or the broker is reconnecting. Redis might accept
// the publication, but this node's own subscriptions would not receive it;
// Publish sends nothing, and the room delivers the publication to its own
// members instead (see chatroom.WithBroker).
var ErrNotSubscribed = errors.New("redisbroker: subscription not confirmed by Redis (unreachable or reconnecting)")

// Publish implements broker.Broker. A kept publication (p.Keep) is
// numbered, added to the room's history and published in one Lua script;
// one that is not kept is published with ID 0 and not stored. Publish
// returns an error, without retrying beyond what the client's options say,
// when Redis cannot be reached, and ErrNotSubscribed while this broker's
// own subscription to the room is not confirmed.
//
// The error wraps broker.ErrUnavailable when the command certainly never
// reached Redis: the subscription is not confirmed, the broker or the
// client is closed, or, with a *redis.Client that does not retry commands
// (MaxRetries -1, as the README recommends), it could not connect or get a
// connection from its pool. Any other error (a timeout, a connection that
// broke after the command was written) leaves the outcome open: Redis may
// have run the command, or run it later, as a Redis that hung does when it
// resumes.
func (b *Broker) Publish(ctx context.Context, room string, p broker.Publication) error {
	if !p.Keep && p.Key == "" {
		return b.publish(ctx, room, func(ctx context.Context, k roomKeys) error {
			return b.client.Publish(ctx, k.channel, encodePayload(0, p.Data)).Err()
		})
	}
	return b.PublishBatch(ctx, room, []broker.Publication{p})
}

// PublishBatch implements broker.BatchBroker: ps are numbered, kept and
// published in order by one run of the Lua script Publish uses, so that a
// batch costs one round trip and either all of it or none of it is
// published. It fails as Publish does.
func (b *Broker) PublishBatch(ctx context.Context, room string, ps []broker.Publication) error {
	_, err := b.PublishOnce(ctx, room, ps)
	return err
}

// maxKeys bounds the publication keys the broker remembers per room
// (broker.DedupBroker): beyond it, the oldest are forgotten before the
// window ends.
const maxKeys = 1 << 16

// PublishOnce implements broker.DedupBroker: the same Lua script keeps the
// room's keys (Publication.Key) for broker.DedupWindow, and the last
// history size of them (WithHistorySize) for as long as the history, at
// most the last 65536, in two Redis keys of the room beside its history,
// so that the record is as durable as the history and is checked and
// written in the step that publishes. It fails as Publish does.
func (b *Broker) PublishOnce(ctx context.Context, room string, ps []broker.Publication) ([]broker.Duplicate, error) {
	var dups []broker.Duplicate
	err := b.publish(ctx, room, func(ctx context.Context, k roomKeys) error {
		ttl := b.cfg.historyTTL.Milliseconds()
		if b.cfg.historyTTL > 0 {
			ttl = max(ttl, 1)
		}
		args := make([]any, 0, 5+3*len(ps))
		args = append(args, k.channel, b.cfg.historySize, ttl, broker.DedupWindow.Milliseconds(), maxKeys)
		for _, p := range ps {
			keep := "0"
			if p.Keep {
				keep = "1"
			}
			args = append(args, keep, p.Key, p.Data)
		}
		r, err := publishScript.Run(ctx, b.client, []string{k.history, k.log, k.keys, k.keysAt}, args...).StringSlice()
		if err != nil {
			return err
		}
		dups, err = decodeDuplicates(r)
		return err
	})
	return dups, err
}

// decodeDuplicates reads what publishScript returns after the last ID: the
// index and the first ID of each publication it did not publish.
func decodeDuplicates(r []string) ([]broker.Duplicate, error) {
	if len(r) == 0 || len(r)%2 != 1 {
		return nil, fmt.Errorf("publish script returned %d values", len(r))
	}
	var dups []broker.Duplicate
	for i := 1; i+1 < len(r); i += 2 {
		index, err := strconv.Atoi(r[i])
		if err != nil {
			return nil, fmt.Errorf("publish script returned index %q: %w", r[i], err)
		}
		id, err := strconv.ParseUint(r[i+1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("publish script returned ID %q: %w", r[i+1], err)
		}
		dups = append(dups, broker.Duplicate{Index: index, ID: id})
	}
	return dups, nil
}

// publish checks that the broker may publish to room, then runs send.
func (b *Broker) publish(ctx context.Context, room string, send func(context.Context, roomKeys) error) error {
	if b.isClosed() {
		return errClosed("publish")
	}
	k := keysFor(b.prefix, room)
	b.mu.Lock()
	cs := b.chans[k.channel]
	unconfirmed := cs != nil && !cs.ready
	b.mu.Unlock()
	if unconfirmed {
		return fmt.Errorf("redisbroker: publish to room %q: %w (%w)", room, ErrNotSubscribed, broker.ErrUnavailable)
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	if err := send(ctx, k); err != nil {
		if b.once && unsent(err) {
			err = fmt.Errorf("%w (%w)", err, broker.ErrUnavailable)
		}
		return fmt.Errorf("redisbroker: publish to room %q: %w", room, err)
	}
	return nil
}

// runsOnce reports whether client runs each command at most once: a
// *redis.Client with MaxRetries -1, which its Options show as 0. Only then
// does a failure to connect mean that the command never reached Redis,
// rather than that a retry did not after an attempt that may have run. A
// ClusterClient also tries again on other nodes.
func runsOnce(client redis.UniversalClient) bool {
	c, ok := client.(*redis.Client)
	return ok && c.Options().MaxRetries == 0
}

// unsent reports whether err, from a command's only attempt, means that the
// command was never written: the client is closed, it could not dial Redis,
// or no connection of its pool came free. go-redis gets its connection
// before it writes anything.
func unsent(err error) bool {
	var op *net.OpError
	return errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, redis.ErrPoolExhausted) || errors.As(err, &op) && op.Op == "dial"
}

// payloadFormat is the first byte of every payload the broker publishes,
// so that a later format can be told apart (or ignored by older nodes).
const payloadFormat = 1

// headerLen is the length of a payload's header: the format byte and the ID.
const headerLen = 9

// encodePayload returns what Publish sends for a publication that is not
// kept; publishScript builds the same form for kept ones.
func encodePayload(id uint64, data []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(data))
	b[0] = payloadFormat
	for i := 8; i >= 1; i-- {
		b[i] = byte(id)
		id >>= 8
	}
	return append(b, data...)
}

// decodePayload reverses encodePayload. Data is a copy: payload is a string.
func decodePayload(payload string) (broker.Publication, bool) {
	if len(payload) < headerLen || payload[0] != payloadFormat {
		return broker.Publication{}, false
	}
	var id uint64
	for i := 1; i <= 8; i++ {
		id = id<<8 | uint64(payload[i])
	}
	return broker.Publication{ID: id, Keep: id != 0, Data: []byte(payload[headerLen:])}, true
}

// History implements broker.HistoryBroker, with broker.Memory's rules for
// complete. A room that Redis holds no numbering for (never published to
// with Keep, expired, or lost) has no history: History returns nothing,
// complete when after is 0, and not complete otherwise, since after cannot
// be an ID of a numbering that has not begun.
func (b *Broker) History(ctx context.Context, room string, after uint64) ([]broker.Publication, bool, error) {
	if b.isClosed() {
		return nil, false, errClosed("history")
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	k := keysFor(b.prefix, room)
	next := "18446744073709551616" // after+1 when after is the greatest uint64
	if after < math.MaxUint64 {
		next = strconv.FormatUint(after+1, 10)
	}
	res, err := historyScript.Run(ctx, b.client, []string{k.history, k.log},
		strconv.FormatUint(after, 10), next).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("redisbroker: history of room %q: %w", room, err)
	}
	pubs, complete, err := parseHistory(res, after)
	if err != nil {
		return nil, false, fmt.Errorf("redisbroker: history of room %q: %w", room, err)
	}
	return pubs, complete, nil
}

// parseHistory interprets historyScript's reply.
func parseHistory(res []any, after uint64) ([]broker.Publication, bool, error) {
	if len(res) == 0 {
		return nil, after == 0, nil
	}
	if len(res) < 4 || len(res)%2 != 0 {
		return nil, false, fmt.Errorf("unexpected reply of %d elements", len(res))
	}
	var nums [3]uint64
	for i := range nums {
		s, _ := res[i].(string)
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("bad number in reply: %w", err)
		}
		nums[i] = n
	}
	last, base, dropped := nums[0], nums[1], nums[2]
	logLen, _ := res[3].(int64)
	pubs := make([]broker.Publication, 0, (len(res)-4)/2)
	for i := 4; i < len(res); i += 2 {
		sid, _ := res[i].(string)
		data, _ := res[i+1].(string)
		id, err := strconv.ParseUint(strings.TrimSuffix(sid, "-0"), 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("bad log entry ID %q: %w", sid, err)
		}
		pubs = append(pubs, broker.Publication{ID: id, Keep: true, Data: []byte(data)})
	}
	// The script chose the range with the same test, made on strings.
	if after != 0 && (after > last || after+1 < base) {
		return pubs, false, nil
	}
	if logLen == 0 && last >= base {
		// Numbered, but nothing kept: history size 0, or the log was lost
		// apart from the hash. Either way everything up to last is gone.
		dropped = max(dropped, last)
	}
	return pubs, after >= dropped, nil
}

// Close ends every subscription, closes the broker's pub/sub connection and
// waits for its goroutines to exit. Afterwards Publish, Subscribe, History,
// SetPresence and Presence return an error wrapping
// broker.ErrClosed; Unsubscribe and Close return nil. It does not
// close the client. It must not be called from a deliver function.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	ps := b.ps
	var subs []*subscription
	for _, cs := range b.chans {
		subs = append(subs, cs.subs...)
	}
	clear(b.chans)
	b.ops = nil
	for token, p := range b.pings {
		p.release()
		delete(b.pings, token)
	}
	b.mu.Unlock()

	// Cancelling ends the dials and writes in progress, which hold the
	// PubSub's lock that Close takes.
	b.cancel()
	var err error
	if ps != nil {
		// Closing the connection ends the reader's Receive.
		if err = ps.Close(); err != nil {
			err = fmt.Errorf("redisbroker: close: %w", err)
		}
	}
	b.wg.Wait()
	for _, s := range subs {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
	}
	return err
}
