// Package servers lists the benchmarked server designs and builds the HTTP
// handler of each, mounted at /chat.
package servers

import (
	"fmt"
	"net/http"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers/centrifuge"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers/chatroom"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers/coderpubsub"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers/gorillahub"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers/gws"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers/melody"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers/naive"
)

// Path is where every server serves the chat protocol.
const Path = "/chat"

type factory func() (http.Handler, func(), error)

func plain(f func() (http.Handler, func())) factory {
	return func() (http.Handler, func(), error) {
		h, stop := f()
		return h, stop, nil
	}
}

var impls = []struct {
	name string
	new  factory
}{
	{"chatroom", plain(func() (http.Handler, func()) { return chatroom.New() })},
	{"melody", plain(melody.New)},
	{"gorillahub", plain(gorillahub.New)},
	{"gws", plain(gws.New)},
	{"centrifuge", func() (http.Handler, func(), error) { return centrifuge.New(false) }},
	{"centrifuge-batched", func() (http.Handler, func(), error) { return centrifuge.New(true) }},
	{"coderpubsub", plain(coderpubsub.New)},
	{"naive", plain(naive.New)},
}

// Names returns the names of all designs, in report order.
func Names() []string {
	names := make([]string, len(impls))
	for i, im := range impls {
		names[i] = im.name
	}
	return names
}

// New returns a mux serving design name at Path, and a function that stops
// the design's background work and connections.
func New(name string) (http.Handler, func(), error) {
	for _, im := range impls {
		if im.name != name {
			continue
		}
		h, stop, err := im.new()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		mux := http.NewServeMux()
		mux.Handle(Path, h)
		return mux, stop, nil
	}
	return nil, nil, fmt.Errorf("unknown implementation %q (have %v)", name, Names())
}
