package redisbroker

import (
	"context"
	"math"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// publishKept publishes n kept publications to room and returns their IDs,
// from a subscription.
func publishKept(t *testing.T, b *Broker, room string, n int) []uint64 {
	t.Helper()
	rec := newRecorder()
	s := subscribe(t, b, room, rec)
	defer s.Unsubscribe()
	var ids []uint64
	for i := range n {
		publish(t, b, room, true, strconv.Itoa(i))
		ids = append(ids, rec.next(t).ID)
	}
	return ids
}

func history(t *testing.T, b *Broker, room string, after uint64) ([]uint64, bool) {
	t.Helper()
	pubs, complete, err := b.History(context.Background(), room, after)
	if err != nil {
		t.Fatalf("History(%q, %d): %v", room, after, err)
	}
	ids := []uint64{}
	for _, p := range pubs {
		if !p.Keep || p.ID == 0 {
			t.Errorf("History returned %+v", p)
		}
		ids = append(ids, p.ID)
	}
	return ids, complete
}

func TestNumbering(t *testing.T) {
	r := newRedis(t)
	b := r.broker(t)
	before := time.Now().UnixMilli()
	ids := publishKept(t, b, "n", 5)
	after := time.Now().UnixMilli()
	// Numbered from the server's clock, here the same machine's.
	if first := int64(ids[0]); first < before-int64(time.Minute/time.Millisecond) || first > after+int64(time.Minute/time.Millisecond) {
		t.Errorf("first ID %d, want near the clock in milliseconds, %d", first, before)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("IDs %v do not increase", ids)
		}
	}
	// Publications not kept are neither numbered nor kept.
	publish(t, b, "n", false, "ephemeral")
	got, complete := history(t, b, "n", 0)
	if !slices.Equal(got, ids) || !complete {
		t.Errorf("History(0) = %v, %v; want %v, true", got, complete, ids)
	}
	pubs, _, _ := b.History(context.Background(), "n", ids[1])
	if len(pubs) != 3 || string(pubs[0].Data) != "2" || string(pubs[2].Data) != "4" {
		t.Errorf("History data = %v", pubs)
	}
}

func TestHistoryComplete(t *testing.T) {
	r := newRedis(t)
	b := r.broker(t, WithHistorySize(3))

	// A room never published to has no numbering.
	if got, complete := history(t, b, "h", 0); len(got) != 0 || !complete {
		t.Errorf("new room: History(0) = %v, %v; want nothing, true", got, complete)
	}
	if got, complete := history(t, b, "h", 12345); len(got) != 0 || complete {
		t.Errorf("new room: History(12345) = %v, %v; want nothing, false", got, complete)
	}

	two := publishKept(t, b, "h", 2)
	if got, complete := history(t, b, "h", 0); !slices.Equal(got, two) || !complete {
		t.Errorf("nothing dropped: History(0) = %v, %v; want %v, true", got, complete, two)
	}

	ids := append(two, publishKept(t, b, "h", 3)...)
	kept := ids[2:]
	for _, c := range []struct {
		name     string
		after    uint64
		want     []uint64
		complete bool
	}{
		{"after 0, some dropped", 0, kept, false},
		{"after a dropped ID", ids[0], kept, false},
		{"after the last dropped", ids[1], kept, true},
		{"after a kept ID", ids[3], ids[4:], true},
		{"after the last ID", ids[4], nil, true},
		{"foreign, above the last", ids[4] + 1, kept, false},
		{"foreign, the greatest", math.MaxUint64, kept, false},
		{"just below the base", ids[0] - 1, kept, false},
		{"foreign, below the base", ids[0] - 2, kept, false},
	} {
		got, complete := history(t, b, "h", c.after)
		if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) || complete != c.complete {
			t.Errorf("%s: History(%d) = %v, %v; want %v, %v", c.name, c.after, got, complete, c.want, c.complete)
		}
	}

	// Redis loses the data: the numbering begins again, above the old IDs,
	// which are then foreign. It begins from the clock in milliseconds, and
	// the old room numbered faster than that: let the clock pass its last
	// ID, as it has for any room that averaged less than a frame per
	// millisecond.
	for uint64(time.Now().UnixMilli()) <= ids[4] {
		runtime.Gosched()
	}
	r.flush(t)
	if got, complete := history(t, b, "h", ids[4]); len(got) != 0 || complete {
		t.Errorf("after the loss: History(old) = %v, %v; want nothing, false", got, complete)
	}
	if got, complete := history(t, b, "h", 0); len(got) != 0 || !complete {
		t.Errorf("after the loss: History(0) = %v, %v; want nothing, true", got, complete)
	}
	fresh := publishKept(t, b, "h", 1)
	if fresh[0] <= ids[4] {
		t.Fatalf("after the loss, numbering restarted at %d, below the old %d", fresh[0], ids[4])
	}
	for _, after := range []uint64{ids[4], ids[0]} {
		if got, complete := history(t, b, "h", after); !slices.Equal(got, fresh) || complete {
			t.Errorf("after the loss: History(%d) = %v, %v; want %v, false", after, got, complete, fresh)
		}
	}
	if got, complete := history(t, b, "h", 0); !slices.Equal(got, fresh) || !complete {
		t.Errorf("after the loss: History(0) = %v, %v; want %v, true", got, complete, fresh)
	}
}

// TestHistoryLogLost loses the log but not the numbering, as an eviction
// could: what it held counts as dropped.
func TestHistoryLogLost(t *testing.T) {
	r := newRedis(t)
	c := r.client(t, "")
	b := r.brokerOn(t, c)
	ids := publishKept(t, b, "l", 3)
	k := keysFor(keyPrefix(r.prefix), "l")
	if err := c.Del(context.Background(), k.log).Err(); err != nil {
		t.Fatal(err)
	}
	if got, complete := history(t, b, "l", ids[0]); len(got) != 0 || complete {
		t.Errorf("log lost: History(first) = %v, %v; want nothing, false", got, complete)
	}
	if got, complete := history(t, b, "l", ids[2]); len(got) != 0 || !complete {
		t.Errorf("log lost: History(last) = %v, %v; want nothing, true", got, complete)
	}
	more := publishKept(t, b, "l", 1)
	if got, complete := history(t, b, "l", ids[1]); !slices.Equal(got, more) || complete {
		t.Errorf("log lost: History(%d) = %v, %v; want %v, false", ids[1], got, complete, more)
	}
	if got, complete := history(t, b, "l", ids[2]); !slices.Equal(got, more) || !complete {
		t.Errorf("log lost: History(last) = %v, %v; want %v, true", got, complete, more)
	}
}

func TestHistorySizeZero(t *testing.T) {
	r := newRedis(t)
	b := r.broker(t, WithHistorySize(0))
	ids := publishKept(t, b, "z", 3)
	if ids[0] == 0 || ids[1] <= ids[0] || ids[2] <= ids[1] {
		t.Errorf("IDs %v: want numbered all the same", ids)
	}
	if got, complete := history(t, b, "z", 0); len(got) != 0 || complete {
		t.Errorf("History(0) = %v, %v; want nothing, false", got, complete)
	}
	if got, complete := history(t, b, "z", ids[2]); len(got) != 0 || !complete {
		t.Errorf("History(last) = %v, %v; want nothing, true", got, complete)
	}
}

// TestKeptOrder publishes kept publications from several nodes at once:
// delivered in the order of their IDs, which History repeats.
func TestKeptOrder(t *testing.T) {
	r := newRedis(t)
	const nodes, each = 4, 100
	b := r.broker(t, WithHistorySize(nodes*each))
	rec := newRecorder()
	subscribe(t, b, "k", rec)
	// The publisher's size applies: nodes must agree on it.
	var publishers []*Broker
	for range nodes {
		publishers = append(publishers, r.broker(t, WithHistorySize(nodes*each)))
	}
	concurrently(t, nodes, func(i int) error {
		for j := range each {
			p := broker.Publication{Keep: true, Data: []byte(strconv.Itoa(i*each + j))}
			if err := publishers[i].Publish(context.Background(), "k", p); err != nil {
				return err
			}
		}
		return nil
	})
	var delivered []uint64
	for range nodes * each {
		p := rec.next(t)
		if len(delivered) > 0 && p.ID <= delivered[len(delivered)-1] {
			t.Fatalf("ID %d delivered after %d", p.ID, delivered[len(delivered)-1])
		}
		delivered = append(delivered, p.ID)
	}
	got, complete := history(t, b, "k", 0)
	if !slices.Equal(got, delivered) || !complete {
		t.Errorf("History(0) differs from the delivery order, or is incomplete (%v)", complete)
	}
}

func TestHistoryTTL(t *testing.T) {
	r := newRedis(t)
	c := r.client(t, "")
	ctx := context.Background()
	k := keysFor(keyPrefix(r.prefix), "t")

	b := r.brokerOn(t, c, WithHistoryTTL(time.Hour))
	publishKept(t, b, "t", 1)
	for _, key := range []string{k.history, k.log} {
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("PTTL %s = %v, %v; want up to an hour", key, ttl, err)
		}
	}

	forever := r.brokerOn(t, c, WithHistoryTTL(0))
	publishKept(t, forever, "t", 1)
	for _, key := range []string{k.history, k.log} {
		if ttl, err := c.PTTL(ctx, key).Result(); err != nil || ttl != -1 {
			t.Errorf("without TTL: PTTL %s = %v, %v; want -1 (no expiry)", key, ttl, err)
		}
	}
}

func TestParseHistoryRejectsBadReplies(t *testing.T) {
	for _, res := range [][]any{
		{"1"},
		{"x", "1", "0", int64(0)},
		{"5", "1", "0", int64(1), "nope-0", "data"},
		{"5", "1", "0", int64(1), "3-0"},
	} {
		if _, _, err := parseHistory(res, 0); err == nil {
			t.Errorf("parseHistory(%q) succeeded", res)
		}
	}
}
