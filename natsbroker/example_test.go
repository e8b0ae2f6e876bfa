package natsbroker_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// runNATS starts a NATS server in the process, for the examples; a host
// connects to its own servers instead.
func runNATS(jetStream bool) (*server.Server, func()) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: jetStream}
	if jetStream {
		dir, err := os.MkdirTemp("", "natsbroker-example")
		if err != nil {
			log.Fatal(err)
		}
		opts.StoreDir = dir
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		log.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		log.Fatal("NATS is not ready")
	}
	return srv, func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		if opts.StoreDir != "" {
			_ = os.RemoveAll(opts.StoreDir)
		}
	}
}

// Two nodes, here in one process, each with its connection and its broker:
// what one publishes to a room reaches the other's subscription. A room
// uses its broker through chatroom.WithBroker; this example calls it
// directly.
func Example() {
	srv, stop := runNATS(false)
	defer stop()

	var nodes []*natsbroker.Broker
	for range 2 {
		nc, err := nats.Connect(srv.ClientURL(), natsbroker.ConnectOptions()...)
		if err != nil {
			log.Fatal(err)
		}
		defer nc.Close()
		b, err := natsbroker.New(nc)
		if err != nil {
			log.Fatal(err)
		}
		defer b.Close()
		nodes = append(nodes, b)
	}

	ctx := context.Background()
	got := make(chan string, 1)
	sub, err := nodes[1].Subscribe(ctx, "lobby", func(p broker.Publication) {
		got <- string(p.Data) // p.Data is only valid during the call
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Unsubscribe()

	if err := nodes[0].Publish(ctx, "lobby", broker.Publication{Data: []byte("hello from node 0")}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: hello from node 0
}

// A JetStreamBroker numbers and keeps the rooms' kept publications: here
// it keeps two per room, so the first of three is dropped, and History
// says so.
func ExampleJetStreamBroker_History() {
	srv, stop := runNATS(true)
	defer stop()
	nc, err := nats.Connect(srv.ClientURL(), natsbroker.ConnectOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	b, err := natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{History: 2, Storage: jetstream.MemoryStorage})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	for _, text := range []string{"one", "two", "three"} {
		if err := b.Publish(ctx, "lobby", broker.Publication{Keep: true, Data: []byte(text)}); err != nil {
			log.Fatal(err)
		}
	}
	pubs, complete, err := b.History(ctx, "lobby", 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range pubs {
		fmt.Println(string(p.Data))
	}
	fmt.Println("complete:", complete)

	// Resuming after "two" misses nothing.
	pubs, complete, err = b.History(ctx, "lobby", pubs[0].ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(pubs), string(pubs[0].Data), "complete:", complete)
	// Output:
	// two
	// three
	// complete: false
	// 1 three complete: true
}
