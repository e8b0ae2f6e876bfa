// Package centrifuge serves the protocol with a github.com/centrifugal/centrifuge
// Node. Each connection is a centrifuge Client over a custom unidirectional
// Transport written here (on github.com/gobwas/ws frames) that speaks our
// protocol instead of centrifuge's:
//
//   - the handler reads frames itself, decodes {"message"} and calls
//     Node.Publish on channel "chat" with our broadcast frame as data;
//   - every connection is subscribed to "chat" on the server side (in
//     OnConnecting), so the Node's hub fans each publication out to every
//     Client's write queue;
//   - the Client hands the Transport centrifuge's JSON push
//     {"channel":"chat","pub":{"data":<our frame>}}, encoded once per
//     publication; the Transport cuts the data out and writes it as one text
//     frame. Other pushes (connect, ping) are disabled or dropped.
//
// The Client's writer goroutine drains up to 16 queued messages at a time
// and passes them to Transport.WriteMany. The plain variant writes each frame
// with its own conn.Write call; the batched variant packs all of them into
// one buffer and one conn.Write call.
package centrifuge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/gobwas/ws"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/chatproto"
)

const (
	channel      = "chat"
	writeTimeout = 10 * time.Second
)

// New returns the /chat handler of a running Node and a function that
// shuts it down. With batched, WriteMany issues one write call for all the
// frames it is given.
func New(batched bool) (http.Handler, func(), error) {
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelNone})
	if err != nil {
		return nil, nil, err
	}
	node.OnConnecting(func(context.Context, centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{
			Subscriptions: map[string]centrifuge.SubscribeOptions{channel: {}},
		}, nil
	})
	node.OnConnect(func(*centrifuge.Client) {})
	if err := node.Run(); err != nil {
		return nil, nil, err
	}
	h := &handler{node: node, batched: batched}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = node.Shutdown(ctx)
	}
	return h, stop, nil
}

type handler struct {
	node    *centrifuge.Node
	batched bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nick := chatproto.Nickname(r)
	conn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	t := &transport{conn: conn, batched: h.batched}
	ctx := centrifuge.SetCredentials(context.Background(), &centrifuge.Credentials{UserID: nick})
	client, closeClient, err := centrifuge.NewClient(ctx, h.node, t)
	if err != nil {
		_ = conn.Close()
		return
	}
	defer func() { _ = closeClient() }()
	if err := client.ConnectNoErrorToDisconnect(centrifuge.ConnectRequest{}); err != nil {
		_ = t.Close(centrifuge.DisconnectServerError)
		return
	}
	var br *bufio.Reader
	if rw != nil && rw.Reader.Buffered() > 0 {
		br = rw.Reader
	} else {
		br = bufio.NewReaderSize(conn, 4096)
	}
	code, reason := h.readLoop(br, t, nick)
	t.closeWith(code, reason)
}

// readLoop reads client frames until the connection fails or sends
// something the protocol does not allow, and returns the close status.
func (h *handler) readLoop(br *bufio.Reader, t *transport, nick string) (ws.StatusCode, string) {
	var msg []byte
	for {
		hd, err := ws.ReadHeader(br)
		if err != nil {
			return 0, ""
		}
		if !hd.Masked {
			return ws.StatusProtocolError, "unmasked frame"
		}
		if hd.OpCode.IsControl() {
			payload := make([]byte, hd.Length)
			if _, err := io.ReadFull(br, payload); err != nil {
				return 0, ""
			}
			ws.Cipher(payload, hd.Mask, 0)
			switch hd.OpCode {
			case ws.OpPing:
				if t.writeControl(ws.OpPong, payload) != nil {
					return 0, ""
				}
			case ws.OpClose:
				return ws.StatusNormalClosure, ""
			}
			continue
		}
		if int64(len(msg))+hd.Length > chatproto.ReadLimit {
			return ws.StatusMessageTooBig, "message too big"
		}
		if hd.OpCode == ws.OpBinary {
			return ws.StatusUnsupportedData, "binary messages are not supported"
		}
		if (hd.OpCode == ws.OpContinuation) != (msg != nil) {
			return ws.StatusProtocolError, "unexpected continuation"
		}
		start := len(msg)
		msg = append(msg, make([]byte, hd.Length)...)
		if _, err := io.ReadFull(br, msg[start:]); err != nil {
			return 0, ""
		}
		ws.Cipher(msg[start:], hd.Mask, 0)
		if msg == nil {
			msg = []byte{}
		}
		if !hd.Fin {
			continue
		}
		text, err := chatproto.Decode(msg)
		msg = nil
		if err != nil {
			return ws.StatusInvalidFramePayloadData, "invalid message"
		}
		if _, err := h.node.Publish(channel, chatproto.Encode(nick, text)); err != nil {
			return ws.StatusInternalServerError, "publish failed"
		}
	}
}

// transport is a unidirectional centrifuge.Transport writing our frames.
type transport struct {
	conn    net.Conn
	batched bool

	mu     sync.Mutex // guards buf, closed and writes on conn
	buf    []byte
	closed bool
}

var errClosed = errors.New("transport closed")

func (t *transport) Name() string                      { return "chatproto" }
func (t *transport) AcceptProtocol() string            { return "h1" }
func (t *transport) Protocol() centrifuge.ProtocolType { return centrifuge.ProtocolTypeJSON }
func (t *transport) ProtocolVersion() centrifuge.ProtocolVersion {
	return centrifuge.ProtocolVersion2
}
func (t *transport) Unidirectional() bool { return true }
func (t *transport) Emulation() bool      { return false }

// DisabledPushFlags leaves only publications.
func (t *transport) DisabledPushFlags() uint64 {
	return centrifuge.PushFlagConnect | centrifuge.PushFlagDisconnect | centrifuge.PushFlagSubscribe |
		centrifuge.PushFlagJoin | centrifuge.PushFlagLeave | centrifuge.PushFlagUnsubscribe |
		centrifuge.PushFlagMessage
}

// PingPongConfig disables centrifuge's application-level pings, which our
// protocol does not have.
func (t *transport) PingPongConfig() centrifuge.PingPongConfig {
	return centrifuge.PingPongConfig{PingInterval: -1, PongTimeout: -1}
}

// Write writes the publication carried by one push as one text frame.
func (t *transport) Write(data []byte) error {
	payload := publicationData(data)
	if payload == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errClosed
	}
	t.buf = appendFrame(t.buf[:0], ws.OpText, payload)
	return t.flushLocked()
}

// WriteMany writes each publication as its own text frame: one write call
// per frame, or one for all of them when batched.
func (t *transport) WriteMany(data ...[]byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errClosed
	}
	t.buf = t.buf[:0]
	for _, d := range data {
		payload := publicationData(d)
		if payload == nil {
			continue
		}
		t.buf = appendFrame(t.buf, ws.OpText, payload)
		if !t.batched {
			if err := t.flushLocked(); err != nil {
				return err
			}
			t.buf = t.buf[:0]
		}
	}
	if len(t.buf) == 0 {
		return nil
	}
	return t.flushLocked()
}

func (t *transport) flushLocked() error {
	_ = t.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := t.conn.Write(t.buf)
	if cap(t.buf) > 64<<10 {
		t.buf = nil // do not keep a large burst's buffer per idle connection
	}
	return err
}

func (t *transport) writeControl(op ws.OpCode, payload []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errClosed
	}
	t.buf = appendFrame(t.buf[:0], op, payload)
	return t.flushLocked()
}

// Close sends a close frame with the disconnect's code and reason, then
// closes the connection.
func (t *transport) Close(d centrifuge.Disconnect) error {
	t.closeWith(ws.StatusCode(d.Code), d.Reason)
	return nil
}

func (t *transport) closeWith(code ws.StatusCode, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if code != 0 {
		if len(reason) > 123 {
			reason = reason[:123]
		}
		t.buf = appendFrame(t.buf[:0], ws.OpClose, ws.NewCloseFrameBody(code, reason))
		_ = t.flushLocked()
	}
	t.closed = true
	_ = t.conn.Close()
}

// appendFrame appends an unmasked server frame to b.
func appendFrame(b []byte, op ws.OpCode, payload []byte) []byte {
	n := len(payload)
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

var (
	pushPrefix = []byte(`{"channel":"` + channel + `","pub":{"data":`)
	pushSuffix = []byte(`}}`)
)

// publicationData returns the data of the publication push that centrifuge
// encoded, or nil for any other push.
func publicationData(push []byte) []byte {
	if bytes.HasPrefix(push, pushPrefix) && bytes.HasSuffix(push, pushSuffix) {
		return push[len(pushPrefix) : len(push)-len(pushSuffix)]
	}
	// Some other layout (an offset, say): decode it properly.
	var p struct {
		Pub *struct {
			Data json.RawMessage `json:"data"`
		} `json:"pub"`
	}
	if json.Unmarshal(push, &p) != nil || p.Pub == nil || len(p.Pub.Data) == 0 {
		return nil
	}
	return p.Pub.Data
}
