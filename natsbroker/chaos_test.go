package natsbroker_test

import (
	"testing"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/brokertest"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// TestChaos checks exactly-once delivery end to end over JetStream: two
// nodes, clients whose connections are cut at random, a node killed and
// replaced, resends with refs that the stream's duplicate window
// recognises across nodes (see brokertest.RunChaos). Core NATS keeps no
// record, so it cannot pass: a resend through another node is delivered
// again there.
func TestChaos(t *testing.T) {
	p := startProcess(t, buildServer(t))
	brokertest.RunChaos(t, brokertest.Backend{
		Connect: func(t *testing.T) broker.Broker {
			nc, _ := connectURL(t, p.url())
			b, err := natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{History: brokertest.ChaosClients * brokertest.ChaosMessages})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	})
}
