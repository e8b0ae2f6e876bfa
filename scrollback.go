package chatroom

import (
	"context"
	"encoding/json"
	"errors"

	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom/internal/socket"
)

// Scrollback: a client asks for the messages before an ID,
//
//	{"type":"history","before":1838510899243813,"limit":50}
//
// and receives them, oldest first, in one frame of its own (PROTOCOL.md):
//
//	{"type":"history","id":…,"time":"…","before":1838510899243813,"messages":[…],"more":true}
const (
	// DefaultScrollback is how many messages a scrollback request without
	// a limit receives.
	DefaultScrollback = 50
	// MaxScrollback caps a scrollback request's limit: a greater one
	// receives this many.
	MaxScrollback = 100
)

// scrollbackTimeout bounds a Store's read for one scrollback request.
const scrollbackTimeout = 5 * time.Second

// Reasons for scrollback; part of the documented protocol.
const (
	reasonBadHistory         = `expected {"type":"history","before":id,"limit":n}`
	reasonHistoryUnavailable = "history unavailable"
)

// historyRequest is a client's scrollback request.
type historyRequest struct {
	before uint64 // 0: the newest
	limit  int    // 1 to MaxScrollback
}

// decodeHistoryRequest reads before (an ID, or absent for the newest) and
// limit (1 or more, absent for DefaultScrollback, capped at MaxScrollback)
// from a client frame's fields.
func decodeHistoryRequest(fields map[string]json.RawMessage) (historyRequest, error) {
	req := historyRequest{limit: DefaultScrollback}
	if raw, ok := fields["before"]; ok {
		if err := json.Unmarshal(raw, &req.before); err != nil || req.before >= 1<<53 {
			return req, errors.New("before: not a frame ID")
		}
	}
	if raw, ok := fields["limit"]; ok {
		var n int64
		if err := json.Unmarshal(raw, &n); err != nil || n < 1 {
			return req, errors.New("limit: not a positive integer")
		}
		req.limit = int(min(n, MaxScrollback))
	}
	return req, nil
}

// scrollback reports whether the room answers scrollback requests: it
// keeps history, and its frames carry IDs.
func (rm *Room) scrollback() bool { return rm.cfg.history != nil && rm.cfg.envelope }

// serveHistory answers m's scrollback request from the room's Store, which
// it reads without the room's lock. A room whose history is the broker's
// has no Store, and answers with no messages.
func (rm *Room) serveHistory(m *Member, req historyRequest) {
	var msgs []Message
	var more bool
	if rm.store != nil {
		ctx, cancel := context.WithTimeout(m.ctx, scrollbackTimeout)
		var err error
		msgs, more, err = rm.store.Before(ctx, req.before, req.limit)
		cancel()
		if err != nil {
			rm.cfg.log.Warn("chatroom: scrollback failed", "room", rm.cfg.name, "member", m.String(), "err", err)
			answer := errorFrame(websocket.StatusInternalError, reasonHistoryUnavailable)
			rm.refuse(m, nil, "", &answer)
			return
		}
	}
	tail := appendHistoryTail(nil, req.before, msgs, more)
	rm.mu.Lock()
	defer rm.mu.Unlock()
	head := Message{Type: TypeHistory}
	rm.stampOwnLocked(&head, m)
	buf := make([]byte, socket.MaxFrameHeader, socket.MaxFrameHeader+head.envelopeLen()+len(tail))
	buf = head.appendEnvelope(buf)
	buf = append(buf[:len(buf)-1], tail...) // the envelope's closing brace goes after the tail
	rm.queueLocked(socket.TextFrame(buf), []*Member{m})
}

// appendHistoryTail appends the fields of a history frame after its
// envelope, and the closing brace: ,"before":…,"messages":[…],"more":….
func appendHistoryTail(b []byte, before uint64, msgs []Message, more bool) []byte {
	b = append(b, `,"before":`...)
	b = strconv.AppendUint(b, before, 10)
	b = append(b, `,"messages":[`...)
	for i, msg := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = msg.appendEnvelope(b)
	}
	b = append(b, `],"more":`...)
	b = strconv.AppendBool(b, more)
	return append(b, '}')
}
