package natsbroker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/seed014c2c51/chatroom/broker"
)

// DefaultPrefix is the first subject token of every subject a broker uses,
// unless WithPrefix says otherwise.
const DefaultPrefix = "chatroom"

// defaultTimeout bounds a call whose context has no deadline, so that no
// call waits for ever on a server that does not answer.
const defaultTimeout = 5 * time.Second

// ErrNotConnected is returned, wrapped, by a call that needs the server
// while the connection is not connected (it is reconnecting, or closed).
// Publish returns it at once rather than buffering the publication, wrapped
// together with broker.ErrUnavailable, so that the room delivers it to its
// own members without delay. It also explains a Publish that failed because
// the connection dropped while the call waited for the server: that error
// does not wrap broker.ErrUnavailable, since the server may have received
// the publication.
var ErrNotConnected = errors.New("natsbroker: not connected to NATS")

// An Option configures a Broker or a JetStreamBroker.
type Option func(*config)

type config struct {
	prefix string
	log    *slog.Logger
}

// WithPrefix sets the first token or tokens of every subject the broker
// uses (DefaultPrefix by default), so that several applications, or several
// clusters of one application, can share a NATS account. It is one or more
// tokens of ASCII letters, digits, '-' and '_', separated by '.'. Every node
// of a cluster must use the same prefix. A JetStreamBroker also names its
// stream and bucket after it, unless JetStreamConfig names them.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithLogger sets where the broker reports what goes wrong in the
// background, where no caller can be told: a JetStream subscription that
// cannot be re-created, a message it cannot read. By default nothing is
// logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

func newConfig(opts []Option) (config, error) {
	c := config{prefix: DefaultPrefix, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	if err := validPrefix(c.prefix); err != nil {
		return c, err
	}
	return c, nil
}

// validPrefix accepts the prefixes documented by WithPrefix. Anything wider
// could contain wildcards or collide with the encoded room token.
func validPrefix(p string) error {
	if p == "" {
		return errors.New("natsbroker: empty subject prefix")
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return fmt.Errorf("natsbroker: subject prefix %q has an empty token", p)
		}
		for _, r := range tok {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("natsbroker: subject prefix %q: %q not allowed", p, r)
			}
		}
	}
	return nil
}

// ConnectOptions returns the nats.Options a broker's connection should
// have; pass them to nats.Connect, followed by your own (credentials, TLS,
// a name...):
//
//   - nats.MaxReconnects(-1): never give up reconnecting, since a room
//     relies on its broker to come back by itself;
//   - nats.RetryOnFailedConnect(true): start even while NATS is down;
//   - nats.ReconnectBufSize(-1): while disconnected, fail a publication at
//     once (broker.ErrUnavailable), so that the room delivers it to its own
//     members, instead of buffering it: Publish checks the connection first,
//     but the check and the write are not atomic, and a publication buffered
//     meanwhile fails when the call's context ends with its outcome open,
//     reaches the server only if the connection comes back in time, and
//     nobody sees it before;
//   - nats.ReconnectWait(time.Second), nats.PingInterval(10*time.Second),
//     nats.MaxPingsOutstanding(2): notice a dead server within about 30
//     seconds instead of minutes, and come back quickly.
func ConnectOptions() []nats.Option {
	return []nats.Option{
		nats.Name("chatroom"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
		nats.ReconnectWait(time.Second),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
	}
}

// subjects are the subjects of one room. Kept and live publications have
// subjects of their own, so that a subscriber tells them apart without a
// header, the data stays as the room encoded it (readable in NATS tools),
// and, in JetStream mode, the stream's per-subject limit counts only kept
// publications towards a room's history.
type subjects struct {
	kept   string // <prefix>.room.<token>.kept
	live   string // <prefix>.room.<token>.live
	filter string // <prefix>.room.<token>.*
}

func (c *config) subjects(room string) subjects {
	base := c.prefix + ".room." + roomToken(room)
	return subjects{kept: base + ".kept", live: base + ".live", filter: base + ".*"}
}

// roomToken encodes a room name as one subject token: 'r' followed by the
// name's UTF-8 bytes in unpadded base64url (RFC 4648 §5). Room names may
// contain '.', which separates tokens, and may be empty, which a token may
// not be; base64url uses only letters, digits, '-' and '_', which are safe
// in subjects and in key-value keys.
func roomToken(room string) string {
	return "r" + base64.RawURLEncoding.EncodeToString([]byte(room))
}

// nodeToken encodes a node's name for a presence key, as roomToken does.
func nodeToken(node string) string {
	return "n" + base64.RawURLEncoding.EncodeToString([]byte(node))
}

// base is what both kinds of broker share: the connection, the
// configuration, and the open subscriptions that Close ends.
type base struct {
	config
	nc *nats.Conn

	closed atomic.Bool // read without mu on every call; set with mu held
	mu     sync.Mutex  // guards subs, and closed against registering
	subs   map[broker.Subscription]struct{}
}

func newBase(nc *nats.Conn, opts []Option) (*base, error) {
	if nc == nil {
		return nil, errors.New("natsbroker: nil connection")
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &base{config: c, nc: nc, subs: make(map[broker.Subscription]struct{})}, nil
}

// usable reports why a call cannot go ahead, if it cannot.
func (b *base) usable(ctx context.Context) error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	return ctx.Err()
}

// connected returns ErrNotConnected and broker.ErrUnavailable, wrapped with
// what was being done, unless the connection is up: the call sends nothing.
func (b *base) connected(what, room string) error {
	if b.nc.IsConnected() {
		return nil
	}
	return fmt.Errorf("natsbroker: %s room %q: %w (%v; %w)", what, room, ErrNotConnected, b.nc.Status(), broker.ErrUnavailable)
}

// notSent reports whether err, from nats.Conn.Publish, means that the
// connection took nothing: it is closed or draining, or it is reconnecting
// and its reconnect buffer is full (or disabled, as ConnectOptions says).
func notSent(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, nats.ErrReconnectBufExceeded)
}

// register records s so that Close ends it. It fails, and s must be ended
// by the caller, if the broker was closed meanwhile.
func (b *base) register(s broker.Subscription) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return broker.ErrClosed
	}
	b.subs[s] = struct{}{}
	return nil
}

func (b *base) forget(s broker.Subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// close ends every subscription. The connection is the host's: it stays
// open.
func (b *base) close() error {
	b.mu.Lock()
	b.closed.Store(true)
	subs := make([]broker.Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Unsubscribe())
	}
	return errors.Join(errs...)
}

// withTimeout gives ctx a deadline of defaultTimeout unless it has one.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// Broker is a broker.Broker over core NATS: a publication is one NATS
// message on the room's subject, delivered to the subscriptions that exist
// when the server routes it, and lost if none can take it then. It does not
// number or keep publications, so it is not a broker.HistoryBroker (IDs
// are 0), nor a broker.PresenceBroker; see JetStreamBroker for those.
//
// Order: the publications of one connection reach every subscriber in the
// order they were published, kept and live ones alike. What the server
// has not yet delivered when it fails is lost. Across NATS servers
// of a cluster, a new subscription's interest reaches the other servers a
// moment after Subscribe returns (Subscribe waits for its own server only):
// a publication made through another server in that moment may miss it.
//
// It is safe for concurrent use. Make one with New; the zero value is not
// usable.
type Broker struct {
	b *base
}

// New returns a Broker that publishes and subscribes through nc. The host
// owns nc: it configures it (see ConnectOptions), and closes it after
// Close. A Broker needs nothing on the server, so New does not contact it.
func New(nc *nats.Conn, opts ...Option) (*Broker, error) {
	b, err := newBase(nc, opts)
	if err != nil {
		return nil, err
	}
	return &Broker{b: b}, nil
}

// Publish implements broker.Broker. It returns once the server has the
// message: after publishing, it waits for the server to answer a ping
// (one round trip), so that a publication lost with a connection that just
// dropped is not taken for delivered. It fails without waiting, with
// ErrNotConnected and broker.ErrUnavailable, while the connection is down
// and when the connection refuses the message (closed, or reconnecting
// without a reconnect buffer): nothing was sent. It fails without
// broker.ErrUnavailable when the server does not answer before ctx ends (or
// within 5 seconds if ctx has no deadline), or the connection drops while
// Publish waits: the server may have the message, and a server that hung
// delivers it when it resumes. p.ID is ignored; p.Keep only chooses the
// subject, so that subscribers see it.
func (b *Broker) Publish(ctx context.Context, room string, p broker.Publication) error {
	return b.publish(ctx, room, []broker.Publication{p})
}

// PublishBatch implements broker.BatchBroker: it publishes ps in order
// and then waits for one round trip, as Publish does for one, so a batch
// costs about what one publication does. It fails as Publish does, with
// broker.ErrUnavailable only if it sent none of ps.
func (b *Broker) PublishBatch(ctx context.Context, room string, ps []broker.Publication) error {
	return b.publish(ctx, room, ps)
}

// SendBatch implements broker.PipelineBroker: it publishes ps in order,
// which fixes their place on the connection, and returns a function that
// waits for the round trip PublishBatch waits for. Several batches may be
// waiting at once; the connection delivers them in the order they were
// sent. It fails as PublishBatch does.
func (b *Broker) SendBatch(ctx context.Context, room string, ps []broker.Publication) (wait func() error, err error) {
	if err := b.send(ctx, room, ps); err != nil {
		return nil, err
	}
	return func() error { return b.confirm(ctx, room) }, nil
}

func (b *Broker) publish(ctx context.Context, room string, ps []broker.Publication) error {
	if err := b.send(ctx, room, ps); err != nil {
		return err
	}
	return b.confirm(ctx, room)
}

// send writes ps to the connection, in order.
func (b *Broker) send(ctx context.Context, room string, ps []broker.Publication) error {
	if err := b.b.usable(ctx); err != nil {
		return err
	}
	if err := b.b.connected("publish to", room); err != nil {
		return err
	}
	s := b.b.subjects(room)
	for i, p := range ps {
		subj := s.live
		if p.Keep {
			subj = s.kept
		}
		if err := b.b.nc.Publish(subj, p.Data); err != nil {
			// Only the first tells: those before a later one may be on
			// their way.
			if i == 0 && notSent(err) {
				err = fmt.Errorf("%w (%w)", err, broker.ErrUnavailable)
			}
			return fmt.Errorf("natsbroker: publish to room %q: %w", room, err)
		}
	}
	return nil
}

// confirm waits for one round trip to the server, so that what was sent
// before is not taken for delivered while it may have been lost with a
// connection that just dropped.
func (b *Broker) confirm(ctx context.Context, room string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := b.b.nc.FlushWithContext(ctx); err != nil {
		if !b.b.nc.IsConnected() {
			err = fmt.Errorf("%w (%w)", ErrNotConnected, err)
		}
		return fmt.Errorf("natsbroker: publish to room %q: %w", room, err)
	}
	return nil
}

// Subscribe implements broker.Broker. It works while the connection is
// down: the connection subscribes again whenever it reconnects, and
// publications made meanwhile are lost. While connected, it returns once
// the server has the subscription (a round trip bounded by ctx, or by
// 5 seconds if ctx has no deadline; if that fails, the subscription stands
// and is confirmed later).
//
// deliver runs on the subscription's own goroutine, one publication at a
// time; it must not call Unsubscribe, which waits for it. A subscription
// that falls behind by more than the connection's pending limits (512k
// messages or 64 MiB by default) loses publications, which the connection
// reports to its error handler as nats.ErrSlowConsumer.
func (b *Broker) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	if deliver == nil {
		return nil, errors.New("natsbroker: nil deliver")
	}
	if err := b.b.usable(ctx); err != nil {
		return nil, err
	}
	subj := b.b.subjects(room)
	s := &coreSubscription{b: b.b, kept: subj.kept, deliver: deliver}
	ns, err := b.b.nc.Subscribe(subj.filter, s.receive)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: subscribe to room %q: %w", room, err)
	}
	s.ns = ns
	if b.b.nc.IsConnected() {
		// Wait until the server has the subscription, so that publications
		// through it from now on are delivered.
		fctx, cancel := withTimeout(ctx)
		err := b.b.nc.FlushWithContext(fctx)
		cancel()
		if err != nil {
			b.b.log.Debug("natsbroker: subscription not confirmed", "room", room, "err", err)
		}
	}
	if err := b.b.register(s); err != nil {
		_ = s.Unsubscribe()
		return nil, err
	}
	return s, nil
}

// Close ends every subscription; Publish and Subscribe then return
// broker.ErrClosed. It leaves the connection open. Closing twice
// is harmless.
func (b *Broker) Close() error {
	return b.b.close()
}

// coreSubscription is a subscription of a Broker.
type coreSubscription struct {
	b       *base
	ns      *nats.Subscription
	kept    string
	deliver func(broker.Publication)

	// mu is held while delivering, so that Unsubscribe, which takes it to
	// set closed, returns only after a delivery in progress has ended, and
	// none starts after.
	mu     sync.Mutex
	closed bool
}

// receive is the NATS callback: the connection calls it on one goroutine
// per subscription, in order.
func (s *coreSubscription) receive(m *nats.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.deliver(broker.Publication{Keep: m.Subject == s.kept, Data: m.Data})
}

// Unsubscribe implements broker.Subscription. Unsubscribing twice is
// harmless.
func (s *coreSubscription) Unsubscribe() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.b.forget(s)
	// A closed connection has dropped the subscription already.
	if err := s.ns.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("natsbroker: unsubscribe: %w", err)
	}
	return nil
}
