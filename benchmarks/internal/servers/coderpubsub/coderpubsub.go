// Package coderpubsub serves the protocol with the pub/sub design of
// github.com/coder/websocket's chat example: every connection is a
// subscriber with a 256-deep buffered channel; publishing loops over the
// subscribers under a mutex and drops (closes) one whose channel is full;
// each subscriber's goroutine writes its messages with a per-write timeout.
package coderpubsub

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/chatproto"
)

const (
	subscriberBuffer = 256
	writeTimeout     = 5 * time.Second
)

type subscriber struct {
	msgs      chan []byte
	closeSlow func()
}

type server struct {
	mu          sync.Mutex
	subscribers map[*subscriber]struct{}
	ctx         context.Context
	cancel      context.CancelFunc
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nick := chatproto.Nickname(r)
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(chatproto.ReadLimit)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	sub := &subscriber{
		msgs: make(chan []byte, subscriberBuffer),
		closeSlow: func() {
			_ = c.Close(websocket.StatusPolicyViolation, "connection too slow to keep up with messages")
		},
	}
	s.add(sub)
	defer s.remove(sub)

	// The reader decodes and publishes until the connection fails; the
	// writer, on this goroutine, stops when the reader does.
	readErr := make(chan error, 1)
	go func() {
		readErr <- s.readLoop(ctx, c, nick)
		cancel()
	}()
	_ = s.writeLoop(ctx, c, sub)
	cancel() // a failed write ends the reader too
	var invalid *invalidError
	if errors.As(<-readErr, &invalid) {
		_ = c.Close(websocket.StatusInvalidFramePayloadData, "invalid message")
		return
	}
	_ = c.CloseNow()
}

type invalidError struct{}

func (*invalidError) Error() string { return "invalid message" }

func (s *server) readLoop(ctx context.Context, c *websocket.Conn, nick string) error {
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			return &invalidError{}
		}
		text, err := chatproto.Decode(data)
		if err != nil {
			return &invalidError{}
		}
		s.publish(chatproto.Encode(nick, text))
	}
}

func (s *server) writeLoop(ctx context.Context, c *websocket.Conn, sub *subscriber) error {
	for {
		select {
		case msg := <-sub.msgs:
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.Write(wctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *server) publish(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subscribers {
		select {
		case sub.msgs <- msg:
		default:
			go sub.closeSlow()
		}
	}
}

func (s *server) add(sub *subscriber) {
	s.mu.Lock()
	s.subscribers[sub] = struct{}{}
	s.mu.Unlock()
}

func (s *server) remove(sub *subscriber) {
	s.mu.Lock()
	delete(s.subscribers, sub)
	s.mu.Unlock()
}

// New returns the /chat handler and a function that ends every connection.
func New() (http.Handler, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{subscribers: make(map[*subscriber]struct{}), ctx: ctx, cancel: cancel}
	return s, cancel
}
