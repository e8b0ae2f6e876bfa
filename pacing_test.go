package chatroom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// burstMessage is the i-th message of a burst: about 1 KiB.
func burstMessage(i int) string {
	return fmt.Sprintf("%05d %s", i, strings.Repeat("b", 1018))
}

// sendLikeJavaScript sends n messages as a single-threaded JavaScript client
// does in one synchronous loop that runs for at least loop (the page's own
// work, on a slow device): each send writes what the kernel takes at once
// and buffers the rest in the client, without waiting; the client reads
// nothing until the loop is over. It returns once the loop is over, with a
// channel that reports when the buffered rest has been written.
func (c *rawClient) sendLikeJavaScript(n int, loop time.Duration, message func(int) string) <-chan error {
	busy := time.NewTimer(loop)
	defer func() { <-busy.C }() // the loop's own work: nothing is read meanwhile
	var pending [][]byte
	for i := range n {
		f := frameBytes(message(i))
		if len(pending) > 0 {
			pending = append(pending, f)
			continue
		}
		// A write that the kernel cannot take at once would block: the
		// browser's socket buffers it instead (bufferedAmount).
		_ = c.conn.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
		k, err := c.conn.Write(f)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			pending = append(pending, f[k:])
		default:
			c.t.Errorf("write %d: %v", i, err)
			return nil
		}
	}
	_ = c.conn.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		for _, f := range pending {
			if _, err := c.conn.Write(f); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// frameBytes is a client text frame {"message": text}, masked with key 0.
func frameBytes(text string) []byte {
	p := `{"message":"` + text + `"}`
	return append(clientHeader(true, 0x1, len(p)), p...)
}

// readTexts reads n text frames from a raw client and returns their
// payloads, or fewer and the error that stopped it.
func (c *rawClient) readTexts(n int) ([]string, error) {
	got := make([]string, 0, n)
	for len(got) < n {
		op, p, err := c.readFrame()
		if err != nil {
			return got, err
		}
		switch op {
		case 0x1:
			got = append(got, string(p))
		case 0x8:
			return got, fmt.Errorf("closed: %v", closeSeen{code: statusOf(p), reason: string(p[min(2, len(p)):])})
		}
	}
	return got, nil
}

// A member that sends 10,000 messages of 1 KiB in one synchronous loop, as
// a single-threaded JavaScript client does, reads nothing meanwhile. It is
// not cut by the echoes of its own messages, and every member receives all
// of them in order.
func TestBurstSenderIsNotCut(t *testing.T) {
	const burst = 10_000
	tr := newTestRoom(t)
	readers := []*client{tr.join("r1"), tr.join("r2")}
	var results []<-chan []string
	for _, c := range readers {
		results = append(results, c.readAll(burst))
	}
	sender := tr.dialRawClient("nickname=burster")
	tr.waitJoin()
	start := time.Now()
	flushed := sender.sendLikeJavaScript(burst, 2*time.Second, burstMessage)
	echoes, err := sender.readTexts(burst)
	if err != nil {
		t.Fatalf("burster after %d echoes: %v", len(echoes), err)
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	want := make([]string, burst)
	for i := range want {
		want[i] = frame("burster", burstMessage(i))
	}
	for i, got := range append([][]string{echoes}, <-results[0], <-results[1]) {
		if len(got) != burst {
			t.Fatalf("client %d received %d of %d", i, len(got), burst)
		}
		for j := range got {
			if got[j] != want[j] {
				t.Fatalf("client %d: frame %d = %.30q…, want %.30q…", i, j, got[j], want[j])
			}
		}
	}
	select {
	case ev := <-tr.left:
		t.Fatalf("%s left during the burst: %v", ev.nickname, ev.reason)
	default:
	}
	t.Logf("%d messages reached 3 members in %v", burst, time.Since(start).Round(time.Millisecond))
}

// One client floods a room without a rate limit, as fast as it can, and
// reads what it is sent so as not to be cut itself. An honest member that
// reads 20,000 frames a second (1,500 under the race detector, which slows
// the flood as much) is not cut and receives everything in order; a member
// that has stopped reading is cut.
func TestFloodDoesNotCutHonestMembers(t *testing.T) {
	const (
		floodFor    = 3 * time.Second
		maxMessages = 100_000
	)
	honestRate := rate.Limit(20_000) // frames a second
	if raceEnabled {
		honestRate = 1_500
	}
	tr := newTestRoom(t, WithKeepalive(Off, 0), WithWriteTimeout(2*time.Second))
	honest := tr.join("honest")
	tr.join("paused") // never reads

	flooder := tr.dialRawClient("nickname=flooder")
	tr.waitJoin()
	var sent int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// 64 frames a write, as an attacker would send them.
		deadline := time.Now().Add(floodFor)
		var batch []byte
		for sent < maxMessages && time.Now().Before(deadline) {
			batch = batch[:0]
			for range 64 {
				batch = append(batch, frameBytes(burstMessage(sent))...)
				sent++
			}
			if _, err := flooder.conn.Write(batch); err != nil {
				t.Errorf("flood write %d: %v", sent, err)
				return
			}
		}
	}()
	go func() { _, _ = flooder.readTexts(maxMessages) }() // reads to stay

	reading := rate.NewLimiter(honestRate, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	var got []string
	readDone := make(chan error, 1)
	go func() {
		for {
			if err := reading.Wait(ctx); err != nil {
				readDone <- err
				return
			}
			s, err := honest.readRaw()
			if err != nil {
				readDone <- err
				return
			}
			got = append(got, s)
			if s == frame("flooder", "end") {
				readDone <- nil
				return
			}
		}
	}()
	wg.Wait()
	if _, err := flooder.conn.Write(frameBytes("end")); err != nil {
		t.Fatal(err)
	}
	if err := <-readDone; err != nil {
		t.Fatalf("honest member after %d of %d frames: %v", len(got), sent+1, err)
	}
	if len(got) != sent+1 {
		t.Fatalf("honest member received %d frames, want %d", len(got), sent+1)
	}
	for i := range sent {
		if want := frame("flooder", burstMessage(i)); got[i] != want {
			t.Fatalf("frame %d = %.30q…, want %.30q…", i, got[i], want)
		}
	}
	ev := tr.waitLeave()
	if ev.nickname != "paused" || !errors.Is(ev.reason, ErrSlowConsumer) {
		t.Errorf("leave = %s %v, want paused with ErrSlowConsumer", ev.nickname, ev.reason)
	}
	select {
	case ev := <-tr.left:
		t.Errorf("%s left too: %v", ev.nickname, ev.reason)
	default:
	}
	t.Logf("flooder sent %d messages in %v; the honest member received all of them", sent, floodFor)
}
