// Command chat is the flagship example of package chatroom: a chat server
// with named rooms and a single-page client.
//
//	go run ./examples/chat                     # http://localhost:8000/
//	go run ./examples/chat -addr :9000 -history 500 -origins localhost:3000
//
// It serves
//
//	/                     the chat page (embedded, from ../internal/webchat/static:
//	                      index.html, app.js, style.css)
//	/rooms/{room}/chat    the page's rooms: a chatroom.Registry with presence,
//	                      join/leave notices, error frames, unique nicknames
//	                      (4009 "nickname taken") and history, so a client that
//	                      reconnects with ?since=<id> gets what it missed
//	/chat                 the tutorial's single room, speaking the default protocol
//	                      ({"nickname","message"} and nothing else), for the
//	                      tutorial's own front ends
//
// -origins lets a front end served from another origin (such as the
// tutorial's own on port 3000) connect. The HTTP server's timeouts and
// header limit are those of examples/internal/serve (-read-header-timeout,
// -read-timeout, -write-timeout, -idle-timeout, -max-header-bytes); they
// bound ordinary requests and idle keep-alive connections, not WebSockets.
// SIGINT or SIGTERM shuts it down gracefully: members receive close status
// 1001.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/seed014c2c51/chatroom/examples/internal/chatapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run serves the chat (examples/internal/chatapp) until ctx ends. If ready
// is not nil, it receives the listening address once the server accepts
// connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	return chatapp.Run(ctx, args, stderr, ready, chatapp.Extension{})
}
