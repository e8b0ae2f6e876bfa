// Package gorillahub serves the protocol with the hub pattern of the
// gorilla/websocket chat example: one hub goroutine owns the set of clients
// and receives register, unregister and broadcast requests on channels; each
// client has a readPump and a writePump goroutine and a send channel of 256
// messages. A client whose send channel is full is dropped by the hub.
//
// Unlike the example, the writePump writes one frame per message (several
// queued messages become several frames, never one frame joined by
// newlines), because the protocol carries one JSON object per frame.
package gorillahub

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/chatproto"
)

const (
	writeWait  = 10 * time.Second
	pongWait   = 60 * time.Second
	pingPeriod = pongWait * 9 / 10
	sendBuffer = 256
)

type client struct {
	hub  *hub
	conn *websocket.Conn
	nick string
	send chan []byte
}

type hub struct {
	clients    map[*client]struct{}
	register   chan *client
	unregister chan *client
	broadcast  chan []byte
	quit       chan struct{}
	done       chan struct{}
}

func newHub() *hub {
	return &hub{
		clients:    make(map[*client]struct{}),
		register:   make(chan *client),
		unregister: make(chan *client),
		broadcast:  make(chan []byte, 256),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
}

func (h *hub) run() {
	defer close(h.done)
	for {
		select {
		case c := <-h.register:
			h.clients[c] = struct{}{}
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case msg := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- msg:
				default:
					delete(h.clients, c)
					close(c.send)
				}
			}
		case <-h.quit:
			for c := range h.clients {
				delete(h.clients, c)
				close(c.send)
			}
			return
		}
	}
}

func (c *client) readPump() {
	defer func() {
		select {
		case c.hub.unregister <- c:
		case <-c.hub.done:
		}
		_ = c.conn.Close()
	}()
	c.conn.SetReadLimit(chatproto.ReadLimit)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil || typ != websocket.TextMessage {
			return
		}
		text, err := chatproto.Decode(data)
		if err != nil {
			return
		}
		select {
		case c.hub.broadcast <- chatproto.Encode(c.nick, text):
		case <-c.hub.done:
			return
		}
	}
}

func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		_ = c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				_ = c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if !c.writeFrame(msg) {
				return
			}
			// Drain what is already queued, one frame per message.
			for n := len(c.send); n > 0; n-- {
				msg, ok := <-c.send
				if !ok {
					_ = c.conn.WriteMessage(websocket.CloseMessage, []byte{})
					return
				}
				if !c.writeFrame(msg) {
					return
				}
			}
		case <-ticker.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func (c *client) writeFrame(msg []byte) bool {
	w, err := c.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return false
	}
	if _, err := w.Write(msg); err != nil {
		return false
	}
	return w.Close() == nil
}

// New returns the /chat handler and a function that stops the hub.
func New() (http.Handler, func()) {
	h := newHub()
	go h.run()
	up := websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nick := chatproto.Nickname(r)
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &client{hub: h, conn: conn, nick: nick, send: make(chan []byte, sendBuffer)}
		select {
		case h.register <- c:
		case <-h.done:
			_ = conn.Close()
			return
		}
		go c.writePump()
		go c.readPump()
	})
	var once sync.Once
	return handler, func() {
		once.Do(func() { close(h.quit); <-h.done })
	}
}
