package metrics

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts durations. Observing is cheap under the interpreter, which charges every
// local, branch and loop iteration: a duration d is counted in slot bits.Len64(d) (d < 2^slot
// ns) of a fixed array, with no loop and no branch; the sum is a second atomic add. The
// exposition folds the slots into the buckets 2^first ns … 2^(first+n-1) ns, then +Inf, and
// computes the cumulative counts.
type Histogram struct {
	first int       // log2 of the first upper bound, in nanoseconds
	le    []string  // the finite bounds as written in the le label (seconds)
	Slots [65]int64 // written by hot paths directly (one atomic add, no call)
	Sum   int64     // nanoseconds
}

// newHistogram makes n finite buckets 2^first ns … 2^(first+n-1) ns.
func newHistogram(first, n int) *Histogram {
	h := &Histogram{first: first}
	for i := 0; i < n; i++ {
		h.le = append(h.le, formatFloat(float64(int64(1)<<uint(first+i))/1e9))
	}
	return h
}

// ObserveSince records the time elapsed since start (time.Now().UnixNano(), which is cheaper
// to hold than a time.Time under the interpreter).
func (h *Histogram) ObserveSince(start int64) {
	h.Observe(time.Duration(time.Now().UnixNano() - start))
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	atomic.AddInt64(&h.Slots[bits.Len64(uint64(d))], 1)
	atomic.AddInt64(&h.Sum, int64(d))
}

// buckets returns the cumulative count of each finite bucket, then the total.
func (h *Histogram) buckets() []int64 {
	out := make([]int64, len(h.le)+1)
	cum := int64(0)
	b := 0
	for slot := 0; slot < len(h.Slots); slot++ {
		// Slot s holds durations d < 2^s ns, all within bucket le=2^s ns and above.
		for b < len(h.le) && slot > h.first+b {
			out[b] = cum
			b++
		}
		cum += atomic.LoadInt64(&h.Slots[slot])
	}
	for b < len(h.le) {
		out[b] = cum
		b++
	}
	out[len(h.le)] = cum
	return out
}

// Count returns how many durations were recorded (tests).
func (h *Histogram) Count() int64 {
	n := int64(0)
	for i := range h.Slots {
		n += atomic.LoadInt64(&h.Slots[i])
	}
	return n
}
