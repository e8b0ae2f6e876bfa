package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// member is one client connection.
type member struct {
	id   int
	node int // index of the URL it connected to
	slow bool
	conn net.Conn
	br   *bufio.Reader

	wmu  sync.Mutex // serializes writes: the sender's messages, the reader's pongs
	wbuf []byte

	sentCount atomic.Int64 // messages this member sent

	probed   atomic.Bool // received a join-barrier probe
	closing  atomic.Bool
	lastRecv atomic.Int64  // UnixNano of the latest delivery
	window   chan struct{} // own messages in flight (senders, Rate 0)

	// Owned by the reader goroutine until it ends.
	seen            [][]uint64 // per sender: bitset of sequence numbers seen
	last            []int64    // per sender: highest sequence number seen
	hist            *histogram // with several nodes: deliveries from senders on this member's node
	cross           *histogram // with several nodes: deliveries from senders on other nodes; else nil
	crossReceived   int64      // distinct deliveries recorded in cross
	received        int64
	late            int64
	frames          int64
	dups            int64
	reordered       int64
	malformed       int64
	presence        int64 // presence frames read (members, join, leave, presence)
	droppedByServer bool

	// Slow members: set by watchSlow, read after watchDone closes.
	watchDone    chan struct{}
	stalledAfter float64
	blockedAfter float64
	cutAfter     float64
}

func (m *member) init(cfg Config) {
	if m.slow {
		return
	}
	m.hist = newHistogram()
	if len(cfg.URLs) > 1 {
		m.cross = newHistogram()
	}
	m.seen = make([][]uint64, cfg.Senders)
	m.last = make([]int64, cfg.Senders)
	words := (cfg.Messages + 63) / 64
	for i := range m.seen {
		m.seen[i] = make([]uint64, words)
		m.last[i] = -1
	}
	if m.id < cfg.Senders {
		m.window = make(chan struct{}, cfg.Window)
	}
}

func (m *member) close() {
	if m.closing.CompareAndSwap(false, true) {
		_ = m.conn.Close()
	}
}

// writeFrame writes one masked client frame.
func (m *member) writeFrame(op ws.OpCode, payload []byte) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	b := m.wbuf[:0]
	b = append(b, 0x80|byte(op))
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	ws.Cipher(b[start:], mask, 0)
	m.wbuf = b
	_ = m.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := m.conn.Write(b)
	return err
}

// sendLoop sends cfg.Messages messages "ID SEQ UNIXNANO" (plus " xxx…" with
// cfg.Pad), paced by Rate or
// by the window of own messages in flight, until ctx ends.
func (m *member) sendLoop(ctx context.Context, r *run) {
	cfg := r.cfg
	var tick <-chan time.Time
	if cfg.Rate > 0 {
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		// Spread the senders over one interval.
		offset := interval * time.Duration(m.id) / time.Duration(max(cfg.Senders, 1))
		select {
		case <-time.After(offset):
		case <-ctx.Done():
			return
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	payload := make([]byte, 0, 64+cfg.Pad)
	for seq := 0; seq < cfg.Messages; seq++ {
		if tick != nil {
			if seq > 0 {
				select {
				case <-tick:
				case <-ctx.Done():
					return
				}
			}
		} else {
			select {
			case m.window <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		now := time.Now().UnixNano()
		r.firstSend.CompareAndSwap(0, now)
		payload = append(payload[:0], `{"message":"`...)
		payload = strconv.AppendInt(payload, int64(m.id), 10)
		payload = append(payload, ' ')
		payload = strconv.AppendInt(payload, int64(seq), 10)
		payload = append(payload, ' ')
		payload = strconv.AppendInt(payload, now, 10)
		if cfg.Pad > 0 {
			payload = append(payload, ' ')
			for range cfg.Pad - 1 {
				payload = append(payload, 'x')
			}
		}
		payload = append(payload, `"}`...)
		if err := m.writeFrame(ws.OpText, payload); err != nil {
			if !m.closing.Load() {
				r.errorf("sender %d: %v", m.id, err)
			}
			return
		}
		r.sent.Add(1)
		m.sentCount.Add(1)
	}
}

// readFrame reads one frame's header and payload into buf, unfragmenting
// data messages. It answers pings on its own and returns close frames.
func readMessage(br *bufio.Reader, buf []byte, pong func([]byte) error) (ws.OpCode, []byte, error) {
	buf = buf[:0]
	var op ws.OpCode
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return 0, buf, err
		}
		if h.Length > 1<<24 {
			return 0, buf, errors.New("frame too large")
		}
		if h.OpCode.IsControl() {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(br, p); err != nil {
				return 0, buf, err
			}
			if h.Masked {
				ws.Cipher(p, h.Mask, 0)
			}
			switch h.OpCode {
			case ws.OpClose:
				return ws.OpClose, p, nil
			case ws.OpPing:
				if pong != nil {
					if err := pong(p); err != nil {
						return 0, buf, err
					}
				}
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			op = h.OpCode
		}
		start := len(buf)
		need := start + int(h.Length)
		if cap(buf) < need {
			nb := make([]byte, start, max(need, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		buf = buf[:need]
		if _, err := io.ReadFull(br, buf[start:]); err != nil {
			return 0, buf, err
		}
		if h.Masked {
			ws.Cipher(buf[start:], h.Mask, 0)
		}
		if h.Fin {
			return op, buf, nil
		}
	}
}

// readLoop reads deliveries until the connection ends.
func (m *member) readLoop(r *run) {
	buf := make([]byte, 0, 256)
	var pending int64 // distinct deliveries not yet added to r.delivered
	pong := func(p []byte) error { return m.writeFrame(ws.OpPong, p) }
	defer func() { r.delivered.Add(pending) }()
	for {
		if pending > 0 && m.br.Buffered() == 0 {
			r.delivered.Add(pending)
			pending = 0
		}
		op, p, err := readMessage(m.br, buf, pong)
		buf = p
		if err != nil || op == ws.OpClose {
			if !m.closing.Load() {
				m.droppedByServer = true
				code := ""
				if op == ws.OpClose {
					code = closeString(p)
				} else {
					code = err.Error()
				}
				r.errorf("member %d dropped by server: %s", m.id, code)
			}
			return
		}
		if op != ws.OpText {
			m.malformed++
			continue
		}
		now := time.Now().UnixNano()
		sender, seq, ts, ok := parseDelivery(p)
		if !ok && bytes.Contains(p, probeText) {
			m.probed.Store(true)
			continue
		}
		if !ok && isPresence(p) {
			m.presence++
			continue
		}
		if r.stopped.Load() {
			m.late++
			continue
		}
		m.frames++
		if !ok || sender >= len(m.seen) || seq >= int64(len(m.seen[sender])*64) {
			m.malformed++
			continue
		}
		word, bit := seq/64, uint64(1)<<(seq%64)
		if m.seen[sender][word]&bit != 0 {
			m.dups++
			continue
		}
		m.seen[sender][word] |= bit
		if seq < m.last[sender] {
			m.reordered++
		} else {
			m.last[sender] = seq
		}
		m.received++
		pending++
		if m.cross != nil && r.cfg.NodeOf(sender) != m.node {
			m.crossReceived++
			m.cross.record(now - ts)
		} else {
			m.hist.record(now - ts)
		}
		m.lastRecv.Store(now)
		if sender == m.id && m.window != nil {
			select {
			case <-m.window:
			default:
			}
		}
	}
}

var (
	messageKey = []byte(`"message":"`)
	probeText  = []byte(`"message":"probe `)
	// The envelope types of a room with chatroom.WithPresence: the members
	// frame, join and leave notices, and WithPresenceDeltas' presence frame.
	presenceTypes = [][]byte{[]byte(`{"type":"members"`), []byte(`{"type":"presence"`), []byte(`{"type":"join"`), []byte(`{"type":"leave"`)}
)

// isPresence reports whether p is a presence frame rather than a delivery.
func isPresence(p []byte) bool {
	for _, t := range presenceTypes {
		if bytes.HasPrefix(p, t) {
			return true
		}
	}
	return false
}

// parseDelivery extracts "SENDER SEQ UNIXNANO" from a broadcast frame.
func parseDelivery(p []byte) (sender int, seq, ts int64, ok bool) {
	i := bytes.Index(p, messageKey)
	if i < 0 {
		return 0, 0, 0, false
	}
	p = p[i+len(messageKey):]
	var nums [3]int64
	for k := range nums {
		var v int64
		j := 0
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			v = v*10 + int64(p[j]-'0')
			j++
		}
		if j == 0 || j >= len(p) {
			return 0, 0, 0, false
		}
		if p[j] != ' ' && (k < 2 || p[j] != '"') { // padding may follow the timestamp
			return 0, 0, 0, false
		}
		nums[k] = v
		p = p[j+1:]
	}
	return int(nums[0]), nums[1], nums[2], true
}

func closeString(p []byte) string {
	if len(p) < 2 {
		return "close frame without status"
	}
	return "close " + strconv.Itoa(int(binary.BigEndian.Uint16(p))) + " " + strconv.Quote(string(p[2:]))
}

// drainSlow reads what the server kept for a member that never read.
func (m *member) drainSlow(deadline time.Time) SlowReport {
	var rep SlowReport
	buf := make([]byte, 0, 256)
	for {
		d := time.Now().Add(time.Second)
		if d.After(deadline) {
			d = deadline
		}
		_ = m.conn.SetReadDeadline(d)
		op, p, err := readMessage(m.br, buf, nil)
		buf = p
		switch {
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
			if time.Now().Before(deadline) {
				rep.Note = "still open: no data for 1s"
			} else {
				rep.Note = "still open: still receiving after 5s"
			}
			return rep
		case err != nil:
			rep.Cut = true
			rep.Note = "connection ended: " + err.Error()
			return rep
		case op == ws.OpClose:
			rep.Cut = true
			if len(p) >= 2 {
				rep.CloseCode = int(binary.BigEndian.Uint16(p))
				rep.CloseReason = string(p[2:])
			}
			return rep
		case op == ws.OpText:
			rep.Received++
		}
	}
}
