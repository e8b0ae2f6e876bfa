package chatroomprom_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomprom"
)

// BenchmarkSink measures what a room's events cost with Prometheus behind
// them: a broadcast's one Fanout, whatever its number of members, and the
// per-connection and per-message events. The root module's
// BenchmarkBroadcastMetrics puts the Fanout beside a broadcast's cost.
func BenchmarkSink(b *testing.B) {
	for _, label := range []bool{false, true} {
		var opts []chatroomprom.Option
		name := "room-label=off"
		if label {
			opts = append(opts, chatroomprom.WithRoomLabel(func(string) string { return "lobby" }))
			name = "room-label=on"
		}
		m, err := chatroomprom.New(prometheus.NewRegistry(), opts...)
		if err != nil {
			b.Fatal(err)
		}
		sink := m.Room("lobby")
		f := chatroom.Fanout{Frames: 100, Bytes: 100 * 120, Broadcast: true, DeepestQueue: 4096, Took: 20 * time.Microsecond}
		b.Run(name+"/Fanout", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink.Fanout(f)
			}
		})
		b.Run(name+"/Received", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink.Received()
			}
		})
		reason := chatroom.ErrQueueOverflow
		b.Run(name+"/Connected+Disconnected", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink.Connected()
				sink.Disconnected(reason)
			}
		})
	}
}

// The events allocate nothing.
func TestSinkAllocs(t *testing.T) {
	m, err := chatroomprom.New(prometheus.NewRegistry(), chatroomprom.WithRoomLabel(func(string) string { return "lobby" }))
	if err != nil {
		t.Fatal(err)
	}
	sink := m.Room("lobby")
	f := chatroom.Fanout{Frames: 100, Bytes: 100 * 120, Broadcast: true, DeepestQueue: 4096, Took: 20 * time.Microsecond}
	if n := testing.AllocsPerRun(1000, func() {
		sink.Fanout(f)
		sink.Received()
		sink.Connected()
		sink.Disconnected(chatroom.ErrQueueOverflow)
		sink.Resumed(true)
		sink.BrokerPublished(3, time.Millisecond)
		sink.BrokerFailed(chatroom.BrokerPublish, nil)
	}); n != 0 {
		t.Errorf("events allocate %v times", n)
	}
}
