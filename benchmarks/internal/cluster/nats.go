package cluster

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// startNATS connects one connection and one broker per node to
// cfg.NATSURL, or to a nats-server it starts in this process. With
// jetStream the brokers are natsbroker.JetStreamBrokers (history and
// presence in JetStream, file storage), else core natsbroker.Brokers.
func (c *Cluster) startNATS(cfg Config, jetStream bool) ([]broker.Broker, error) {
	clientURL := cfg.NATSURL
	if clientURL == "" {
		s, err := startNATSServer(jetStream)
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, s.stop)
		clientURL = s.srv.ClientURL()
		cfg.logf("started nats-server in this process on %s (JetStream %v)", clientURL, jetStream)
	}
	u, err := url.Parse(clientURL)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats url: %w", err)
	}
	if err := loopbackAddr(u.Host); err != nil {
		return nil, err
	}
	var brokers []broker.Broker
	for i := range cfg.Nodes {
		opts := append(natsbroker.ConnectOptions(), nats.Name(fmt.Sprintf("chatbench-node-%d", i)))
		// ConnectOptions retries a failed connection for ever in the
		// background; a benchmark wants to know now.
		opts = append(opts, nats.RetryOnFailedConnect(false), nats.Timeout(5*time.Second))
		nc, err := nats.Connect(clientURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("cluster: nats at %s: %w", clientURL, err)
		}
		c.closers = append(c.closers, func() error { nc.Close(); return nil })
		var b interface {
			broker.Broker
			Close() error
		}
		if jetStream {
			b, err = natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{})
		} else {
			b, err = natsbroker.New(nc)
		}
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, b.Close)
		brokers = append(brokers, b)
	}
	return brokers, nil
}

// natsServer is a nats-server running in this process.
type natsServer struct {
	srv *server.Server
	dir string // JetStream's store, removed by stop; "" without JetStream
}

// startNATSServer starts a nats-server on a free loopback port, with
// JetStream in a temporary directory if asked.
func startNATSServer(jetStream bool) (*natsServer, error) {
	o := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true}
	s := &natsServer{}
	if jetStream {
		dir, err := os.MkdirTemp("", "chatbench-nats-")
		if err != nil {
			return nil, err
		}
		s.dir = dir
		o.JetStream, o.StoreDir = true, dir
	}
	srv, err := server.NewServer(o)
	if err != nil {
		_ = s.stop()
		return nil, fmt.Errorf("cluster: nats-server: %w", err)
	}
	s.srv = srv
	srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		_ = s.stop()
		return nil, errors.New("cluster: nats-server not ready within 5s")
	}
	return s, nil
}

// stop shuts the server down, waits for it and removes its store.
func (s *natsServer) stop() error {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
	if s.dir != "" {
		return os.RemoveAll(s.dir)
	}
	return nil
}
