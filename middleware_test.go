package chatroom

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// statusRecorder is typical logging middleware: it wraps the ResponseWriter
// and offers Unwrap, but not Hijack.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int)        { s.status = code; s.ResponseWriter.WriteHeader(code) }
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// deadlineless wraps the ResponseWriter and hijacks to a connection whose
// write deadlines fail, as some wrapped connections do.
type deadlineless struct{ http.ResponseWriter }

type noDeadlineConn struct{ net.Conn }

func (noDeadlineConn) SetWriteDeadline(time.Time) error { return errors.New("deadlines not supported") }

func (d deadlineless) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(d.ResponseWriter).Hijack()
	return noDeadlineConn{c}, brw, err
}

func TestMountedBehindMiddleware(t *testing.T) {
	for _, tt := range []struct {
		name string
		wrap func(http.ResponseWriter) http.ResponseWriter
	}{
		{"Unwrap", func(w http.ResponseWriter) http.ResponseWriter { return &statusRecorder{ResponseWriter: w} }},
		{"own Hijack without deadlines", func(w http.ResponseWriter) http.ResponseWriter { return deadlineless{w} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRoomServer(t, func(srv *http.Server) {
				inner := srv.Handler
				srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					inner.ServeHTTP(tt.wrap(w), r)
				})
			})
			a, b := tr.join("a"), tr.join("b")
			a.send("through middleware")
			for _, c := range []*client{a, b} {
				if diff := cmp.Diff(frame("a", "through middleware"), c.read()); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestHijackUnsupported(t *testing.T) {
	room := New()
	defer room.Close()
	// A ResponseWriter with neither Hijack nor Unwrap cannot be upgraded.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/chat", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	room.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("status = %d, want 501", rec.Code)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogger(t *testing.T) {
	var logs syncBuffer
	tr := newTestRoom(t,
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		OnMessage(func(_ context.Context, _ *Member, msg Message) (Message, error) { panic("logged panic") }),
	)
	c := tr.join("sei")
	c.send("x")
	c.expectClose(1011, "internal error")
	tr.expectLeave("sei", ErrHookPanic)
	out := logs.String()
	for _, want := range []string{"level=DEBUG msg=\"chatroom: joined\" room=\"\" member=sei#1", "level=ERROR msg=\"chatroom: hook panicked\"", "logged panic", "level=ERROR msg=\"chatroom: member left\" room=\"\" member=sei#1 reason=hook_panic"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// http.Server's ReadTimeout and WriteTimeout set deadlines on the connection
// before the handler runs; a hijacked WebSocket must outlive them.
func TestServerTimeoutsDoNotCutMembers(t *testing.T) {
	tr := newTestRoomServer(t, func(srv *http.Server) {
		srv.ReadTimeout = 100 * time.Millisecond
		srv.WriteTimeout = 100 * time.Millisecond
	}, WithKeepalive(50*time.Millisecond, 5*time.Second))
	pings := make(chan struct{}, 100)
	c := tr.joinWith("nickname=sei", &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings <- struct{}{}; return true },
	})
	echo := make(chan string, 1)
	go func() {
		// The client must read for its pongs to go out; it hands the frame over.
		s, err := c.readRaw()
		if err != nil {
			t.Errorf("read: %v", err)
		}
		echo <- s
	}()
	// Pings come every 50ms: five of them take longer than both timeouts.
	for range 5 {
		<-pings
	}
	c.send("still here")
	if diff := cmp.Diff(frame("sei", "still here"), <-echo); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
