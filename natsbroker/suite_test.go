package natsbroker_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/brokertest"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// TestClusterSuite runs the library's cluster suite (three nodes, each a
// Registry with a broker on a connection of its own, and real WebSocket
// clients) in both modes, against a nats-server process of the version
// go.mod requires, built from the module cache: the outage test stops it
// (SIGTERM) and starts it again on the same port and store, and the hang
// test stops its process (SIGSTOP) and lets it go on (SIGCONT), which an
// in-process server cannot do.
func TestClusterSuite(t *testing.T) {
	bin := buildServer(t)
	modes := map[string]func(t *testing.T, nc *nats.Conn) broker.Broker{
		"Core": func(t *testing.T, nc *nats.Conn) broker.Broker {
			b, err := natsbroker.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"JetStream": func(t *testing.T, nc *nats.Conn) broker.Broker {
			b, err := natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
	for name, newBroker := range modes {
		t.Run(name, func(t *testing.T) {
			brokertest.RunCluster(t, func(t *testing.T) brokertest.Backend {
				p := startProcess(t, bin)
				return brokertest.Backend{
					// The suite closes the broker (a dead node, or the end);
					// the connection closes with the test.
					Connect: func(t *testing.T) broker.Broker {
						nc, _ := connectURL(t, p.url())
						return newBroker(t, nc)
					},
					Stop:   func(*testing.T) { p.stop() },
					Start:  func(*testing.T) { p.restart() },
					Pause:  func(*testing.T) { p.pause() },
					Resume: func(*testing.T) { p.resume() },
				}
			})
		})
	}
}
