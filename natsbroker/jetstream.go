package natsbroker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed014c2c51/chatroom/broker"
)

// DefaultHistory is JetStreamConfig.History's default.
const DefaultHistory = 100

// DefaultBacklog is JetStreamConfig.Backlog's default: four of the batches
// a room hands the broker at once (64 publications each).
const DefaultBacklog = 256

// historyKey is the stream metadata key that holds the history size, so
// that every node reads the same one from the stream.
const historyKey = "chatroom.history"

const (
	// liveTTL is how long the stream holds a live (not kept) publication:
	// long enough for subscribers to receive it, and to catch up after a
	// short disconnection, short enough that live traffic (heartbeats,
	// direct messages) costs no lasting storage. One second is the
	// shortest per-message TTL JetStream accepts.
	liveTTL = time.Second

	// markerTTL is how long the presence bucket keeps the marker JetStream
	// leaves when a record expires or is removed. Nothing here reads
	// markers; they only have to go away.
	markerTTL = time.Second

	// consumerHeartbeat is how often the server tells an idle subscription
	// that its consumer is alive; after two missed heartbeats the
	// subscription re-creates its consumer (the server or leader that held
	// it is gone).
	consumerHeartbeat = 5 * time.Second

	// consumerInactive is how long the server keeps a consumer nobody
	// pulls from: that of a crashed node, or one cut off for that long
	// (which then re-creates it).
	consumerInactive = 30 * time.Second

	// retryMin and retryMax bound the wait between attempts to re-create a
	// subscription's consumer while connected; a reconnection cuts the wait
	// short.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// JetStreamConfig configures a JetStreamBroker's stream and presence bucket.
// The broker creates them when it first needs them, if they do not exist;
// once they exist their configuration, which an operator may edit, wins
// over this one: the stream's MaxMsgsPerSubject is History+1+Backlog, and
// its metadata "chatroom.history" holds History (without it, History is
// MaxMsgsPerSubject less one, and the backlog 0; see
// JetStreamBroker.History).
type JetStreamConfig struct {
	// History is how many kept publications of each room the stream keeps
	// for History; DefaultHistory if 0. Every joining member reads them
	// all, so keep it near what the rooms replay (chatroom.WithHistory).
	History int
	// Backlog is how many more publications of each of a room's two
	// subjects (kept, live) the stream keeps beyond History+1, so that a
	// subscription that falls behind a burst of the room's publications
	// still finds them: one that falls further behind never sees the
	// oldest, which the stream deleted. DefaultBacklog if 0; negative for
	// none. A joining member's History reads them too.
	Backlog int
	// Storage is where the stream and the bucket keep their data:
	// jetstream.FileStorage (the zero value), which survives a restart of
	// the servers, or jetstream.MemoryStorage.
	Storage jetstream.StorageType
	// Replicas is how many servers of a JetStream cluster hold the stream
	// and the bucket; 1 if 0.
	Replicas int
	// Stream names the stream; by default the prefix in upper case with
	// '.' replaced by '_' ("CHATROOM").
	Stream string
	// PresenceBucket names the key-value bucket that holds presence; by
	// default Stream followed by "_PRESENCE".
	PresenceBucket string
}

// JetStreamBroker is a broker.HistoryBroker, broker.DedupBroker and
// broker.PresenceBroker over NATS JetStream (nats-server 2.11 or later).
//
// Every publication of a room goes into one stream, kept ones on the
// subject <prefix>.room.<token>.kept and live ones on
// <prefix>.room.<token>.live, where live ones expire after a second. The
// stream's order is the delivery order: each subscription reads the room's
// two subjects through a consumer of its own, so every subscriber sees
// every publication of the room in the same order, and a publisher's
// publications, kept or not, in the order it published them. A kept
// publication's ID is its stream sequence, which is greater than any
// earlier one's in every room; the stream is created with its first
// sequence taken from the clock in milliseconds, so that the IDs of a
// stream created again after a loss are above the old ones, which History
// then treats as foreign.
//
// Nothing the stream accepted is lost by a subscriber that reconnects: its
// consumer resumes after the last publication it delivered (live ones
// older than a second excepted). Publications made while the publisher is
// cut off from the stream fail, and the room delivers them locally.
//
// Presence is a key-value bucket: one key per room and node, holding the
// node's nicknames as a JSON array, with a per-key TTL (see SetPresence).
//
// It is safe for concurrent use. Make one with NewJetStream; the zero value
// is not usable.
type JetStreamBroker struct {
	b    *base
	js   *jsState
	link *link
}

// jsState is a JetStreamBroker's JetStream side.
type jsState struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    JetStreamConfig
	stream atomic.Pointer[streamState] // nil until known, and after it was lost
	kv     atomic.Pointer[jetstream.KeyValue]
	// sem serialises looking up and creating the stream and the bucket,
	// while letting waiters give up with their context.
	sem chan struct{}
	// checked is 1 + the connection's Reconnects when the server was last
	// found fit (see ensureServer); 0 until then.
	checked atomic.Uint64
}

// streamState is what the broker knows of the stream.
type streamState struct {
	history int // kept publications per room that History returns
	perRoom int // kept publications per room the stream holds: history+1 and the backlog
}

// NewJetStream returns a JetStreamBroker that publishes and subscribes
// through nc. The host owns nc: it configures it (see ConnectOptions), and
// closes it after Close.
//
// If nc is connected, NewJetStream first checks the server, in one round
// trip of at most 5 seconds: it fails with ErrUnsupportedServer if the
// server is older than MinServerVersion or JetStream is not enabled for the
// account. If nc is not connected yet, or the server does not answer, the
// first call that reaches the server checks it instead. NewJetStream waits
// for nothing else: the stream and the bucket are looked up, or created,
// when first needed. The broker follows the connection's state with a
// goroutine of its own, until Close.
func NewJetStream(nc *nats.Conn, cfg JetStreamConfig, opts ...Option) (*JetStreamBroker, error) {
	b, err := newBase(nc, opts)
	if err != nil {
		return nil, err
	}
	if cfg.History < 0 || cfg.Replicas < 0 {
		return nil, errors.New("natsbroker: negative History or Replicas")
	}
	if cfg.History == 0 {
		cfg.History = DefaultHistory
	}
	switch {
	case cfg.Backlog == 0:
		cfg.Backlog = DefaultBacklog
	case cfg.Backlog < 0:
		cfg.Backlog = 0
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Stream == "" {
		cfg.Stream = strings.ToUpper(strings.ReplaceAll(b.prefix, ".", "_"))
	}
	if cfg.PresenceBucket == "" {
		cfg.PresenceBucket = cfg.Stream + "_PRESENCE"
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(defaultTimeout))
	if err != nil {
		return nil, fmt.Errorf("natsbroker: %w", err)
	}
	st := &jsState{nc: nc, js: js, cfg: cfg, sem: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	err = st.ensureServer(ctx)
	cancel()
	if err != nil {
		return nil, err
	}
	jb := &JetStreamBroker{b: b, js: st}
	jb.link = newLink(nc)
	return jb, nil
}

// lock takes sem, unless ctx ends first.
func (j *jsState) lock(ctx context.Context) error {
	select {
	case j.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *jsState) unlock() { <-j.sem }

// streamConfig is the stream the broker creates. MaxMsgsPerSubject keeps
// one more kept publication per room than History returns, the oldest of
// which tells History whether anything was dropped (see History), and the
// backlog.
func (j *jsState) streamConfig(prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              j.cfg.Stream,
		Description:       "chatroom publications (github.com/seed014c2c51/chatroom/natsbroker)",
		Subjects:          []string{prefix + ".room.>"},
		Storage:           j.cfg.Storage,
		Replicas:          j.cfg.Replicas,
		MaxMsgsPerSubject: int64(j.cfg.History + 1 + j.cfg.Backlog),
		Metadata:          map[string]string{historyKey: strconv.Itoa(j.cfg.History)},
		Discard:           jetstream.DiscardOld,
		AllowMsgTTL:       true,
		AllowDirect:       true,
		Duplicates:        broker.DedupWindow,
		// Numbering from the clock makes the IDs of a stream created again
		// after a loss greater than the old ones.
		FirstSeq: uint64(max(time.Now().UnixMilli(), 1)),
	}
}

// ensureStream returns what the broker knows of the stream, looking it up,
// or creating it, first if need be.
func (j *jsState) ensureStream(ctx context.Context, prefix string) (*streamState, error) {
	if st := j.stream.Load(); st != nil {
		return st, nil
	}
	if err := j.lock(ctx); err != nil {
		return nil, err
	}
	defer j.unlock()
	if st := j.stream.Load(); st != nil {
		return st, nil
	}
	if err := j.ensureServer(ctx); err != nil {
		return nil, err
	}
	s, err := j.js.Stream(ctx, j.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = j.js.CreateStream(ctx, j.streamConfig(prefix))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another node created it meanwhile, with another FirstSeq.
			s, err = j.js.Stream(ctx, j.cfg.Stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsbroker: stream %s: %w", j.cfg.Stream, err)
	}
	cfg := s.CachedInfo().Config
	switch want := prefix + ".room.>"; {
	case !slices.Contains(cfg.Subjects, want):
		err = fmt.Errorf("does not have the subject %s", want)
	case !cfg.AllowMsgTTL:
		err = errors.New("does not allow message TTLs (AllowMsgTTL)")
	case !cfg.AllowDirect:
		err = errors.New("does not allow direct gets (AllowDirect)")
	case cfg.MaxMsgsPerSubject < 2:
		err = errors.New("must keep 2 or more messages per subject (MaxMsgsPerSubject)")
	}
	if err != nil {
		return nil, fmt.Errorf("natsbroker: stream %s %w", j.cfg.Stream, err)
	}
	st := &streamState{history: int(cfg.MaxMsgsPerSubject) - 1, perRoom: int(cfg.MaxMsgsPerSubject)}
	if h, err := strconv.Atoi(cfg.Metadata[historyKey]); err == nil && h >= 1 && h <= st.history {
		st.history = h
	}
	j.stream.Store(st)
	return st, nil
}

// lostStream forgets the stream, so that the next call looks it up again,
// and creates it if it is gone.
func (j *jsState) lostStream() { j.stream.Store(nil) }

// Publish implements broker.Broker: it returns once the stream has stored
// p (a JetStream acknowledgement, one round trip to the stream's leader).
// It fails with broker.ErrUnavailable when it certainly sent nothing that
// could be stored: at once with ErrNotConnected while the connection is
// down, when the stream cannot be found or created, and when no stream
// answers (no responders). It fails without it, its outcome open, as soon
// as the connection drops during the call, and when ctx ends (or after 5
// seconds if ctx has no deadline) before JetStream acknowledges p (a
// clustered stream without a leader, or a server that hangs and stores it
// when it resumes). If the stream is gone, Publish creates it again.
func (b *JetStreamBroker) Publish(ctx context.Context, room string, p broker.Publication) error {
	return b.PublishBatch(ctx, room, []broker.Publication{p})
}

// PublishBatch implements broker.BatchBroker: it sends ps to the stream
// one after the other without waiting, then waits for all their
// acknowledgements, so a batch costs about one round trip. The stream
// stores them in order. It fails as Publish does, and also if the stream
// refused any of them; the others may be stored. It fails with
// broker.ErrUnavailable only if none of ps can be stored.
func (b *JetStreamBroker) PublishBatch(ctx context.Context, room string, ps []broker.Publication) error {
	_, err := b.PublishOnce(ctx, room, ps)
	return err
}

// PublishOnce implements broker.DedupBroker through the stream's duplicate
// window: a publication with a Key is sent with a message ID (the
// Nats-Msg-Id header) made of the room and the key, and the stream stores
// one message per ID within its window (Duplicates, 2 minutes as the
// broker creates the stream: keep it at least broker.DedupWindow on a
// stream of your own). Its acknowledgement of a duplicate names the first's
// sequence, which is the first's ID. It fails as PublishBatch does.
func (b *JetStreamBroker) PublishOnce(ctx context.Context, room string, ps []broker.Publication) ([]broker.Duplicate, error) {
	if err := b.b.usable(ctx); err != nil {
		return nil, err
	}
	if err := b.b.connected("publish to", room); err != nil {
		return nil, err
	}
	ctx, cancel := b.link.bind(ctx)
	defer cancel()
	s := b.b.subjects(room)
	// No retries: a publication retried after a later one went through
	// would be stored out of order.
	live := []jetstream.PublishOpt{jetstream.WithMsgTTL(liveTTL), jetstream.WithRetryAttempts(0)}
	kept := []jetstream.PublishOpt{jetstream.WithRetryAttempts(0)}
	acks := make([]jetstream.PubAckFuture, 0, len(ps))
	for attempt := 0; ; attempt++ {
		if _, err := b.js.ensureStream(ctx, b.b.prefix); err != nil {
			// Nothing was published: no stream took those of a first
			// attempt.
			return nil, fmt.Errorf("natsbroker: publish to room %q: %w (%w)", room, explain(ctx, err), broker.ErrUnavailable)
		}
		acks = acks[:0]
		for i, p := range ps {
			subj, opts := s.live, live
			if p.Keep {
				subj, opts = s.kept, kept
			}
			if p.Key != "" {
				opts = append(slices.Clip(opts), jetstream.WithMsgID(msgID(room, p.Key)))
			}
			ack, err := b.js.js.PublishAsync(subj, p.Data, opts...)
			if err != nil {
				err = explain(ctx, err)
				if i == 0 && notSent(err) {
					err = fmt.Errorf("%w (%w)", err, broker.ErrUnavailable)
				}
				return nil, fmt.Errorf("natsbroker: publish to room %q: %w", room, err)
			}
			acks = append(acks, ack)
		}
		var errs []error
		var dups []broker.Duplicate
		noStream := 0
		for i, ack := range acks {
			select {
			case pa := <-ack.Ok():
				if pa.Duplicate {
					d := broker.Duplicate{Index: i}
					if ps[i].Keep {
						d.ID = pa.Sequence
					}
					dups = append(dups, d)
				}
			case err := <-ack.Err():
				if errors.Is(err, jetstream.ErrNoStreamResponse) {
					noStream++
				}
				errs = append(errs, err)
			case <-ctx.Done():
				return nil, fmt.Errorf("natsbroker: publish to room %q: %w", room, explain(ctx, ctx.Err()))
			}
		}
		if attempt == 0 && noStream == len(acks) {
			// The stream may be gone, as in Publish: look again.
			b.js.lostStream()
			continue
		}
		if len(errs) > 0 {
			err := errors.Join(errs...)
			if noStream == len(acks) {
				// Nobody listened on the subjects: none is stored.
				err = fmt.Errorf("%w (%w)", err, broker.ErrUnavailable)
			}
			return nil, fmt.Errorf("natsbroker: publish to room %q: %w", room, err)
		}
		return dups, nil
	}
}

// msgID is the message ID of a keyed publication: the stream's record of
// IDs spans every room, and a header holds no line break, so it is a hash
// of the room and the key.
func msgID(room, key string) string {
	h := sha256.Sum256([]byte(room + "\x00" + key))
	return hex.EncodeToString(h[:])
}

// Subscribe implements broker.Broker. The subscription reads the room's
// publications from the stream through a consumer of its own, created
// before Subscribe returns: it delivers every publication the stream
// stores after that. Kept publications come with their ID and Keep set.
//
// If the consumer cannot be created (the connection is down, or JetStream
// does not answer within ctx), Subscribe still succeeds: the subscription
// creates its consumer once it can, starting from the time Subscribe was
// called (as the server's clock has it). Whenever the consumer is lost
// afterwards (the server restarted, a publication went missing on the
// way), the subscription creates it again, resuming after the last
// publication it delivered. deliver is called on the consumer's goroutine,
// one publication at a time; it must not call Unsubscribe, which waits for
// it.
//
// The stream keeps History+1+Backlog publications per subject (a room's
// kept and its live publications are two subjects), so a subscription that
// falls more than that behind a burst of one room's publications never
// sees the oldest of them: the stream deleted them first. Rooms hand
// publications over in batches of at most 64; the default backlog holds
// four of them beyond the history.
func (b *JetStreamBroker) Subscribe(ctx context.Context, room string, deliver func(broker.Publication)) (broker.Subscription, error) {
	if deliver == nil {
		return nil, errors.New("natsbroker: nil deliver")
	}
	if err := b.b.usable(ctx); err != nil {
		return nil, err
	}
	subj := b.b.subjects(room)
	s := &jsSubscription{
		jb:      b,
		room:    room,
		subj:    subj,
		deliver: deliver,
		since:   time.Now(),
		reset:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	cctx, cancel := b.link.bind(ctx)
	cc, name, err := s.consume(cctx, true)
	cancel()
	if err != nil {
		b.b.log.Warn("natsbroker: subscription waits for JetStream", "room", room, "err", err)
	}
	go s.run(cc, name)
	if err := b.b.register(s); err != nil {
		_ = s.Unsubscribe()
		return nil, err
	}
	return s, nil
}

// Close ends every subscription, deleting their consumers; Publish,
// Subscribe, History, SetPresence and Presence then return
// broker.ErrClosed. It leaves the connection open. Closing twice is
// harmless.
func (b *JetStreamBroker) Close() error {
	err := b.b.close()
	b.link.close()
	return err
}

// jsSubscription is a subscription of a JetStreamBroker. Its goroutine, run,
// owns the consumer: it creates it again when it is lost, and deletes it
// when the subscription ends.
type jsSubscription struct {
	jb      *JetStreamBroker
	room    string
	subj    subjects
	deliver func(broker.Publication)
	since   time.Time // when Subscribe was called: where to start if next is unknown

	// mu is held while delivering, so that Unsubscribe, which takes it to
	// set closed, returns only after a delivery in progress has ended, and
	// none starts after.
	mu     sync.Mutex
	closed bool
	gen    uint64 // the current consumer's generation; older ones' messages are ignored
	dseq   uint64 // the consumer sequence last delivered by this generation
	next   uint64 // the stream sequence to resume from; 0 until known

	reset chan struct{} // asks run to re-create the consumer
	stop  chan struct{} // closed by Unsubscribe
	done  chan struct{} // closed when run has returned
}

// consume creates a consumer starting where the subscription is, and starts
// consuming it. The first time, in Subscribe, it starts with the next
// publication the stream stores.
func (s *jsSubscription) consume(ctx context.Context, first bool) (jetstream.ConsumeContext, string, error) {
	s.mu.Lock()
	s.gen++
	gen, next := s.gen, s.next
	s.dseq = 0
	select {
	case <-s.reset: // a request about an older generation
	default:
	}
	s.mu.Unlock()

	jb := s.jb
	if err := jb.b.connected("subscribe to", s.room); err != nil {
		return nil, "", err
	}
	if _, err := jb.js.ensureStream(ctx, jb.b.prefix); err != nil {
		return nil, "", explain(ctx, err)
	}
	cfg := jetstream.ConsumerConfig{
		FilterSubject:     s.subj.filter,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: consumerInactive,
	}
	switch {
	case next != 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, next
	case first:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	default:
		since := s.since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := jb.js.js.CreateConsumer(ctx, jb.js.cfg.Stream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		jb.js.lostStream()
	}
	if err != nil {
		return nil, "", fmt.Errorf("natsbroker: subscribe to room %q: %w", s.room, explain(ctx, err))
	}
	info := cons.CachedInfo()
	if next == 0 {
		// Remember where the consumer starts (its "delivered" stream
		// sequence is the one before), so that if it is lost before it
		// delivers anything, the next one starts there too.
		s.mu.Lock()
		if s.gen == gen && s.next == 0 {
			s.next = info.Delivered.Stream + 1
		}
		s.mu.Unlock()
	}
	cc, err := cons.Consume(s.handler(gen),
		jetstream.PullHeartbeat(consumerHeartbeat),
		jetstream.ConsumeErrHandler(s.onError(gen)))
	if err != nil {
		s.deleteConsumer(info.Name)
		return nil, "", fmt.Errorf("natsbroker: subscribe to room %q: %w", s.room, err)
	}
	return cc, info.Name, nil
}

// handler delivers the messages of the consumer of generation gen.
func (s *jsSubscription) handler(gen uint64) jetstream.MessageHandler {
	return func(m jetstream.Msg) {
		md, err := m.Metadata()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || gen != s.gen {
			return
		}
		if err != nil {
			s.jb.b.log.Warn("natsbroker: unreadable message", "room", s.room, "err", err)
			s.requestResetLocked()
			return
		}
		if md.Sequence.Consumer != s.dseq+1 {
			// A message went missing on the way (the connection dropped
			// it); the consumer counts it as delivered. Start again after
			// the last one delivered; until then, the messages of this
			// generation are all out of sequence, so none is delivered.
			s.requestResetLocked()
			return
		}
		s.dseq = md.Sequence.Consumer
		s.next = md.Sequence.Stream + 1
		p := broker.Publication{Data: m.Data()}
		if m.Subject() == s.subj.kept {
			p.ID, p.Keep = md.Sequence.Stream, true
		}
		s.deliver(p)
	}
}

// onError handles what the consumer of generation gen reports: when the
// consumer is gone or silent, run creates another.
func (s *jsSubscription) onError(gen uint64) jetstream.ConsumeErrHandler {
	return func(_ jetstream.ConsumeContext, err error) {
		switch {
		case errors.Is(err, jetstream.ErrNoHeartbeat),
			errors.Is(err, jetstream.ErrConsumerDeleted),
			errors.Is(err, jetstream.ErrConsumerNotFound),
			errors.Is(err, jetstream.ErrBadRequest),
			errors.Is(err, nats.ErrNoResponders):
			s.mu.Lock()
			if gen == s.gen {
				s.requestResetLocked()
			}
			s.mu.Unlock()
		default:
			s.jb.b.log.Debug("natsbroker: consumer error", "room", s.room, "err", err)
		}
	}
}

func (s *jsSubscription) requestResetLocked() {
	select {
	case s.reset <- struct{}{}:
	default:
	}
}

// run keeps the subscription's consumer going until Unsubscribe: cc and
// name are the consumer Subscribe created, or nil and "" if it could not.
func (s *jsSubscription) run(cc jetstream.ConsumeContext, name string) {
	defer close(s.done)
	nc := s.jb.b.nc
	// A reconnection is the moment to try again.
	connected := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(connected)
	wait := retryMin
	warned := false // about an unsupported server, which retrying will not fix
	for {
		if cc != nil {
			select {
			case <-s.stop:
				cc.Stop()
				s.deleteConsumer(name)
				return
			case <-s.reset:
			}
			cc.Stop()
			s.deleteConsumer(name)
			cc = nil
		}
		ctx, cancel := s.jb.link.bind(context.Background())
		var err error
		cc, name, err = s.consume(ctx, false)
		cancel()
		if err == nil {
			wait = retryMin
			continue
		}
		if errors.Is(err, ErrUnsupportedServer) && !warned {
			warned = true
			s.jb.b.log.Warn("natsbroker: subscription waits for a supported server", "room", s.room, "err", err)
		} else {
			s.jb.b.log.Debug("natsbroker: consumer not created", "room", s.room, "err", err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-s.stop:
			timer.Stop()
			return
		case <-connected:
		case <-timer.C:
		}
		timer.Stop()
		wait = min(2*wait, retryMax)
	}
}

// deleteConsumer deletes a consumer no longer used, if the server can be
// reached within 2 seconds; if not, the server deletes it once it has been
// inactive for consumerInactive.
func (s *jsSubscription) deleteConsumer(name string) {
	if name == "" || !s.jb.b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ctx, unbind := s.jb.link.bind(ctx)
	defer unbind()
	if err := s.jb.js.js.DeleteConsumer(ctx, s.jb.js.cfg.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		s.jb.b.log.Debug("natsbroker: consumer not deleted", "room", s.room, "consumer", name, "err", err)
	}
}

// Unsubscribe implements broker.Subscription: it stops the consumer and
// deletes it. Unsubscribing twice is harmless.
func (s *jsSubscription) Unsubscribe() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.jb.b.forget(s)
	return nil
}
