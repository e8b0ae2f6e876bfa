// Package melody serves the protocol with github.com/olahol/melody: each
// message is decoded, encoded once and passed to Melody.Broadcast, which
// queues it on every session's buffered channel (256 deep by default; melody
// drops the message for a session whose buffer is full).
package melody

import (
	"net/http"

	"github.com/olahol/melody"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/chatproto"
)

const nickKey = "nickname"

// New returns the /chat handler and a function that closes every session.
func New() (http.Handler, func()) {
	m := melody.New()
	m.Config.MaxMessageSize = chatproto.ReadLimit
	m.Upgrader.CheckOrigin = func(*http.Request) bool { return true }
	m.HandleMessage(func(s *melody.Session, data []byte) {
		text, err := chatproto.Decode(data)
		if err != nil {
			_ = s.Close()
			return
		}
		nick, _ := s.Get(nickKey)
		name, _ := nick.(string)
		_ = m.Broadcast(chatproto.Encode(name, text))
	})
	m.HandleMessageBinary(func(s *melody.Session, _ []byte) { _ = s.Close() })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = m.HandleRequestWithKeys(w, r, map[string]any{nickKey: chatproto.Nickname(r)})
	})
	return h, func() { _ = m.Close() }
}
