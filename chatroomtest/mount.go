package chatroomtest

import (
	"context"
	"net/http"
)

// Mount returns a handler that serves h at pattern in an http.ServeMux of its
// own (404 elsewhere), so that h sees the pattern's path values: a
// chatroom.Registry, by default, takes its room's name from the {room}
// wildcard. Clients then connect with Path.
//
//	reg := chatroom.NewRegistry()
//	srv := chatroomtest.NewServer(t, chatroomtest.Mount("/rooms/{room}/chat", reg))
//	ann := srv.Connect("ann", chatroomtest.Path("/rooms/lobby/chat"))
//
// If h has a method Shutdown(context.Context) error, so does the handler
// Mount returns, and the server shuts h down when it closes (see NewServer).
func Mount(pattern string, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(pattern, h)
	if sd, ok := h.(shutdowner); ok {
		return &mountedShutdowner{ServeMux: mux, sd: sd}
	}
	return mux
}

// mountedShutdowner is a ServeMux that shuts down the handler it serves.
type mountedShutdowner struct {
	*http.ServeMux
	sd shutdowner
}

func (m *mountedShutdowner) Shutdown(ctx context.Context) error { return m.sd.Shutdown(ctx) }
