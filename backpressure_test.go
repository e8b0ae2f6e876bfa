package chatroom

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// readAll reads n frames on a goroutine and returns them on the channel.
func (c *client) readAll(n int) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		got := make([]string, 0, n)
		for range n {
			s, err := c.readRaw()
			if err != nil {
				c.t.Errorf("%s: read %d of %d: %v", c.member.Nickname(), len(got), n, err)
				break
			}
			got = append(got, s)
		}
		out <- got
	}()
	return out
}

// flood sends 16 KiB messages from sender, which must be a member that reads
// (its echoes count as acknowledgements), until some member leaves or max
// messages have gone out. The sender keeps at most window messages
// unacknowledged, so the readers can never fall behind however slowly the
// machine runs them: only a member that does not read can. It returns how
// many messages were sent, the leave event, the frames sender has received so
// far, and the channel on which the rest of them arrive.
func flood(t *testing.T, tr *testRoom, sender *client, max, window int) (int, leaveEvent, []string, <-chan string) {
	t.Helper()
	text := strings.Repeat("x", 16<<10)
	acks := make(chan string, max+1)
	go func() {
		defer close(acks)
		for {
			s, err := sender.readRaw()
			if err != nil {
				return
			}
			acks <- s
		}
	}()
	var echoes []string
	for i := range max {
		if i >= window {
			select {
			case s, ok := <-acks:
				if !ok {
					t.Fatal("sender's connection ended")
				}
				echoes = append(echoes, s)
			case ev := <-tr.left:
				return i, ev, echoes, acks
			case <-time.After(testTimeout):
				t.Fatal("no echo")
			}
		}
		select {
		case ev := <-tr.left:
			return i, ev, echoes, acks
		default:
		}
		sender.send(fmt.Sprintf("%d %s", i, text))
	}
	return max, tr.waitLeave(), echoes, acks
}

func TestSlowConsumerIsCutAndOthersGetEverything(t *testing.T) {
	tr := newTestRoom(t, WithSendQueue(64, 4<<20), WithKeepalive(Off, 0))
	tr.join("slow") // never reads
	fast := tr.join("fast")

	sent, ev, echoes, rest := flood(t, tr, fast, 4000, 8)
	if ev.nickname != "slow" || !errors.Is(ev.reason, ErrQueueOverflow) || !errors.Is(ev.reason, ErrSlowConsumer) || errors.Is(ev.reason, ErrWriteTimeout) {
		t.Fatalf("leave = %+v, want slow with ErrQueueOverflow, an ErrSlowConsumer", ev)
	}
	if diff := cmp.Diff(closeStatus{websocket.StatusPolicyViolation, "too slow"}, leftWith(ev.reason)); diff != "" {
		t.Errorf("LeaveError (-want +got):\n%s", diff)
	}
	fast.send("end")
	for s := range rest {
		if s == frame("fast", "end") {
			break
		}
		echoes = append(echoes, s)
	}
	// fast received every message, in order, and nothing else.
	if len(echoes) != sent {
		t.Fatalf("fast received %d messages before the end, want %d", len(echoes), sent)
	}
	for i, s := range echoes {
		if !strings.HasPrefix(s, fmt.Sprintf(`{"nickname":"fast","message":"%d `, i)) {
			t.Fatalf("echo %d = %.40q..., out of order or lost", i, s)
		}
	}
	t.Logf("slow member cut after %d messages of 16 KiB", sent)
}

func TestWriteTimeoutCutsAMemberThatStoppedReading(t *testing.T) {
	// A queue too big to fill, so that only the write timeout can cut the
	// member: with the default queue, a fast machine fills 4 MiB before
	// the timeout has passed. The timeout leaves the sender, which reads
	// (slowly, under -race), time to take a batch of 16 KiB frames.
	tr := newTestRoom(t, WithWriteTimeout(500*time.Millisecond), WithSendQueue(1<<20, 1<<30), WithKeepalive(Off, 0))
	tr.join("stalled")
	sender := tr.join("sender")
	_, ev, _, _ := flood(t, tr, sender, 4000, 8)
	if ev.nickname != "stalled" || !errors.Is(ev.reason, ErrWriteTimeout) || !errors.Is(ev.reason, ErrSlowConsumer) || errors.Is(ev.reason, ErrQueueOverflow) {
		t.Fatalf("leave = %+v, want stalled with ErrWriteTimeout, an ErrSlowConsumer", ev)
	}
	if diff := cmp.Diff(closeStatus{websocket.StatusPolicyViolation, "too slow"}, leftWith(ev.reason)); diff != "" {
		t.Errorf("LeaveError (-want +got):\n%s", diff)
	}
}

func TestBurstReaderSurvives(t *testing.T) {
	const burst = 5000
	tr := newTestRoom(t)
	sender := tr.join("sender")
	readers := []*client{sender, tr.join("r1"), tr.join("r2")}
	var results []<-chan []string
	for _, c := range readers {
		results = append(results, c.readAll(burst))
	}
	// One frame per write call, as fast as the client can go.
	for i := range burst {
		sender.sendRaw(websocket.MessageText, fmt.Sprintf(`{"message":"%d"}`, i))
	}
	want := make([]string, burst)
	for i := range want {
		want[i] = frame("sender", fmt.Sprint(i))
	}
	for i, ch := range results {
		if diff := cmp.Diff(want, <-ch); diff != "" {
			t.Errorf("reader %d (-want +got):\n%s", i, diff)
		}
	}
	select {
	case ev := <-tr.left:
		t.Fatalf("%s left during the burst: %v", ev.nickname, ev.reason)
	default:
	}
}

func TestLargeServerMessageIntoEmptyQueue(t *testing.T) {
	tr := newTestRoom(t, WithSendQueue(4, 1024))
	c := tr.join("sei")
	big := strings.Repeat("y", 10_000)
	if _, err := tr.room.Broadcast(context.Background(), Message{Nickname: "server", Text: big}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(frame("server", big), c.read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestKeepalive(t *testing.T) {
	t.Run("answering member stays", func(t *testing.T) {
		tr := newTestRoom(t, WithKeepalive(10*time.Millisecond, 5*time.Second))
		pings := make(chan struct{}, 100)
		c := tr.joinWith("nickname=alive", &websocket.DialOptions{
			OnPingReceived: func(context.Context, []byte) bool {
				select {
				case pings <- struct{}{}:
				default:
				}
				return true
			},
		})
		go func() { _, _ = c.readRaw() }() // answers pings until the echo arrives
		for range 3 {
			select {
			case <-pings:
			case <-time.After(testTimeout):
				t.Fatal("no ping")
			}
		}
		if got := tr.room.Len(); got != 1 {
			t.Fatalf("Len = %d after three pings", got)
		}
	})
	t.Run("silent member is dropped", func(t *testing.T) {
		tr := newTestRoom(t, WithKeepalive(10*time.Millisecond, 50*time.Millisecond))
		tr.join("silent") // never reads, so never answers a ping
		tr.expectLeave("silent", ErrPingTimeout)
	})
}

// The room's pings are answered however a client's pongs arrive: alone
// between messages (the reader takes them before coder/websocket's
// Reader), or between the fragments of a message (Reader meets them).
func TestKeepalivePongsAnywhere(t *testing.T) {
	tr := newTestRoom(t, WithKeepalive(10*time.Millisecond, time.Second), WithNotices())
	c := tr.dialRawClient("nickname=raw")
	tr.waitJoin()
	pings := 0
	for pings < 6 {
		op, payload, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if op != 0x9 {
			continue // the client's own join notice
		}
		pings++
		if pings%2 == 0 {
			if err := c.writeFrame(true, 0xa, payload); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// The pong between a message's two fragments.
		if err := c.writeFrame(false, 0x1, []byte(`{"message":`)); err != nil {
			t.Fatal(err)
		}
		if err := c.writeFrame(true, 0xa, payload); err != nil {
			t.Fatal(err)
		}
		if err := c.writeFrame(true, 0x0, []byte(`"hi"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := tr.room.Len(); got != 1 {
		t.Fatalf("Len = %d after %d pings answered", got, pings)
	}
}

// A client's ping, between messages, is answered with its payload, and
// the member goes on: the reader answers it itself rather than through
// coder/websocket's Reader (internal/socket's TakeControl).
func TestClientPingAnswered(t *testing.T) {
	tr := newTestRoom(t, WithKeepalive(Off, 0))
	c := tr.dialRawClient("nickname=pinger")
	tr.waitJoin()
	for _, payload := range []string{"one", "two"} {
		if err := c.writeFrame(true, 0x9, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		op, got, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if op != 0xa || string(got) != payload {
			t.Fatalf("answer to ping %q: opcode %#x, payload %q; want a pong with it", payload, op, got)
		}
	}
	text := `{"message":"still here"}`
	if err := c.writeFrame(true, 0x1, []byte(text)); err != nil {
		t.Fatal(err)
	}
	if op, got, err := c.readFrame(); err != nil || op != 0x1 || !strings.Contains(string(got), "still here") {
		t.Fatalf("echo: opcode %#x, %q, %v", op, got, err)
	}
}
