package redisbroker

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seed014c2c51/chatroom/broker"
)

// failFast is how soon an operation must fail when Redis is down.
const failFast = time.Second

// TestRedisRestart kills redis-server during a conversation and starts it
// again, empty, on the same port.
func TestRedisRestart(t *testing.T) {
	r := newLocalRedis(t)
	pub := r.broker(t)
	sub := r.broker(t)
	rec, rec2 := newRecorder(), newRecorder()
	subscribe(t, sub, "room", rec)
	subscribe(t, sub, "room2", rec2)
	publish(t, pub, "room", true, "before")
	old := rec.next(t)

	r.local.kill()

	ctx := context.Background()
	for _, keep := range []bool{false, true} {
		start := time.Now()
		err := pub.Publish(ctx, "room", broker.Publication{Keep: keep, Data: []byte("during")})
		if elapsed := time.Since(start); err == nil || elapsed > failFast {
			t.Errorf("Publish (keep=%v) with Redis down: %v after %v; want an error within %v", keep, err, elapsed, failFast)
		}
		// The client dials before it writes, and does not retry.
		if !errors.Is(err, broker.ErrUnavailable) {
			t.Errorf("Publish (keep=%v) with Redis down: %v, want broker.ErrUnavailable", keep, err)
		}
	}
	start := time.Now()
	if _, _, err := pub.History(ctx, "room", 0); err == nil || time.Since(start) > failFast {
		t.Errorf("History with Redis down: %v after %v", err, time.Since(start))
	}
	start = time.Now()
	if err := pub.SetPresence(ctx, "room", "n", []string{"a"}, time.Second); err == nil || time.Since(start) > failFast {
		t.Errorf("SetPresence with Redis down: %v after %v", err, time.Since(start))
	}

	// Subscribing does not fail while Redis is down...
	during := newRecorder()
	start = time.Now()
	subscribe(t, sub, "room3", during)
	if elapsed := time.Since(start); elapsed > failFast {
		t.Errorf("Subscribe with Redis down took %v", elapsed)
	}

	r.local.restart()
	restarted := time.Now()

	// ...and every subscription, old or new, receives again once the
	// broker has reconnected, which it does by itself.
	publishUntil(t, pub, "room", "again", rec)
	t.Logf("first delivery %v after the restart", time.Since(restarted))
	publishUntil(t, pub, "room2", "again", rec2)
	publishUntil(t, pub, "room3", "again", during)

	// In order, as before.
	for _, d := range []string{"1", "2", "3", "4", "5"} {
		publish(t, pub, "room", false, d)
	}
	for _, want := range []string{"1", "2", "3", "4", "5"} {
		got := rec.nextData(t)
		for len(got) > 5 && got[:5] == "again" {
			got = rec.nextData(t) // late retries of publishUntil
		}
		if got != want {
			t.Fatalf("after the restart got %q, want %q", got, want)
		}
	}

	// Redis lost the history: the numbering begins again above the old
	// IDs, and the old IDs are foreign.
	publish(t, pub, "room", true, "kept")
	var p broker.Publication
	for p = rec.next(t); p.ID == 0; p = rec.next(t) {
	}
	if p.ID <= old.ID {
		t.Errorf("after the loss, ID %d is not above the old %d", p.ID, old.ID)
	}
	if got, complete := history(t, pub, "room", old.ID); len(got) != 1 || complete {
		t.Errorf("History(old ID) = %v, %v; want the new one, false", got, complete)
	}
}

// TestDeadConnectionReplaced freezes the subscriber's connection without
// closing it: the health check must notice and subscribe on a new one.
func TestDeadConnectionReplaced(t *testing.T) {
	r := newRedis(t)
	proxy := newFreezeProxy(t, r.opts.Addr)
	pub := r.broker(t)
	sub := r.brokerOn(t, r.client(t, proxy.addr()), WithHealthCheckInterval(100*time.Millisecond))
	rec := newRecorder()
	subscribe(t, sub, "room", rec)
	publish(t, pub, "room", false, "before")
	if got := rec.nextData(t); got != "before" {
		t.Fatalf("got %q", got)
	}

	proxy.freeze()
	publishUntil(t, pub, "room", "after", rec)

	// A subscription made now is confirmed on the new connection.
	// (publishUntil, since under load a slow reply may make the health
	// check replace the connection once more.)
	rec2 := newRecorder()
	subscribe(t, sub, "room2", rec2)
	publishUntil(t, pub, "room2", "x", rec2)
}

// TestTimeoutBoundsCalls makes Redis unresponsive without refusing
// connections: calls must end within the broker's timeout, and Subscribe
// must return without error all the same.
func TestTimeoutBoundsCalls(t *testing.T) {
	r := newRedis(t)
	proxy := newFreezeProxy(t, r.opts.Addr)
	proxy.freezeAll()
	const timeout = 300 * time.Millisecond
	b := r.brokerOn(t, r.client(t, proxy.addr()), WithTimeout(timeout))
	limit := timeout + 700*time.Millisecond

	ctx := context.Background()
	start := time.Now()
	if err := b.Publish(ctx, "r", broker.Publication{Keep: true}); err == nil || time.Since(start) > limit {
		t.Errorf("Publish: %v after %v; want an error within %v", err, time.Since(start), limit)
	}
	start = time.Now()
	if _, err := b.Presence(ctx, "r"); err == nil || time.Since(start) > limit {
		t.Errorf("Presence: %v after %v; want an error within %v", err, time.Since(start), limit)
	}
	start = time.Now()
	if _, err := b.Subscribe(ctx, "r", newRecorder().deliver); err != nil || time.Since(start) > limit {
		t.Errorf("Subscribe: %v after %v; want success within %v", err, time.Since(start), limit)
	}
	start = time.Now()
	if err := b.Close(); err != nil || time.Since(start) > limit {
		t.Errorf("Close: %v after %v; want success within %v", err, time.Since(start), limit)
	}
}

// TestOwnPublicationsAfterRestart publishes to a room the broker itself
// subscribes to, while Redis restarts: each Publish either fails (so that
// the room delivers locally) or reaches the broker's own subscription.
// Redis accepting a publication while the broker is not yet subscribed
// again would lose it for the node's own members.
func TestOwnPublicationsAfterRestart(t *testing.T) {
	r := newLocalRedis(t)
	b := r.broker(t)
	rec := newRecorder()
	subscribe(t, b, "room", rec)
	publish(t, b, "room", false, "before")
	rec.next(t)

	r.local.kill()
	err := b.Publish(context.Background(), "room", broker.Publication{Data: []byte("down")})
	if err == nil {
		t.Fatal("Publish succeeded with Redis down")
	}
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish with Redis down: %v, want broker.ErrUnavailable", err)
	}
	r.local.restart()

	// Publish every 10ms until 20 have succeeded, then check that each of
	// those arrived, in order.
	var accepted []string
	var refused int
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(2 * waitTimeout)
	defer deadline.Stop()
	for i := 0; len(accepted) < 20; i++ {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("only %d publications accepted, %d refused", len(accepted), refused)
		}
		data := "p" + strconv.Itoa(i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.Publish(ctx, "room", broker.Publication{Keep: i%2 == 0, Data: []byte(data)})
		cancel()
		if err != nil {
			refused++
			continue
		}
		accepted = append(accepted, data)
	}
	t.Logf("%d publications refused while reconnecting", refused)
	for _, want := range accepted {
		if got := rec.nextData(t); got != want {
			t.Fatalf("got %q, want %q: an accepted publication was lost", got, want)
		}
	}
}

// TestHungRedisRunsTimedOutPublication stops redis-server's process
// (SIGSTOP) while a publication is on its way: Publish times out, and Redis
// runs the command when it goes on (SIGCONT), so the error must leave the
// outcome open rather than say that nothing was published.
func TestHungRedisRunsTimedOutPublication(t *testing.T) {
	r := newLocalRedis(t)
	pub := r.broker(t, WithTimeout(300*time.Millisecond))
	sub := r.broker(t)
	rec := newRecorder()
	subscribe(t, sub, "room", rec)
	publish(t, pub, "room", true, "before")
	before := rec.next(t)

	r.local.pause()
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			r.local.resume()
		}
	})
	err := pub.Publish(context.Background(), "room", broker.Publication{Keep: true, Data: []byte("late")})
	if err == nil || errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish to a hung Redis: %v, want an error that leaves the outcome open", err)
	}
	r.local.resume()
	resumed = true
	if p := rec.next(t); string(p.Data) != "late" || p.ID <= before.ID {
		t.Errorf("after Redis went on: got %q (ID %d after %d), want the timed-out publication, numbered after the last", p.Data, p.ID, before.ID)
	}
}

// TestRetriesLeaveOutcomeOpen: a client that retries commands may have run
// one whose retry then could not connect, so its dial errors do not say
// that nothing was published.
func TestRetriesLeaveOutcomeOpen(t *testing.T) {
	r := newLocalRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.opts.Addr, DialerRetries: 1, MinRetryBackoff: -1, MaxRetryBackoff: -1})
	t.Cleanup(func() { _ = c.Close() })
	b := r.brokerOn(t, c)
	r.local.kill()
	err := b.Publish(context.Background(), "room", broker.Publication{Keep: true})
	if err == nil || errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish with Redis down, through a client that retries: %v, want an error that leaves the outcome open", err)
	}
}
