package redisbroker

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/seed014c2c51/chatroom/broker"
)

// PublishOnce takes each key once per room, whichever broker (node)
// publishes it, kept or not, within a batch or across batches; the
// duplicates are reported with the first's ID and reach no subscriber.
func TestPublishOnce(t *testing.T) {
	r := newRedis(t)
	one, two := r.broker(t), r.broker(t)
	rec := newRecorder()
	subscribe(t, one, "lobby", rec)
	ctx := context.Background()
	dups, err := one.PublishOnce(ctx, "lobby", []broker.Publication{
		{Keep: true, Key: "ann/1", Data: []byte("a")},
		{Keep: false, Key: "ann/2", Data: []byte("dm")},
		{Keep: true, Key: "ann/1", Data: []byte("a again")},
		{Keep: true, Data: []byte("no key")},
	})
	if err != nil {
		t.Fatal(err)
	}
	first := rec.next(t)
	if diff := cmp.Diff([]broker.Duplicate{{Index: 2, ID: first.ID}}, dups); diff != "" {
		t.Errorf("duplicates in one batch (-want +got):\n%s", diff)
	}
	for _, want := range []string{"dm", "no key"} {
		if got := rec.nextData(t); got != want {
			t.Errorf("received %q, want %q", got, want)
		}
	}
	dups, err = two.PublishOnce(ctx, "lobby", []broker.Publication{
		{Keep: false, Key: "ann/2", Data: []byte("dm again")},
		{Keep: true, Key: "ann/1", Data: []byte("a again")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]broker.Duplicate{{Index: 0}, {Index: 1, ID: first.ID}}, dups); diff != "" {
		t.Errorf("duplicates through another node (-want +got):\n%s", diff)
	}
	if dups, err := two.PublishOnce(ctx, "other", []broker.Publication{{Keep: true, Key: "ann/1", Data: []byte("x")}}); err != nil || len(dups) != 0 {
		t.Errorf("a key of another room: duplicates %+v, %v; want none", dups, err)
	}
	if err := one.Publish(ctx, "lobby", broker.Publication{Keep: true, Key: "ann/1", Data: []byte("a by Publish")}); err != nil {
		t.Fatal(err)
	}
	publish(t, one, "lobby", true, "last")
	if got := rec.nextData(t); got != "last" {
		t.Errorf("received %q, want the last: a duplicate went through", got)
	}
}
