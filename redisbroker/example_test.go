package redisbroker_test

import (
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/redisbroker"
)

// Every node of the cluster runs this, behind a load balancer: the rooms
// of one name on all the nodes act as one room, with one history and one
// member list. It needs a Redis server, so it has no Output to check.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:6379",
		// Keep Publish from blocking the room when Redis is down or slow
		// (see the README): dial once, bound dials, reads and writes, let
		// the broker's timeout apply to them, and do not retry commands,
		// so that a publication is never sent twice.
		DialerRetries:         1,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	defer client.Close()

	broker := redisbroker.New(client,
		redisbroker.WithKeyPrefix("myapp-chat"),
		redisbroker.WithHistorySize(200),
	)
	defer broker.Close()

	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option {
		return []chatroom.Option{
			chatroom.WithBroker(broker),
			chatroom.WithHistory(chatroom.History{Len: 100}),
			chatroom.WithPresence(),
		}
	}))
	http.Handle("/rooms/{room}/chat", rooms)
	log.Fatal(http.ListenAndServe(":8000", nil))
}
