package chatroomtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom"
)

// A Client is one WebSocket connection to a Server, made by Server.Connect.
//
// A goroutine of the client's own reads every frame as it arrives, so the
// server never sees a slow client, and answers pings and close frames at
// once; the frames wait in the client, in order, until the test reads them
// with Next, NextRaw or Expect. The goroutine ends when the connection does,
// and the server's Close waits for it.
//
// The methods report failures to the server's TB and may call its Fatalf,
// so call them from the test's goroutine only, as testing.T.FailNow
// requires, and one at a time.
type Client struct {
	t        TB
	name     string // for messages: client "ann"
	nickname string
	conn     *websocket.Conn
	timeout  time.Duration
	compare  []cmp.Option
	strict   bool          // DisallowUnknownFields
	done     chan struct{} // closed when readLoop has returned

	mu          sync.Mutex // guards the fields below
	frames      []frame    // received and not yet read by the test
	err         error      // why the connection ended; nil while it is open
	closeCalled bool       // the test called Close
	wake        chan struct{}
}

// frame is one data frame the client received.
type frame struct {
	typ  websocket.MessageType
	data []byte
}

func (f frame) String() string {
	if f.typ != websocket.MessageText {
		return fmt.Sprintf("(%v frame of %d bytes)", f.typ, len(f.data))
	}
	return string(f.data)
}

func newClient(t TB, name, nickname string, conn *websocket.Conn, cfg settings) *Client {
	// A room's frames can be larger than the 32 KiB coder/websocket reads by
	// default: its own limit applies to what clients send.
	conn.SetReadLimit(-1)
	c := &Client{
		t:        t,
		name:     name,
		nickname: nickname,
		conn:     conn,
		timeout:  cfg.timeout,
		compare:  cfg.compare,
		strict:   cfg.strict,
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
	go c.readLoop()
	return c
}

// readLoop reads frames into c.frames until the connection ends.
func (c *Client) readLoop() {
	defer close(c.done)
	for {
		typ, data, err := c.conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.err = err
		} else {
			c.frames = append(c.frames, frame{typ, data})
		}
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
		if err != nil {
			return
		}
	}
}

// timeoutError says that nothing arrived in time.
type timeoutError struct{ after time.Duration }

func (e timeoutError) Error() string { return fmt.Sprintf("nothing received within %v", e.after) }

// next returns the next frame, or why there is none: the connection ended
// (with what), or ctx ended first (a timeoutError).
func (c *Client) next(ctx context.Context) (frame, error) {
	for {
		c.mu.Lock()
		if len(c.frames) > 0 {
			f := c.frames[0]
			c.frames[0] = frame{}
			c.frames = c.frames[1:]
			c.mu.Unlock()
			return f, nil
		}
		err, closeCalled := c.err, c.closeCalled
		c.mu.Unlock()
		if err != nil {
			return frame{}, connectionEnded(err, closeCalled)
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return frame{}, timeoutError{c.timeout}
		}
	}
}

// nextFrame is next within the client's timeout.
func (c *Client) nextFrame() (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	return c.next(ctx)
}

// connectionEnded describes how the connection ended; the error wraps err.
func connectionEnded(err error, closeCalled bool) error {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// err's own text repeats the status in coder/websocket's words.
		return &endedError{fmt.Sprintf("the connection was closed with status %d (%v) %q", int(ce.Code), ce.Code, ce.Reason), err}
	case closeCalled:
		return &endedError{"the client has closed the connection (Client.Close)", err}
	}
	return &endedError{"the connection ended without a close frame: " + err.Error(), err}
}

// endedError is an error with a message of its own that wraps another.
type endedError struct {
	msg string
	err error
}

func (e *endedError) Error() string { return e.msg }

func (e *endedError) Unwrap() error { return e.err }

// decode decodes a frame as a chatroom.Message, refusing fields a Message
// does not have if c is strict.
func (c *Client) decode(f frame) (chatroom.Message, error) {
	var m chatroom.Message
	if f.typ != websocket.MessageText {
		return m, fmt.Errorf("received %v, want a text frame", f)
	}
	var err error
	if c.strict {
		dec := json.NewDecoder(bytes.NewReader(f.data))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&m); err == nil {
			if _, end := dec.Token(); end != io.EOF {
				err = errors.New("data after the JSON object")
			}
		}
	} else {
		err = json.Unmarshal(f.data, &m)
	}
	if err != nil {
		return m, fmt.Errorf("frame %s: %w", f.data, err)
	}
	return m, nil
}

// Nickname returns the nickname the client asked for, "" if none. The room
// may name the member otherwise (an authenticator).
func (c *Client) Nickname() string { return c.nickname }

// Send sends the chat message {"message": text}.
func (c *Client) Send(text string) {
	c.t.Helper()
	c.sendJSON("Send", struct {
		Message string `json:"message"`
	}{text})
}

// SendTo sends the direct message {"message": text, "to": to}; the room must
// have chatroom.WithDirectMessages.
func (c *Client) SendTo(to, text string) {
	c.t.Helper()
	c.sendJSON("SendTo", struct {
		Message string `json:"message"`
		To      string `json:"to"`
	}{text, to})
}

// SendRef sends the chat message {"message": text, "ref": ref}. In a room
// with the envelope, the client then receives an ack once the room took it,
// {"type":"ack","id":…,"ref":ref}, or an error frame carrying the ref:
//
//	ann.SendRef("hi", "r1")
//	ann.Expect(
//		chatroom.Message{Type: chatroom.TypeMessage, Nickname: "ann", Text: "hi"},
//		chatroom.Message{Type: chatroom.TypeAck, Ref: "r1"},
//	) // with IgnoreIDAndTime
//
// Sending it again with the same ref, from any connection of the same
// sender, brings the same ack and delivers nothing.
func (c *Client) SendRef(text, ref string) {
	c.t.Helper()
	c.sendJSON("SendRef", struct {
		Message string `json:"message"`
		Ref     string `json:"ref"`
	}{text, ref})
}

// SendToRef sends the direct message {"message": text, "to": to, "ref":
// ref}, which SendRef and SendTo describe.
func (c *Client) SendToRef(to, text, ref string) {
	c.t.Helper()
	c.sendJSON("SendToRef", struct {
		Message string `json:"message"`
		To      string `json:"to"`
		Ref     string `json:"ref"`
	}{text, to, ref})
}

func (c *Client) sendJSON(method string, v any) {
	c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("chatroomtest: %s: %s: %v", c.name, method, err) // unreachable: strings always encode
		return
	}
	c.write(method, websocket.MessageText, data)
}

// SendRaw sends data as one frame of type typ exactly as given, for testing
// how a handler answers bad input: a binary frame, text that is not UTF-8
// or not JSON, JSON without a "message" string.
func (c *Client) SendRaw(typ websocket.MessageType, data []byte) {
	c.t.Helper()
	c.write("SendRaw", typ, data)
}

func (c *Client) write(method string, typ websocket.MessageType, data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.conn.Write(ctx, typ, data); err != nil {
		c.t.Fatalf("chatroomtest: %s: %s: %v", c.name, method, err)
	}
}

// Sync waits until the server has read every frame the client sent before
// it. It sends a WebSocket ping and waits for the pong, which a
// chatroom.Room writes only when the member's goroutine comes back to
// reading, after it has handled the client's earlier messages: run the
// message hook and queued the broadcast or direct message for every member.
// So after Sync, whatever the message hook did is done, and every frame those
// messages caused is queued ahead of any frame the test sends afterwards.
//
// Sync is how to check that a message was not delivered, without waiting out
// a timeout. Make something arrive after it, and check that it comes next:
//
//	ann.Send("spam") // the hook drops it
//	ann.Sync()       // the room has handled it
//	room.Broadcast(ctx, chatroom.Message{Nickname: "test", Text: "marker"})
//	bob.Expect(chatroom.Message{Nickname: "test", Text: "marker"}) // and not "spam"
//
// Sending the marker from the same client, ann.Send("marker") with no Sync,
// works as well when the hook lets it through: a room handles each member's
// messages in order. A room.Broadcast without Sync proves nothing: it can
// overtake ann's message, which may still be on its way.
func (c *Client) Sync() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.conn.Ping(ctx); err != nil {
		c.t.Fatalf("chatroomtest: %s: Sync: no pong within %v: %v", c.name, c.timeout, err)
	}
}

// Next returns the next frame the client receives, decoded into a
// chatroom.Message, waiting for it up to the timeout. It fails the test with
// Fatalf if none arrives in time, if the connection has ended, or if the frame
// does not decode.
func (c *Client) Next() chatroom.Message {
	c.t.Helper()
	f, err := c.nextFrame()
	if err != nil {
		c.t.Fatalf("chatroomtest: %s: Next: %v", c.name, err)
		return chatroom.Message{}
	}
	m, err := c.decode(f)
	if err != nil {
		c.t.Fatalf("chatroomtest: %s: Next: %v", c.name, err)
	}
	return m
}

// NextFunc returns the next frame, decoded, for which match reports true,
// and discards the frames before it. It is for a frame whose place among the
// others the test cannot know: another node's join notice in a cluster,
// where presence travels on its own, or a message the server sends on a
// timer. One timeout bounds the whole wait. It fails the test with Fatalf, as
// Next does, if no frame matches in time, listing the first frames it
// discarded.
//
//	bob := srv.Connect("bob") // on another node
//	ann.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeJoin && m.Nickname == "bob" })
//
// Where the order is known, prefer Expect: NextFunc cannot show that a frame
// it skipped should not have been sent.
func (c *Client) NextFunc(match func(chatroom.Message) bool) chatroom.Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var skipped []string // the first maxListed of the n frames skipped
	n := 0
	for {
		f, err := c.next(ctx)
		if err == nil && ctx.Err() != nil {
			// Frames that keep coming must not extend the wait.
			err = timeoutError{c.timeout}
		}
		var m chatroom.Message
		if err == nil {
			m, err = c.decode(f)
		}
		if err != nil {
			list := listFrames(skipped)
			if n > len(skipped) {
				list = fmt.Sprintf("; received %d frames, the first %d:\n\t%s", n, len(skipped), strings.Join(skipped, "\n\t"))
			}
			c.t.Fatalf("chatroomtest: %s: NextFunc: %v, and no frame matched%s", c.name, err, list)
			return chatroom.Message{}
		}
		if match(m) {
			return m
		}
		if n++; len(skipped) < maxListed {
			skipped = append(skipped, f.String())
		}
	}
}

// maxListed bounds the frames a failure of NextFunc lists.
const maxListed = 20

// NextRaw returns the next frame as received, for checks of the exact wire
// form such as `{"nickname":"ann","message":"hi"}`. It fails the test as
// Next does, and on a binary frame.
func (c *Client) NextRaw() string {
	c.t.Helper()
	f, err := c.nextFrame()
	if err != nil {
		c.t.Fatalf("chatroomtest: %s: NextRaw: %v", c.name, err)
		return ""
	}
	if f.typ != websocket.MessageText {
		c.t.Fatalf("chatroomtest: %s: NextRaw: received %v, want a text frame", c.name, f)
	}
	return string(f.data)
}

// Expect reads the next len(want) frames, decodes each into a
// chatroom.Message and compares them with want using go-cmp, with the
// client's Compare options (see IgnoreIDAndTime). On a mismatch it reports
// the frames with Errorf, as a cmp.Diff (-want +got), and returns false; the
// frames are consumed either way. If a frame does not arrive within the
// timeout, the connection ends, or a frame does not decode, it fails the
// test with Fatalf, showing what did arrive.
//
// Expect with no argument checks nothing: it does not prove that nothing
// arrived (see Sync for that).
func (c *Client) Expect(want ...chatroom.Message) bool {
	c.t.Helper()
	got := make([]chatroom.Message, 0, len(want))
	for i := range want {
		f, err := c.nextFrame()
		var m chatroom.Message
		if err == nil {
			m, err = c.decode(f)
		}
		if err != nil {
			c.t.Fatalf("chatroomtest: %s: Expect: frame %d of %d: %v\nframes received (-want +got):\n%s",
				c.name, i+1, len(want), err, cmp.Diff(want, got, c.compare...))
			return false
		}
		got = append(got, m)
	}
	if diff := cmp.Diff(want, got, c.compare...); diff != "" {
		c.t.Errorf("chatroomtest: %s: Expect: unexpected frames (-want +got):\n%s", c.name, diff)
		return false
	}
	return true
}

// ExpectClose waits for the connection to end and checks that the server
// closed it with status code, whatever the reason; code -1 means that the
// connection ended without a close frame, as websocket.CloseStatus reports
// it. Frames still to be read count as failures: read the ones you expect
// first. It reports a mismatch with Errorf and returns false; if the
// connection is still open after the timeout, it fails the test with Fatalf.
func (c *Client) ExpectClose(code websocket.StatusCode) bool {
	c.t.Helper()
	return c.expectClose("ExpectClose", code, nil)
}

// ExpectCloseReason is ExpectClose that also checks the close reason, for
// example ExpectCloseReason(1007, "invalid JSON").
func (c *Client) ExpectCloseReason(code websocket.StatusCode, reason string) bool {
	c.t.Helper()
	return c.expectClose("ExpectCloseReason", code, &reason)
}

func (c *Client) expectClose(method string, code websocket.StatusCode, reason *string) bool {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var unread []string
	var err error
	for {
		var f frame
		if f, err = c.next(ctx); err != nil {
			break
		}
		unread = append(unread, f.String())
	}
	if errors.As(err, new(timeoutError)) {
		c.t.Fatalf("chatroomtest: %s: %s: the connection is still open after %v%s",
			c.name, method, c.timeout, listFrames(unread))
		return false
	}
	ok := true
	if len(unread) > 0 {
		c.t.Errorf("chatroomtest: %s: %s: unexpected frames before the close%s", c.name, method, listFrames(unread))
		ok = false
	}
	want := fmt.Sprintf("close status %d (%v)", int(code), code)
	if reason != nil {
		want += fmt.Sprintf(" %q", *reason)
	}
	if code == -1 {
		want = "the connection to end without a close frame"
	}
	var ce websocket.CloseError
	switch {
	case !errors.As(err, &ce):
		if code != -1 {
			c.t.Errorf("chatroomtest: %s: %s: %v; want %s", c.name, method, err, want)
			ok = false
		}
	case ce.Code != code || (reason != nil && ce.Reason != *reason):
		c.t.Errorf("chatroomtest: %s: %s: %v; want %s", c.name, method, err, want)
		ok = false
	}
	return ok
}

// listFrames formats frames for a failure message.
func listFrames(frames []string) string {
	if len(frames) == 0 {
		return ""
	}
	return fmt.Sprintf("; received %d frame(s):\n\t%s", len(frames), strings.Join(frames, "\n\t"))
}

// Close closes the connection from the client's side with status 1000
// (normal closure) and waits for the server's answer and for the client's
// reader goroutine; the member then leaves with chatroom.ErrClientClosed.
// Frames the client had received before Close can still be read, but
// coder/websocket discards those still on their way while it waits for the
// server's answer. Closing a connection that has already ended does nothing.
// Failures are reported with Errorf.
func (c *Client) Close() {
	c.t.Helper()
	c.mu.Lock()
	c.closeCalled = true
	c.mu.Unlock()
	err := c.conn.Close(websocket.StatusNormalClosure, "")
	// net.ErrClosed: the connection had ended; a close status: the server
	// closed it at the same time. Neither is the client's failure.
	if err != nil && !errors.Is(err, net.ErrClosed) && websocket.CloseStatus(err) == -1 {
		c.t.Errorf("chatroomtest: %s: Close: %v", c.name, err)
	}
	if err := c.wait(); err != nil {
		c.t.Errorf("chatroomtest: %s: Close: %v", c.name, err)
	}
}

// stop drops the connection and waits for the reader goroutine.
func (c *Client) stop() error {
	_ = c.conn.CloseNow()
	return c.wait()
}

// wait waits for the reader goroutine to return.
func (c *Client) wait() error {
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
		return fmt.Errorf("%s: the reader goroutine did not end within %v", c.name, c.timeout)
	}
}
