package broker_test

import (
	"context"
	"fmt"

	"github.com/seed014c2c51/chatroom/broker"
)

// A DedupBroker takes each key once per room: a publication whose key it
// took already is reported, with the first's ID, rather than published.
func ExampleMemory_PublishOnce() {
	b := broker.NewMemory(10)
	defer b.Close()
	ctx := context.Background()
	delivered := 0
	sub, _ := b.Subscribe(ctx, "lobby", func(broker.Publication) { delivered++ })
	defer sub.Unsubscribe()

	first := broker.Publication{Keep: true, Key: "ann/7", Data: []byte("hello")}
	dups, _ := b.PublishOnce(ctx, "lobby", []broker.Publication{first})
	fmt.Println("duplicates:", len(dups))
	again := broker.Publication{Keep: true, Key: "ann/7", Data: []byte("hello")}
	other := broker.Publication{Keep: true, Key: "ann/8", Data: []byte("bye")}
	dups, _ = b.PublishOnce(ctx, "lobby", []broker.Publication{again, other})
	pubs, _, _ := b.History(ctx, "lobby", 0)
	fmt.Println("duplicates:", len(dups), "index", dups[0].Index, "first's ID", dups[0].ID == pubs[0].ID)
	fmt.Println("delivered:", delivered)
	// Output:
	// duplicates: 0
	// duplicates: 1 index 0 first's ID true
	// delivered: 2
}
