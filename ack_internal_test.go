package chatroom

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/broker"
)

// The record of refs stays within its bounds under a flood of unique refs,
// from one sender and from many, and forgets what is past the window.
func TestRefRecordBounds(t *testing.T) {
	var r refRecord
	now := testEpoch
	for i := range 3 * maxRefsPerSender {
		r.claimLocked(strconv.Quote("nann")+strconv.Itoa(i), now).id = 1
	}
	if n := r.lenLocked(); n != maxRefsPerSender {
		t.Errorf("one sender's flood: %d refs kept, want %d", n, maxRefsPerSender)
	}
	if r.lookLocked(strconv.Quote("nann")+"0", now) != nil || r.lookLocked(strconv.Quote("nann")+strconv.Itoa(3*maxRefsPerSender-1), now) == nil {
		t.Error("the sender's oldest refs should go first")
	}
	for i := range 2 * maxRefs {
		r.claimLocked(strconv.Quote(fmt.Sprint("n", i))+"r", now).id = 1
	}
	if n, q := r.lenLocked(), len(r.order); n > maxRefs || q > maxRefs {
		t.Errorf("many senders' flood: %d refs kept, %d queued, want at most %d", n, q, maxRefs)
	}
	if r.lookLocked(strconv.Quote("nann")+strconv.Itoa(3*maxRefsPerSender-1), now.Add(broker.DedupWindow)) != nil || r.lenLocked() != 0 || len(r.senders) != 0 {
		t.Errorf("past the window: %d refs and %d senders kept, want none", r.lenLocked(), len(r.senders))
	}
}

// With a history, the record keeps the last refs of its length whatever
// their age.
func TestRefRecordKeepsTheHistorysRefs(t *testing.T) {
	r := refRecord{least: 3}
	for i := range 5 {
		r.claimLocked(strconv.Quote("nann")+strconv.Itoa(i), testEpoch).id = uint64(i + 1)
	}
	later := testEpoch.Add(time.Hour)
	if e := r.lookLocked(strconv.Quote("nann")+"4", later); e == nil || e.id != 5 || r.lenLocked() != 3 {
		t.Errorf("an hour later: %d refs kept, want the last 3", r.lenLocked())
	}
}
