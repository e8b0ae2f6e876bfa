package framequeue

import (
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A queue keeps its frames in order across chunks, counts them, and gives
// its chunks back emptied.
func TestQueue(t *testing.T) {
	var pool sync.Pool
	var q Queue
	var want []string
	for i := range 2*chunkFrames + 3 {
		f := "frame " + strconv.Itoa(i)
		want = append(want, f)
		q.Push([]byte(f), &pool)
	}
	if q.Len != len(want) {
		t.Errorf("Len = %d, want %d", q.Len, len(want))
	}
	next := q.Cursor()
	var got []string
	for range q.Len {
		got = append(got, string(next()))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
	q.Release(&pool)
	if q.Len != 0 || q.Bytes != 0 || q.head != nil {
		t.Errorf("after Release: %+v", q)
	}
	c, _ := pool.Get().(*chunk)
	if c == nil || c.n != 0 || c.next != nil || c.frames[0] != nil {
		t.Errorf("a chunk back in the pool holds %+v", c)
	}
}
