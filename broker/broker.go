package broker

import (
	"context"
	"errors"
	"time"
)

// A Broker joins the rooms of one name on several nodes (processes, usually
// behind a load balancer) into one room: what a member sends on any node
// reaches the members on every node (see WithBroker). This package has no
// network broker of its own; adapters for NATS and Redis live in nested
// modules of this repository (natsbroker, redisbroker), so that the
// library's go.mod stays light. Memory joins rooms in one process.
//
// The room encodes what it publishes; a Broker only moves bytes. Adapters
// must keep these promises, which the room's guarantees rest on (package
// brokertest checks them):
//
//   - Order: publications that one goroutine publishes one after the other
//     reach every subscriber in that order.
//   - No delay: Publish fails at once, rather than buffering, when the broker
//     cannot take the publication, with an error wrapping ErrUnavailable; the
//     room then delivers it to its own members only (see WithBroker for what
//     an outage loses). Any other error leaves the outcome open (see
//     ErrUnavailable).
//   - Reconnection: Subscribe does not fail because the broker is
//     unreachable; the adapter reconnects and subscribes again by itself for
//     as long as the subscription is open.
type Broker interface {
	// Publish hands p to the broker for every node subscribed to room, this
	// one included. It returns once the broker has accepted p; an error
	// wrapping ErrUnavailable if the broker certainly did not take p; or
	// another error if it may have, or may still (see ErrUnavailable). It
	// must not modify p.Data, and may keep it.
	Publish(ctx context.Context, room string, p Publication) error

	// Subscribe starts delivering the room's publications to deliver. Once
	// it has returned, every publication the broker accepts for room is
	// delivered, whichever node published it, until the subscription is
	// closed; deliver is called from one goroutine at a time, and not at all
	// after Unsubscribe has returned. deliver does not block, and must not
	// keep p.Data after it returns. One process may hold several
	// subscriptions to one room; each receives every publication.
	Subscribe(ctx context.Context, room string, deliver func(p Publication)) (Subscription, error)
}

// A Subscription is a room's subscription to a Broker.
type Subscription interface {
	// Unsubscribe ends the subscription. After it returns, deliver is not
	// called again.
	Unsubscribe() error
}

// A Publication is what nodes exchange through a Broker about one room.
type Publication struct {
	// ID is the number a HistoryBroker gave a kept publication: greater than
	// every ID it gave before in the room (not necessarily by one). It is 0
	// for publications that are not kept, and always from a plain Broker.
	ID uint64
	// Keep asks a HistoryBroker to number and keep the publication: the
	// room sets it on frames that belong in the history (chat messages,
	// server messages, join and leave notices).
	Keep bool
	// Key, if not empty, names the publication for a DedupBroker, which
	// takes one publication of each key per room within its window. The
	// room sets it on the messages that clients send with a ref: the
	// sender's identity and the ref. Other brokers ignore it.
	Key string
	// Data is the publication, encoded by the room. Its form is internal
	// and may change between versions: run one version per cluster.
	Data []byte
}

// A BatchBroker is a Broker that takes several publications of one room in
// one call, for about the cost of one: one round trip to the broker rather
// than one each. A room whose publications queue up while the broker
// answers (a busy room, a sender with many messages in flight) hands them
// over together, and the other nodes then receive them together, which
// lets each node write them to its members in fewer system calls.
type BatchBroker interface {
	Broker

	// PublishBatch publishes ps in order, as Publish would one after the
	// other. It returns nil once the broker has accepted them all; an error
	// wrapping ErrUnavailable if it certainly took none of them, in which
	// case the room delivers them all to its own members; and another error
	// if it may have taken some, now or later, in which case the room
	// delivers those the broker hands back, so PublishBatch need not say
	// which.
	PublishBatch(ctx context.Context, room string, ps []Publication) error
}

// A PipelineBroker is a BatchBroker that can have several of a room's
// batches in flight at once and still keep them in order: SendBatch fixes
// a batch's place in the room's order before it returns, and the broker's
// answer comes later, from the function it returns. A room then hands its
// next batch over while the broker answers for the one before, so that
// under a steady load a publication does not wait for the round trip of
// the one ahead of it.
//
// An adapter implements it only if its order is fixed when it writes: core
// NATS, whose connection keeps the order of what is written to it. One
// that may retry a batch, or spread batches over several connections (a
// pool), keeps to BatchBroker, and the room has one batch in flight.
type PipelineBroker interface {
	BatchBroker

	// SendBatch sends ps as PublishBatch would, after every batch sent
	// before it by this broker to room, and returns without waiting for
	// the broker's answer. wait waits for that answer, within ctx, and
	// returns what PublishBatch would have; the room calls it once for
	// each batch, in the order of the SendBatch calls. If sending fails,
	// SendBatch returns PublishBatch's error for it, and no wait.
	SendBatch(ctx context.Context, room string, ps []Publication) (wait func() error, err error)
}

// A HistoryBroker is a Broker that numbers and keeps the room's recent kept
// publications, so that a room's history, and a client's resume with
// ?since=<id>, hold across the whole cluster (WithHistory). Kept
// publications are delivered in the order of their IDs.
//
// An adapter should number a room's first publication, and its first after
// the broker lost the room's data, from the clock in milliseconds, so that
// IDs from before such a loss are recognised as foreign. IDs must stay
// below 2^43: a room scales them by 1024 (leaving room for the frames a
// node delivers on its own during an outage) and clients hold them as
// JavaScript numbers, exact below 2^53.
type HistoryBroker interface {
	Broker

	// History returns the room's kept publications with an ID greater than
	// after, oldest first. complete reports whether they are all the
	// publications numbered after that ID: false if some were dropped, or if
	// after is not an ID of this room (greater than the last it gave, or
	// from before its numbering began), in which case it returns everything
	// it keeps. With after 0, complete reports whether nothing was dropped.
	History(ctx context.Context, room string, after uint64) (pubs []Publication, complete bool, err error)
}

// DedupWindow is how long, at least, a DedupBroker remembers the keys it
// took, and a room the refs of the messages it took: a client that resends
// a message within it, after a reconnect, is acknowledged rather than
// delivered twice.
const DedupWindow = 2 * time.Minute

// A DedupBroker is a HistoryBroker that takes each keyed publication
// (Publication.Key) at most once per room within DedupWindow: a
// publication whose key it took already is not numbered, kept or delivered
// again. It is what makes a client's resend idempotent across the nodes of
// a cluster: the node the client resends through learns from PublishOnce
// the ID the first got, and acknowledges it with that ID. Its Publish and
// PublishBatch drop duplicates too, without saying so.
//
// A broker whose record of keys is bounded (in count, for memory) must
// document the bound.
type DedupBroker interface {
	HistoryBroker

	// PublishOnce publishes ps in order, as PublishBatch does, except for
	// the publications whose Key the broker took in room within the window,
	// which it reports instead: one Duplicate each, in order. Its errors
	// are PublishBatch's; with an error it reports no duplicate.
	PublishOnce(ctx context.Context, room string, ps []Publication) ([]Duplicate, error)
}

// A Duplicate is a publication that a DedupBroker did not publish, as it
// had taken one with the same key.
type Duplicate struct {
	// Index is the publication's index in the batch given to PublishOnce.
	Index int
	// ID is the ID the broker gave the first publication with the key, or
	// 0 if that one was not kept (Publication.Keep false).
	ID uint64
}

// A PresenceBroker is a Broker that also stores which nicknames each node
// has in a room, each node's record expiring unless the node renews it. The
// room seeds its view of the other nodes' members from it when it
// subscribes, so a joiner's member list is complete at once; without it the
// view fills from the nodes' heartbeats, within one heartbeat. Either way a
// node that stops renewing (it crashed, or lost the broker) leaves the
// cluster's presence when its record expires (see WithBroker).
type PresenceBroker interface {
	Broker

	// SetPresence records that node has these nicknames in room, in the
	// order they joined, until ttl has passed without another SetPresence
	// for the same room and node. No nicknames removes the record.
	SetPresence(ctx context.Context, room, node string, nicknames []string, ttl time.Duration) error

	// Presence returns the nicknames of every node whose record for room
	// has not expired, by node.
	Presence(ctx context.Context, room string) (map[string][]string, error)
}

// ErrUnavailable is wrapped by the error of Publish or PublishBatch when
// the broker certainly did not take the publications, and never will: none
// was sent (no connection, the connection refused or was being
// re-established, the adapter or its client closed, the backend stopped),
// or the broker answered that no one took any of them. The room then
// delivers them to its own members only: during an outage each node goes on
// as a room of its own.
//
// Any other error leaves the outcome open: the broker may have taken the
// publications, or may take them later (a timeout, or a connection that
// broke after they were written: a server that hung runs what it had read
// when it resumes). The room then does not deliver them itself, but only
// when, and if, the broker hands them back, so that every node delivers
// them in the broker's one order, or none does. An adapter that cannot tell
// must not wrap ErrUnavailable: a publication delivered by its node alone
// and then by the broker to the others would break the room's order.
//
// ErrClosed wraps it.
var ErrUnavailable = errors.New("broker: unavailable")

// ErrClosed is returned, wrapped or not, by a Broker that has been closed.
// It wraps ErrUnavailable: a closed broker takes nothing.
var ErrClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string { return "broker: closed" }

func (closedError) Unwrap() error { return ErrUnavailable }
