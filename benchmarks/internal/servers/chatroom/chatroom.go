// Package chatroom serves the protocol with this repository's library,
// github.com/seed014c2c51/chatroom, using its defaults but one: the join
// limit per client IP is off, since the load generator connects every
// member from one address.
package chatroom

import (
	"net/http"

	"github.com/seed014c2c51/chatroom"
)

// New returns a Room as the /chat handler and a function that closes it.
// opts come after the benchmarks' own, such as WithHistory for
// chatserver -store.
func New(opts ...chatroom.Option) (http.Handler, func()) {
	room := chatroom.New(append([]chatroom.Option{chatroom.WithJoinLimit(chatroom.Off, 0)}, opts...)...)
	return room, func() { _ = room.Close() }
}
