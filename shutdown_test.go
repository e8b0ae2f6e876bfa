package chatroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestShutdown(t *testing.T) {
	tr := newTestRoom(t)
	clients := []*client{tr.join("a"), tr.join("b"), tr.join("c")}
	if _, err := tr.room.Broadcast(context.Background(), Message{Nickname: "server", Text: "bye"}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- tr.room.Shutdown(ctx) }()

	for _, c := range clients {
		// What was queued before Shutdown still arrives, then the close.
		if diff := cmp.Diff(frame("server", "bye"), c.read()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		c.expectClose(websocket.StatusGoingAway, "room closed")
	}
	if err := <-shutdownErr; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	// Shutdown returned: every leave hook has run.
	var left []string
	for range clients {
		select {
		case ev := <-tr.left:
			if !errors.Is(ev.reason, ErrRoomClosed) {
				t.Errorf("%s left with %v", ev.nickname, ev.reason)
			}
			left = append(left, ev.nickname)
		default:
			t.Fatal("Shutdown returned before every leave hook ran")
		}
	}
	if len(left) != 3 {
		t.Errorf("left = %v", left)
	}

	_, resp, err := tr.dialRaw("nickname=late", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Shutdown: err=%v resp=%v, want 503", err, resp)
	}
	if _, err := tr.room.Broadcast(context.Background(), Message{Text: "x"}); !errors.Is(err, ErrRoomClosed) {
		t.Errorf("Broadcast after Shutdown = %v, want ErrRoomClosed", err)
	}
	if err := tr.room.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
	tr.handlers.Wait()
	checkNoGoroutinesLeft(t)
}

func TestShutdownGivesUpAtDeadline(t *testing.T) {
	release := make(chan struct{})
	hookCtxDone := make(chan struct{})
	tr := newTestRoom(t, OnLeave(func(ctx context.Context, m *Member, reason error) {
		<-ctx.Done() // a leave hook that only ends when told to
		close(hookCtxDone)
		<-release
	}))
	tr.join("stuck")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.room.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	<-hookCtxDone // the hook's context was cancelled when Shutdown gave up
	close(release)
}

func TestCloseDropsEveryone(t *testing.T) {
	tr := newTestRoom(t)
	a, b := tr.join("a"), tr.join("b")
	if err := tr.room.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{a, b} {
		_, err := c.readRaw()
		if err == nil {
			t.Errorf("%s: read succeeded after Close", c.member.Nickname())
		} else if code := websocket.CloseStatus(err); code != -1 {
			t.Errorf("%s: got close status %d, want the connection dropped without a close frame", c.member.Nickname(), code)
		}
	}
	for range 2 {
		select {
		case ev := <-tr.left:
			if !errors.Is(ev.reason, ErrRoomClosed) {
				t.Errorf("%s left with %v", ev.nickname, ev.reason)
			}
		default:
			t.Fatal("Close returned before every leave hook ran")
		}
	}
}

func TestServerSideAPI(t *testing.T) {
	tr := newTestRoom(t)
	a, b, c := tr.join("a"), tr.join("b"), tr.join("c")

	var names []string
	for _, m := range tr.room.Members() {
		names = append(names, m.Nickname())
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, names); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
	if n := tr.room.Len(); n != 3 {
		t.Errorf("Len = %d", n)
	}

	if _, err := tr.room.Broadcast(context.Background(), Message{Nickname: "bot", Text: "announcement"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client{a, b, c} {
		if diff := cmp.Diff(frame("bot", "announcement"), cl.read()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}

	// A personal message reaches b only: a's and c's next frame is the broadcast after it.
	if err := b.member.Send(context.Background(), Message{Nickname: "bot", Text: "psst"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.room.Broadcast(context.Background(), Message{Nickname: "bot", Text: "all"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{frame("bot", "psst"), frame("bot", "all")}, []string{b.read(), b.read()}); diff != "" {
		t.Errorf("b (-want +got):\n%s", diff)
	}
	for _, cl := range []*client{a, c} {
		if diff := cmp.Diff(frame("bot", "all"), cl.read()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}

	c.member.Close(4000, "kicked")
	c.expectClose(4000, "kicked")
	tr.expectLeave("c", ErrRefused)
	if err := c.member.Send(context.Background(), Message{Text: "too late"}); !errors.Is(err, ErrMemberLeft) {
		t.Errorf("Send to a member that left = %v, want ErrMemberLeft", err)
	}
	if n := tr.room.Len(); n != 2 {
		t.Errorf("Len after kick = %d", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.room.Broadcast(ctx, Message{Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Broadcast with a cancelled context = %v", err)
	}
}

// A client that never answers the close handshake (it does not read) is
// dropped once the close timeout passes; its leave is not held up longer.
func TestCloseTimeoutBoundsTheHandshake(t *testing.T) {
	tr := newTestRoom(t, WithCloseTimeout(50*time.Millisecond), WithKeepalive(Off, 0))
	c := tr.join("deaf") // never reads, so never answers
	c.member.Close(4000, "bye")
	tr.expectLeave("deaf", ErrRefused)
}

func TestMemberIdentity(t *testing.T) {
	tr := newTestRoom(t)
	a, b := tr.join("a"), tr.join("b")
	if a.member.ID() == 0 || b.member.ID() <= a.member.ID() {
		t.Errorf("IDs %d, %d: want increasing from 1", a.member.ID(), b.member.ID())
	}
	if got, want := b.member.String(), fmt.Sprintf("b#%d", b.member.ID()); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
