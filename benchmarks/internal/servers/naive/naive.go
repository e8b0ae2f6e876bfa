// Package naive serves the protocol with the tutorial's design: a
// mutex-protected set of connections and, for each message, a write to every
// connection in turn from the sender's own goroutine, with no queue and no
// write timeout (like the FastAPI ConnectionManager's broadcast loop).
package naive

import (
	"context"
	"net/http"
	"sync"

	"github.com/coder/websocket"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/chatproto"
)

type manager struct {
	mu    sync.RWMutex
	conns map[*websocket.Conn]struct{}
}

func (m *manager) broadcast(ctx context.Context, msg []byte) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for c := range m.conns {
		// An error here means that connection is gone; its own handler
		// removes it when its read fails.
		_ = c.Write(ctx, websocket.MessageText, msg)
	}
}

func (m *manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nick := chatproto.Nickname(r)
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(chatproto.ReadLimit)
	m.mu.Lock()
	m.conns[c] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
	}()
	ctx := context.Background()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			_ = c.CloseNow()
			return
		}
		if typ != websocket.MessageText {
			_ = c.Close(websocket.StatusUnsupportedData, "binary messages are not supported")
			return
		}
		text, err := chatproto.Decode(data)
		if err != nil {
			_ = c.Close(websocket.StatusInvalidFramePayloadData, "invalid message")
			return
		}
		m.broadcast(ctx, chatproto.Encode(nick, text))
	}
}

func (m *manager) closeAll() {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for c := range m.conns {
		_ = c.CloseNow()
	}
}

// New returns the /chat handler and a function that drops every connection.
func New() (http.Handler, func()) {
	m := &manager{conns: make(map[*websocket.Conn]struct{})}
	return m, m.closeAll
}
