package load

import "math/bits"

// histogram counts latencies in nanoseconds in log-linear buckets: exact
// below 128 ns, then 64 buckets per power of two (under 1.6% error), up to
// maxLatency; larger values land in the last bucket.
type histogram struct {
	counts []uint32
	n      uint64
	max    int64
}

const (
	subBits    = 6
	subCount   = 1 << subBits // buckets per power of two
	maxLatency = int64(1) << 37
	numBuckets = 2*subCount + (37-subBits-1)*subCount
)

func newHistogram() *histogram { return &histogram{counts: make([]uint32, numBuckets)} }

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v >= maxLatency {
		v = maxLatency - 1
	}
	if v < 2*subCount {
		return int(v)
	}
	msb := bits.Len64(uint64(v)) - 1 // >= subBits+1
	shift := msb - subBits
	sub := int(v>>shift) - subCount // in [0, subCount)
	return 2*subCount + (shift-1)*subCount + sub
}

// bucketValue returns the midpoint of bucket i.
func bucketValue(i int) int64 {
	if i < 2*subCount {
		return int64(i)
	}
	i -= 2 * subCount
	shift := i/subCount + 1
	sub := int64(i%subCount + subCount)
	lo := sub << shift
	return lo + (int64(1)<<shift)/2
}

func (h *histogram) record(v int64) {
	h.counts[bucketOf(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at quantile q (0..1), or 0 with no samples.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen > rank {
			v := bucketValue(i)
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}
