package brokertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/seed014c2c51/chatroom"
)

// watcher is a WebSocket client read by a goroutine of its own, for waits
// that may time out without failing the test. With an idCheck, it checks
// the IDs of the frames it returns.
type watcher struct {
	name    string
	frames  <-chan chatroom.Message // closed when the connection ends
	timeout time.Duration
	conn    *websocket.Conn
	quit    chan struct{} // closed by stop: nobody reads frames any more
	stopped sync.Once
	done    chan struct{} // closed when the reading goroutine has ended
	ids     *idCheck      // nil: IDs are not checked
}

// watch joins nickname to room on n, with the query parameters q (since,
// for instance). ids, if not nil, checks the IDs of the frames it reads;
// give a client's connections one idCheck, to check them across resumes.
func (n *node) watch(t *testing.T, room, nickname string, q url.Values, ids *idCheck) *watcher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	if q == nil {
		q = url.Values{}
	}
	q.Set("nickname", nickname)
	u := n.server.URL + "/rooms/" + url.PathEscape(room) + "/chat?" + q.Encode()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	conn.SetReadLimit(1 << 20)
	frames := make(chan chatroom.Message, 4096)
	w := &watcher{name: nickname + "@" + n.name, frames: frames, timeout: n.timeout, conn: conn,
		quit: make(chan struct{}), done: make(chan struct{}), ids: ids}
	go func() {
		defer close(w.done)
		defer close(frames)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			var m chatroom.Message
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			select {
			case frames <- m:
			case <-w.quit:
				return
			}
		}
	}()
	t.Cleanup(func() {
		w.stop()
		_ = conn.CloseNow()
		<-w.done
	})
	// Joined once the server answers a ping: the room reads only members.
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("%s: ping: %v", w.name, err)
	}
	return w
}

// send sends the chat message text.
func (w *watcher) send(t *testing.T, text string) {
	t.Helper()
	data, err := json.Marshal(map[string]string{"message": text})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	if err := w.conn.Write(ctx, websocket.MessageText, data); err != nil {
		t.Fatalf("%s: send %q: %v", w.name, text, err)
	}
}

// close closes the connection from the client's side and waits until the
// server has answered, so that the member has left. The frames not read
// yet are dropped.
func (w *watcher) close() {
	w.stop()
	_ = w.conn.Close(websocket.StatusNormalClosure, "")
	<-w.done
}

// stop lets the reading goroutine end without handing on what it reads.
func (w *watcher) stop() { w.stopped.Do(func() { close(w.quit) }) }

// within returns the next frame if one arrives within d; ok is false if
// none does, or the connection ended.
func (w *watcher) within(d time.Duration) (m chatroom.Message, ok bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case m, ok = <-w.frames:
		if ok && w.ids != nil {
			w.ids.see(m)
		}
		return m, ok
	case <-timer.C:
		return chatroom.Message{}, false
	}
}

// next returns the next frame, failing the test after the timeout.
func (w *watcher) next(t *testing.T) chatroom.Message {
	t.Helper()
	select {
	case m, ok := <-w.frames:
		if !ok {
			t.Fatalf("%s: connection ended", w.name)
		}
		if w.ids != nil {
			w.ids.see(m)
		}
		return m
	case <-time.After(w.timeout):
		t.Fatalf("%s: nothing received within %v", w.name, w.timeout)
		return chatroom.Message{}
	}
}

// maxFrames bounds every read loop of a test.
const maxFrames = 20000

// until reads frames up to the chat message text, and returns them all, it
// included.
func (w *watcher) until(t *testing.T, text string) []chatroom.Message {
	t.Helper()
	var got []chatroom.Message
	for range maxFrames {
		m := w.next(t)
		got = append(got, m)
		if isChat(m) && m.Text == text {
			return got
		}
	}
	t.Fatalf("%s: %q not among %d frames", w.name, text, maxFrames)
	return nil
}

// isChat reports whether m is a member's chat message: type "message", or
// none outside the envelope.
func isChat(m chatroom.Message) bool {
	return m.Type == chatroom.TypeMessage || m.Type == ""
}

// chat returns the chat messages of frames.
func chat(frames []chatroom.Message) []chatroom.Message {
	var out []chatroom.Message
	for _, m := range frames {
		if isChat(m) {
			out = append(out, m)
		}
	}
	return out
}

// texts returns the texts of ms.
func texts(ms []chatroom.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// idCheck follows the IDs of the frames one client receives, over all its
// connections, against the rules of chatroom.WithEnvelope in a cluster:
// every message (a member's or the server's) has an ID greater than every
// frame's before it, so that none is reused and the greatest ID seen is
// where the client resumes from; other frames (notices, the member list)
// have IDs that never go below one seen before, since a frame that no
// broker numbered carries the ID of the frame before it. A truncated notice
// is left out: it comes before the frames it announces.
type idCheck struct {
	who      string
	max      uint64 // the greatest ID seen
	frames   int    // frames checked
	repeated int    // messages whose ID was one seen before (the greatest)
	lower    int    // frames whose ID was below one seen before
	first    []string
}

func newIDCheck(who string) *idCheck { return &idCheck{who: who} }

// since returns the query parameter that resumes after what the client saw.
func (c *idCheck) since() url.Values {
	return url.Values{"since": {fmt.Sprint(c.max)}}
}

func (c *idCheck) see(m chatroom.Message) {
	if m.Type == chatroom.TypeTruncated {
		return
	}
	c.frames++
	message := isChat(m) || m.Type == chatroom.TypeSystem
	var bad string
	switch {
	case m.ID < c.max:
		c.lower++
		bad = "below"
	case m.ID == c.max && message:
		c.repeated++
		bad = "the same as"
	}
	if bad != "" && len(c.first) < 5 {
		c.first = append(c.first, fmt.Sprintf("%s %q (ID %d) %s the greatest ID before it, %d", m.Type, m.Text, m.ID, bad, c.max))
	}
	c.max = max(c.max, m.ID)
}

// check reports the frames that broke the rules.
func (c *idCheck) check(t *testing.T) {
	t.Helper()
	if c.repeated+c.lower > 0 {
		t.Errorf("%s: of %d frames, %d messages reused the previous ID and %d frames had an ID below an earlier one; first: %q",
			c.who, c.frames, c.repeated, c.lower, c.first)
	}
}

// waitFor polls cond, for state that has no event to wait on (a node's
// view of the others), until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waited %v for %s", timeout, what)
		case <-tick.C:
		}
	}
}
