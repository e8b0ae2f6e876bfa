package chatroom_test

import (
	"testing"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/brokertest"
)

// TestCluster runs the cluster semantics on broker.Memory: three nodes, real
// clients, within one process.
func TestCluster(t *testing.T) {
	brokertest.RunCluster(t, brokertest.MemoryBackend)
}

// TestClusterPlainBroker runs them on a broker that only moves bytes, as
// core NATS does: per-node history, presence from heartbeats only.
func TestClusterPlainBroker(t *testing.T) {
	brokertest.RunCluster(t, func(t *testing.T) brokertest.Backend {
		b := brokertest.MemoryBackend(t)
		connect := b.Connect
		b.Connect = func(t *testing.T) broker.Broker { return brokertest.Plain(connect(t)) }
		return b
	})
}

// TestChaos checks exactly-once delivery end to end on broker.Memory:
// clients whose connections are cut, a node killed, resends with refs.
func TestChaos(t *testing.T) {
	brokertest.RunChaos(t, brokertest.MemoryBackend(t))
}
