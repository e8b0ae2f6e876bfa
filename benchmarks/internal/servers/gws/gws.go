// Package gws serves the protocol with github.com/lxzan/gws: each socket
// runs gws's ReadLoop; a message is encoded once into a gws.Broadcaster,
// which builds the frame once and pushes it on every socket's asynchronous
// write queue. gws sets no write deadline on broadcast writes and its write
// queues are unbounded.
package gws

import (
	"net/http"
	"sync"

	"github.com/lxzan/gws"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/chatproto"
)

const nickKey = "nickname"

type handler struct {
	gws.BuiltinEventHandler
	mu      sync.RWMutex
	sockets map[*gws.Conn]struct{}
}

func (h *handler) OnOpen(s *gws.Conn) {
	h.mu.Lock()
	h.sockets[s] = struct{}{}
	h.mu.Unlock()
}

func (h *handler) OnClose(s *gws.Conn, _ error) {
	h.mu.Lock()
	delete(h.sockets, s)
	h.mu.Unlock()
}

func (h *handler) OnPing(s *gws.Conn, payload []byte) { _ = s.WritePong(payload) }

func (h *handler) OnMessage(s *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	if msg.Opcode != gws.OpcodeText {
		_ = s.WriteClose(1003, nil)
		return
	}
	text, err := chatproto.Decode(msg.Bytes())
	if err != nil {
		_ = s.WriteClose(1007, nil)
		return
	}
	nick, _ := s.Session().Load(nickKey)
	name, _ := nick.(string)
	b := gws.NewBroadcaster(gws.OpcodeText, chatproto.Encode(name, text))
	h.mu.RLock()
	for c := range h.sockets {
		_ = b.Broadcast(c)
	}
	h.mu.RUnlock()
	_ = b.Close()
}

// New returns the /chat handler and a function that closes every socket.
func New() (http.Handler, func()) {
	h := &handler{sockets: make(map[*gws.Conn]struct{})}
	up := gws.NewUpgrader(h, &gws.ServerOption{
		ReadMaxPayloadSize: chatproto.ReadLimit,
		CheckUtf8Enabled:   false, // chatproto.Decode checks UTF-8
		Authorize: func(r *http.Request, session gws.SessionStorage) bool {
			session.Store(nickKey, chatproto.Nickname(r))
			return true
		},
	})
	hf := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go s.ReadLoop()
	})
	return hf, func() {
		h.mu.RLock()
		for c := range h.sockets {
			_ = c.NetConn().Close()
		}
		h.mu.RUnlock()
	}
}
