package natsbroker_test

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/brokertest"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// TestClusterSuite runs the library's cluster suite (three nodes, each a
// Registry with a broker on a connection of its own, and real WebSocket
// clients) against an in-process server, in both modes. The outage test
// stops the server and starts another on the same port and store.
func TestClusterSuite(t *testing.T) {
	modes := map[string]func(t *testing.T, s *server.Server) broker.Broker{
		"Core": func(t *testing.T, s *server.Server) broker.Broker {
			nc, _ := connect(t, s)
			b, err := natsbroker.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"JetStream": func(t *testing.T, s *server.Server) broker.Broker {
			nc, _ := connect(t, s)
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
				opts := &server.Options{ServerName: "suite", StoreDir: t.TempDir()}
				s := startServer(t, opts)
				opts.Port = port(s) // a restart comes back where it was
				return brokertest.Backend{
					// The suite closes the broker (a dead node, or the end);
					// the connection closes with the test.
					Connect: func(t *testing.T) broker.Broker { return newBroker(t, s) },
					Stop: func(*testing.T) {
						s.Shutdown()
						s.WaitForShutdown()
					},
					Start: func(t *testing.T) { s = startServer(t, opts) },
				}
			})
		})
	}
}
