package redisbroker

import (
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/brokertest"
)

// TestChaos checks exactly-once delivery end to end over Redis: two nodes,
// clients whose connections are cut at random, a node killed and replaced,
// resends with refs that the publish script recognises across nodes (see
// brokertest.RunChaos).
func TestChaos(t *testing.T) {
	r := newRedis(t)
	brokertest.RunChaos(t, brokertest.Backend{
		Connect: func(t *testing.T) broker.Broker {
			return New(r.client(t, ""), WithKeyPrefix(r.prefix), WithHealthCheckInterval(5*time.Second),
				WithHistorySize(brokertest.ChaosClients*brokertest.ChaosMessages))
		},
	})
}
