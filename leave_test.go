package chatroom

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// closeStatus is the close status a LeaveError holds.
type closeStatus struct {
	Code   websocket.StatusCode
	Reason string
}

// leftWith returns the close status the leave reason holds, or fails the
// test's comparison with code 0 if it is not a LeaveError.
func leftWith(reason error) closeStatus {
	var le LeaveError
	if !errors.As(reason, &le) {
		return closeStatus{Reason: "not a LeaveError: " + reason.Error()}
	}
	return closeStatus{le.Code, le.Reason}
}

// The leave hook learns the close status the member left with, whichever
// side sent it, and the one leave reason.
func TestLeaveReasonHoldsTheCloseStatus(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		act    func(t *testing.T, tr *testRoom, c *client)
		reason error
		want   closeStatus
		// sent: the room sends the close frame, which the client reads
		// as the leave hook does. silent: the client does not read.
		sent, silent bool
	}{
		{
			name: "client closes with a status",
			act: func(t *testing.T, _ *testRoom, c *client) {
				if err := c.conn.Close(4000, "bye"); err != nil {
					t.Errorf("Close: %v", err)
				}
			},
			reason: ErrClientClosed,
			want:   closeStatus{4000, "bye"},
		},
		{
			name: "client closes normally",
			act: func(t *testing.T, _ *testRoom, c *client) {
				if err := c.conn.Close(websocket.StatusNormalClosure, ""); err != nil {
					t.Errorf("Close: %v", err)
				}
			},
			reason: ErrClientClosed,
			want:   closeStatus{websocket.StatusNormalClosure, ""},
		},
		{
			name:   "client's connection breaks",
			act:    func(_ *testing.T, _ *testRoom, c *client) { _ = c.conn.CloseNow() },
			reason: ErrClientClosed,
			want:   closeStatus{websocket.StatusAbnormalClosure, ""},
		},
		{
			name:   "binary frame",
			act:    func(_ *testing.T, _ *testRoom, c *client) { c.sendRaw(websocket.MessageBinary, "x") },
			reason: ErrUnsupportedData,
			want:   closeStatus{websocket.StatusUnsupportedData, "binary messages are not supported"},
			sent:   true,
		},
		{
			name:   "host closes the member",
			act:    func(_ *testing.T, _ *testRoom, c *client) { c.member.Close(4003, "banned") },
			reason: ErrRefused,
			want:   closeStatus{4003, "banned"},
			sent:   true,
		},
		{
			name: "message hook closes the member",
			opts: []Option{OnMessage(func(context.Context, *Member, Message) (Message, error) {
				return Message{}, fmt.Errorf("filtered: %w", websocket.CloseError{Code: 4000, Reason: "kicked"})
			})},
			act:    func(_ *testing.T, _ *testRoom, c *client) { c.send("hi") },
			reason: ErrRefused,
			want:   closeStatus{4000, "kicked"},
			sent:   true,
		},
		{
			name:   "message too big",
			opts:   []Option{WithMaxMessageSize(8)},
			act:    func(_ *testing.T, _ *testRoom, c *client) { c.send("far more than eight bytes") },
			reason: ErrMessageTooBig,
			want:   closeStatus{websocket.StatusMessageTooBig, "message too big"},
			sent:   true,
		},
		{
			name: "room shuts down",
			act: func(t *testing.T, tr *testRoom, _ *client) {
				if err := tr.room.Shutdown(context.Background()); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			},
			reason: ErrRoomClosed,
			want:   closeStatus{websocket.StatusGoingAway, "room closed"},
			sent:   true,
		},
		{
			name:   "room closes at once",
			act:    func(_ *testing.T, tr *testRoom, _ *client) { _ = tr.room.Close() },
			reason: ErrRoomClosed,
			want:   closeStatus{websocket.StatusAbnormalClosure, ""},
		},
		{
			name:   "no pong",
			opts:   []Option{WithKeepalive(10*time.Millisecond, 50*time.Millisecond)},
			act:    func(*testing.T, *testRoom, *client) {}, // the client never reads, so never answers
			reason: ErrPingTimeout,
			want:   closeStatus{websocket.StatusAbnormalClosure, ""},
			silent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRoom(t, tt.opts...)
			c := tr.join("sei")
			read := make(chan error, 1)
			if !tt.silent {
				// Reading answers the room's close frame at once.
				go func() {
					_, err := c.readRaw()
					read <- err
				}()
			}
			tt.act(t, tr, c)
			ev := tr.expectLeave("sei", tt.reason)
			if diff := cmp.Diff(tt.want, leftWith(ev.reason)); diff != "" {
				t.Errorf("close status (-want +got):\n%s", diff)
			}
			if tt.sent {
				var ce websocket.CloseError
				if err := <-read; !errors.As(err, &ce) || (closeStatus{ce.Code, ce.Reason}) != tt.want {
					t.Errorf("the client read %v, want %v", err, tt.want)
				}
			}
		})
	}
}

// Each leave reason is distinct: a reason wraps exactly one of them, and
// only the two ways of being too slow share ErrSlowConsumer.
func TestLeaveReasonsAreDistinct(t *testing.T) {
	reasons := []error{ErrRoomClosed, ErrClientClosed, ErrQueueOverflow, ErrWriteTimeout, ErrPingTimeout,
		ErrInvalidMessage, ErrUnsupportedData, ErrMessageTooBig, ErrRateLimited, ErrHookPanic, ErrRefused}
	for _, r := range reasons {
		reason := cause(r, websocket.StatusPolicyViolation, "x", nil)
		for _, other := range reasons {
			if got := errors.Is(reason, other); got != (r == other) {
				t.Errorf("errors.Is(%v, %v) = %v", reason, other, got)
			}
		}
		slow := r == ErrQueueOverflow || r == ErrWriteTimeout
		if got := errors.Is(reason, ErrSlowConsumer); got != slow {
			t.Errorf("errors.Is(%v, ErrSlowConsumer) = %v", reason, got)
		}
	}
}
