package redisbroker

import (
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/brokertest"
)

// TestCluster runs the library's cluster suite: three nodes, each a
// Registry with a broker on a client of its own, and real WebSocket clients.
// The outage and hang tests need a redis-server of its own, to kill and
// restart, or stop (SIGSTOP) and continue; with REDIS_URL they are skipped.
func TestCluster(t *testing.T) {
	brokertest.RunCluster(t, redisBackend(func(b *Broker) broker.Broker { return b }))
}

// TestClusterPlain runs it with the broker seen as a plain Broker, without
// history or presence, as rooms see a broker that only moves bytes.
func TestClusterPlain(t *testing.T) {
	brokertest.RunCluster(t, redisBackend(func(b *Broker) broker.Broker { return brokertest.Plain(b) }))
}

func redisBackend(wrap func(*Broker) broker.Broker) func(t *testing.T) brokertest.Backend {
	return func(t *testing.T) brokertest.Backend {
		r := newRedis(t)
		b := brokertest.Backend{
			Connect: func(t *testing.T) broker.Broker {
				// The suite closes the broker: for DeadNode, as the node's
				// death, else at the end. The client closes with the test.
				//
				// The health check is longer than the hang test's pause
				// (3s): shorter, it would drop the pub/sub connections of
				// a Redis that hangs, and what Redis runs when it resumes
				// would be lost to the nodes subscribing again, as the
				// README says an outage loses.
				return wrap(New(r.client(t, ""), WithKeyPrefix(r.prefix), WithHealthCheckInterval(5*time.Second)))
			},
		}
		if r.local != nil {
			b.Stop = func(*testing.T) { r.local.kill() }
			b.Start = func(*testing.T) { r.local.restart() }
			b.Pause = func(*testing.T) { r.local.pause() }
			b.Resume = func(*testing.T) { r.local.resume() }
		}
		return b
	}
}
