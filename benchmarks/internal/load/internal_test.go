package load

import (
	"math"
	"testing"
)

func TestParseDelivery(t *testing.T) {
	for _, tc := range []struct {
		in      string
		sender  int
		seq, ts int64
		ok      bool
	}{
		{`{"nickname":"m1","message":"3 17 1700000000000000000"}`, 3, 17, 1700000000000000000, true},
		{`{"nickname":"m1","message":"3 17 1700000000000000000 xxxx"}`, 3, 17, 1700000000000000000, true},
		{`{"nickname":"m1","message":"probe 1"}`, 0, 0, 0, false},
		{`{"nickname":"m1","message":"3 17"}`, 0, 0, 0, false},
		{`{"nickname":"m1"}`, 0, 0, 0, false},
	} {
		s, q, ts, ok := parseDelivery([]byte(tc.in))
		if ok != tc.ok || s != tc.sender || q != tc.seq || ts != tc.ts {
			t.Errorf("parseDelivery(%s) = %d %d %d %v", tc.in, s, q, ts, ok)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 100000; v++ {
		h.record(v * 1000) // 1 µs .. 100 ms
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		got, want := float64(h.quantile(q)), q*100000*1000
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("quantile(%v) = %v, want %v ±2%%", q, got, want)
		}
	}
	if h.quantile(1) != 100000*1000 {
		t.Errorf("quantile(1) = %d, want the max", h.quantile(1))
	}
	for v := int64(0); v < 1<<20; v += 997 {
		b := bucketOf(v)
		if b < 0 || b >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, b)
		}
	}
	if b := bucketOf(math.MaxInt64); b != numBuckets-1 {
		t.Errorf("bucketOf(max) = %d, want %d", b, numBuckets-1)
	}
}
