// Package cluster serves several nodes of one chatroom room in one
// process, joined by a broker: each node is its own chatroom.Room (same
// name, chatroom.WithBroker) behind its own handler, which chatserver
// serves on its own loopback port. Sharing a process means the nodes share
// its CPU and memory; the hop between them is real for NATS and Redis,
// over loopback TCP, and a function call for the memory broker.
//
// Brokers:
//
//   - memory: one broker.Memory shared by the nodes.
//   - nats: a nats-server embedded in the process on a free loopback port
//     (or the server at Config.NATSURL), one connection and one core
//     natsbroker.Broker per node: no history or presence in the broker.
//   - jetstream: the same with natsbroker.JetStreamBroker (history and
//     presence in JetStream, file storage in a temporary directory).
//   - redis: a redis-server started from PATH on a free loopback port, with
//     persistence off (or the server at Config.RedisURL), one go-redis
//     client and one redisbroker.Broker per node.
package cluster

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/broker"
)

// Brokers lists the brokers Start knows.
var Brokers = []string{"memory", "nats", "jetstream", "redis"}

// Presences lists the values of Config.Presence.
var Presences = []string{"off", "on", "deltas"}

// Config describes a cluster.
type Config struct {
	Nodes     int           // rooms, one per node; at least 1
	Broker    string        // one of Brokers
	Room      string        // the room's name on every node; default "lobby"
	Heartbeat time.Duration // chatroom.WithHeartbeat; 0 keeps the library's default
	// Presence is one of Presences: "" or "off" (the default protocol),
	// "on" (chatroom.WithPresence) or "deltas" (chatroom.WithPresenceDeltas
	// with its defaults).
	Presence string

	NATSURL  string // nats: use this server instead of starting one in the process
	RedisURL string // redis: use this server instead of starting redis-server
	// RedisServer is the redis-server binary to start; default
	// "redis-server", from PATH.
	RedisServer string
	// Logf, if set, receives the cluster's notes (the broker it started).
	Logf func(format string, args ...any)
}

// Cluster is a running set of nodes and their broker.
type Cluster struct {
	// Handlers serves each node's room (a *chatroom.Room), in node order.
	Handlers []http.Handler
	// BrokerPID is the process of a broker that Start started outside this
	// process (redis-server), or 0.
	BrokerPID int
	// Meters counts each node's heartbeats and their CPU time, in node
	// order; nil for a broker it cannot measure (see HeartbeatMeter).
	Meters []*HeartbeatMeter

	rooms   []*chatroom.Room
	closers []func() error // run in reverse order by Close
	kill    func()         // stops the broker process Start started; nil if none
}

// Start builds the broker and the nodes. On error, whatever it started is
// stopped again.
func Start(cfg Config) (_ *Cluster, err error) {
	if cfg.Nodes < 1 {
		return nil, errors.New("cluster: nodes must be at least 1")
	}
	if cfg.Room == "" {
		cfg.Room = "lobby"
	}
	c := &Cluster{}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	var brokers []broker.Broker // one per node
	switch cfg.Broker {
	case "memory":
		b := broker.NewMemory(100) // redisbroker's default history
		c.closers = append(c.closers, b.Close)
		for range cfg.Nodes {
			brokers = append(brokers, b)
		}
	case "nats", "jetstream":
		brokers, err = c.startNATS(cfg, cfg.Broker == "jetstream")
	case "redis":
		brokers, err = c.startRedis(cfg)
	default:
		err = fmt.Errorf("cluster: unknown broker %q (have %v)", cfg.Broker, Brokers)
	}
	if err != nil {
		return nil, err
	}
	var presence []chatroom.Option
	switch cfg.Presence {
	case "", "off":
	case "on":
		presence = append(presence, chatroom.WithPresence())
	case "deltas":
		presence = append(presence, chatroom.WithPresenceDeltas(chatroom.PresenceDeltas{}))
	default:
		return nil, fmt.Errorf("cluster: unknown presence %q (have %v)", cfg.Presence, Presences)
	}
	for i, b := range brokers {
		if cfg.Broker == "redis" {
			c.Meters = append(c.Meters, &HeartbeatMeter{})
			b = meter(b, c.Meters[i])
		}
		// The load generator connects every member from one address.
		opts := []chatroom.Option{chatroom.WithName(cfg.Room), chatroom.WithBroker(b), chatroom.WithJoinLimit(chatroom.Off, 0)}
		opts = append(opts, presence...)
		if cfg.Heartbeat > 0 {
			opts = append(opts, chatroom.WithHeartbeat(cfg.Heartbeat))
		}
		room := chatroom.New(opts...)
		c.rooms = append(c.rooms, room)
		c.Handlers = append(c.Handlers, room)
	}
	return c, nil
}

// Close closes the rooms, which ends their members' connections and
// subscriptions, then the brokers, then the broker server Start started.
// It returns the first error. It is not safe to call concurrently with
// itself; Kill is.
func (c *Cluster) Close() error {
	var first error
	for _, room := range c.rooms {
		if err := room.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.rooms = nil
	for i := len(c.closers) - 1; i >= 0; i-- {
		if err := c.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	c.closers = nil
	c.Kill()
	return first
}

// Kill stops the broker process Start started (redis-server), if any, and
// waits for it to exit. Close calls it last; call it yourself when Close
// takes too long, so that the process never outlives this one. It may be
// called more than once, and concurrently with Close.
func (c *Cluster) Kill() {
	if c.kill != nil {
		c.kill()
	}
}

func (cfg Config) logf(format string, args ...any) {
	if cfg.Logf != nil {
		cfg.Logf(format, args...)
	}
}
