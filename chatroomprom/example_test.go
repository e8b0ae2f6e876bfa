package chatroomprom_test

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomprom"
)

// Rooms report to the metrics given with WithMetrics; a Registry's rooms
// share them through WithRoomOptions.
func ExampleNew() {
	reg := prometheus.NewRegistry()
	metrics, err := chatroomprom.New(reg)
	if err != nil {
		panic(err)
	}
	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option {
		return []chatroom.Option{chatroom.WithMetrics(metrics)}
	}))
	for _, name := range []string{"lobby", "random"} {
		if _, err := rooms.Open(name); err != nil {
			panic(err)
		}
	}
	n, err := testutil.GatherAndCount(reg, "chatroom_rooms")
	fmt.Println(n, err)
	fmt.Println(scrapeOne(reg, "chatroom_rooms"))
	_ = rooms.Shutdown(context.Background())
	fmt.Println(scrapeOne(reg, "chatroom_rooms"))
	// Output:
	// 1 <nil>
	// 2
	// 0
}

// A room label bounded by the host: its own rooms by name, the others
// together.
func ExampleWithRoomLabel() {
	reg := prometheus.NewRegistry()
	metrics, err := chatroomprom.New(reg, chatroomprom.WithRoomLabel(func(room string) string {
		if room == "lobby" {
			return room
		}
		return "other"
	}))
	if err != nil {
		panic(err)
	}
	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option {
		return []chatroom.Option{chatroom.WithMetrics(metrics)}
	}))
	for _, name := range []string{"lobby", "cats", "dogs"} {
		if _, err := rooms.Open(name); err != nil {
			panic(err)
		}
	}
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == "chatroom_rooms" {
			for _, m := range f.GetMetric() {
				fmt.Printf("%s %s %v\n", f.GetName(), m.GetLabel()[0].GetValue(), m.GetGauge().GetValue())
			}
		}
	}
	_ = rooms.Shutdown(context.Background())
	// Output:
	// chatroom_rooms lobby 1
	// chatroom_rooms other 2
}

// scrapeOne returns the value of the gauge name, which has no labels.
func scrapeOne(reg prometheus.Gatherer, name string) float64 {
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
