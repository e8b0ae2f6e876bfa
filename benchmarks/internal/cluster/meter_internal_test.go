package cluster

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/redisbroker"
)

// TestMeterKeepsPipeline: the metered Redis broker is still a
// broker.PipelineBroker, so that rooms keep several batches in flight.
func TestMeterKeepsPipeline(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	b := redisbroker.New(client)
	t.Cleanup(func() { _ = b.Close() })
	for _, want := range []struct {
		name string
		ok   bool
	}{
		{"BatchBroker", is[broker.BatchBroker](meter(b, &HeartbeatMeter{}))},
		{"HistoryBroker", is[broker.HistoryBroker](meter(b, &HeartbeatMeter{}))},
		{"PresenceBroker", is[broker.PresenceBroker](meter(b, &HeartbeatMeter{}))},
		{"PipelineBroker", is[broker.PipelineBroker](meter(b, &HeartbeatMeter{}))},
	} {
		if !want.ok {
			t.Errorf("the metered broker is not a broker.%s", want.name)
		}
	}
}

func is[T any](b broker.Broker) bool {
	_, ok := b.(T)
	return ok
}
