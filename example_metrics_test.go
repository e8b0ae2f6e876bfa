package chatroom_test

import (
	"context"
	"fmt"
	"time"

	"github.com/seed014c2c51/chatroom"
)

// printMetrics is a chatroom.Metrics that prints what its rooms report,
// but for the frames, which a real one counts.
type printMetrics struct{}

func (printMetrics) Room(name string) chatroom.RoomMetrics {
	fmt.Println("room opened:", name)
	return roomPrinter(name)
}

type roomPrinter string

func (r roomPrinter) Closed()                                 { fmt.Println("room closed:", string(r)) }
func (roomPrinter) Connected()                                {}
func (roomPrinter) Disconnected(reason error)                 { fmt.Println("left:", chatroom.ReasonLabel(reason)) }
func (roomPrinter) Received()                                 {}
func (roomPrinter) Fanout(f chatroom.Fanout)                  {}
func (roomPrinter) Resumed(truncated bool)                    {}
func (roomPrinter) BrokerPublished(n int, took time.Duration) {}
func (roomPrinter) BrokerFailed(chatroom.BrokerOp, error)     {}

// A Registry's rooms share one Metrics through WithRoomOptions; New asks
// it for each room's sink once (package chatroomprom exports them to
// Prometheus).
func ExampleWithMetrics() {
	var metrics chatroom.Metrics = printMetrics{}
	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option {
		return []chatroom.Option{chatroom.WithMetrics(metrics)}
	}))
	if _, err := rooms.Open("lobby"); err != nil {
		panic(err)
	}
	_ = rooms.Shutdown(context.Background())
	// Output:
	// room opened: lobby
	// room closed: lobby
}

// ReasonLabel names a leave reason from a fixed set, for a metric's label
// or a log line's attribute.
func ExampleReasonLabel() {
	for _, reason := range []error{chatroom.ErrQueueOverflow, chatroom.ErrWriteTimeout, chatroom.ErrMessageTooBig, chatroom.ErrRoomClosed} {
		fmt.Println(chatroom.ReasonLabel(reason))
	}
	// Output:
	// slow
	// slow
	// too_big
	// shutdown
}
