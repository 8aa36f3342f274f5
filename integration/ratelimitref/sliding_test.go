package ratelimitref

import (
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/redistest"
)

// arrival is one request sent to both algorithms, with the local times around each call
// (Redis' clock, on this host, read TIME in between).
type arrival struct {
	swOK, slOK        bool
	swBefore, swAfter time.Time
	slBefore, slAfter time.Time
}

// TestSlidingWindowAgreement drives the sliding-window counter and the exact sliding-log with
// the same arrivals (each request goes to both, back to back) and counts the decisions that
// differ. The counter estimates the requests of the last W as prev*(1-f)+cur (f: elapsed
// share of the current fixed window), assuming the previous window's requests were spread
// evenly. The bound checked on what it admits: at most R per fixed window, hence fewer than
// 2R (at most 2R-1) in any sliding window of length W; the log admits at most R in any
// sliding window. The counter errs both ways: it admits requests the log refuses when the
// previous window's requests came early, and refuses requests the log admits when they came
// late.
func TestSlidingWindowAgreement(t *testing.T) {
	rd := redistest.Start(t)
	const R = 10
	const W = time.Second
	rng := rand.New(rand.NewSource(1))

	// Patterns: offsets from an aligned start (a whole second, so window edges are known).
	every := func(n int, d time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i) * d
		}
		return out
	}
	at := func(offsets map[time.Duration]int) []time.Duration {
		var out []time.Duration
		for off, n := range offsets {
			for i := 0; i < n; i++ {
				out = append(out, off)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	bursty := func() []time.Duration {
		var out []time.Duration
		off := time.Duration(0)
		for b := 0; b < 6; b++ {
			for i := 0; i < 15; i++ {
				out = append(out, off)
			}
			off += time.Duration(200+rng.Intn(700)) * time.Millisecond
		}
		return out
	}
	patterns := []struct {
		name    string
		offsets []time.Duration
	}{
		{"steady at 1.5x the limit (every 67ms, 3s)", every(45, 67*time.Millisecond)},
		{"steady at 0.8x the limit (every 125ms, 2s)", every(16, 125*time.Millisecond)},
		{"bursts of 15, random gaps 200-900ms", bursty()},
		{"window edges: 10 at .9s, 1.1s, 1.95s, 2.5s", at(map[time.Duration]int{
			900 * time.Millisecond: 10, 1100 * time.Millisecond: 10, 1950 * time.Millisecond: 10, 2500 * time.Millisecond: 10})},
		{"worst case: 10 at .98s, 12 at 1.97s", at(map[time.Duration]int{980 * time.Millisecond: 10, 1970 * time.Millisecond: 12})},
	}

	var total, differ, counterMore, logMore int
	for pi, p := range patterns {
		client := "p" + string(rune('a'+pi))
		sw := middleware(t, rd.Addr(), "sliding-window", "ref-sw", R, W)
		sl := middleware(t, rd.Addr(), "sliding-log", "ref-sl", R, W)
		start := time.Now().Truncate(time.Second).Add(time.Second)
		var arrivals []arrival
		for _, off := range p.offsets {
			time.Sleep(time.Until(start.Add(off)))
			// Wall-clock readings (no monotonic part): the scripts count on Redis' TIME, the
			// wall clock, and a wall clock being slewed (0.5% was seen on these machines) runs
			// at another rate than the monotonic one.
			var a arrival
			a.swBefore = time.Now().Round(0)
			a.swOK, _ = ask(t, sw, client)
			a.swAfter = time.Now().Round(0)
			a.slBefore = time.Now().Round(0)
			a.slOK, _ = ask(t, sl, client)
			a.slAfter = time.Now().Round(0)
			arrivals = append(arrivals, a)
		}

		var d, cm, lm, swAdmitted, slAdmitted int
		for _, a := range arrivals {
			if a.swOK {
				swAdmitted++
			}
			if a.slOK {
				slAdmitted++
			}
			if a.swOK != a.slOK {
				d++
				if a.swOK {
					cm++
				} else {
					lm++
				}
			}
		}
		swMax := maxInSlidingWindow(arrivals, W, func(a arrival) (bool, time.Time) { return a.swOK, mid(a.swBefore, a.swAfter) })
		slMax := maxInSlidingWindow(arrivals, W, func(a arrival) (bool, time.Time) { return a.slOK, mid(a.slBefore, a.slAfter) })
		t.Logf("%-45s requests %3d  admitted counter %3d log %3d  differing %2d (counter admits, log refuses %2d; log admits, counter refuses %2d)  max in any %s: counter %2d log %2d",
			p.name, len(arrivals), swAdmitted, slAdmitted, d, cm, lm, W, swMax, slMax)

		// The bounds, only on violations certain despite the gap between local and Redis time.
		for k, n := range certainPerFixedWindow(arrivals, W) {
			if n > R {
				t.Errorf("%s: the counter admitted %d > %d in fixed window %d", p.name, n, R, k)
			}
		}
		if n := certainMaxInSlidingWindow(arrivals, W, func(a arrival) (bool, time.Time, time.Time) { return a.swOK, a.swBefore, a.swAfter }); n > 2*R-1 {
			t.Errorf("%s: the counter admitted %d > 2R-1 = %d within %s", p.name, n, 2*R-1, W)
		}
		if n := certainMaxInSlidingWindow(arrivals, W, func(a arrival) (bool, time.Time, time.Time) { return a.slOK, a.slBefore, a.slAfter }); n > R {
			t.Errorf("%s: the log admitted %d > R = %d within %s", p.name, n, R, W)
		}
		total += len(arrivals)
		differ += d
		counterMore += cm
		logMore += lm
	}
	t.Logf("AGREEMENT sliding-window vs sliding-log (R=%d per %s): %d requests, %d differing decisions (%.1f%%): counter admitted %d the log refused, refused %d the log admitted; bound checked: counter <= R per fixed window and <= 2R-1 in any sliding window, log <= R in any sliding window",
		R, W, total, differ, 100*float64(differ)/float64(total), counterMore, logMore)
}

func mid(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }

// maxInSlidingWindow is the largest number of admitted requests within any w (by midpoints).
func maxInSlidingWindow(as []arrival, w time.Duration, get func(arrival) (bool, time.Time)) int {
	var ts []time.Time
	for _, a := range as {
		if ok, t := get(a); ok {
			ts = append(ts, t)
		}
	}
	best := 0
	for j := range ts {
		n := 0
		for i := 0; i <= j; i++ {
			if ts[j].Sub(ts[i]) < w {
				n++
			}
		}
		if n > best {
			best = n
		}
	}
	return best
}

// certainMaxInSlidingWindow counts, for each admitted request j, the admitted requests
// certainly less than w before it (after_j - before_i < w), itself included.
func certainMaxInSlidingWindow(as []arrival, w time.Duration, get func(arrival) (bool, time.Time, time.Time)) int {
	best := 0
	for j := range as {
		okJ, _, afterJ := get(as[j])
		if !okJ {
			continue
		}
		n := 0
		for i := 0; i <= j; i++ {
			okI, beforeI, _ := get(as[i])
			if okI && afterJ.Sub(beforeI) < w {
				n++
			}
		}
		if n > best {
			best = n
		}
	}
	return best
}

// certainPerFixedWindow counts the counter's admitted requests per fixed window (Unix time /
// w), only those whose call did not straddle a window edge.
func certainPerFixedWindow(as []arrival, w time.Duration) map[int64]int {
	out := map[int64]int{}
	for _, a := range as {
		if !a.swOK {
			continue
		}
		k := a.swBefore.UnixNano() / int64(w)
		if a.swAfter.UnixNano()/int64(w) == k {
			out[k]++
		}
	}
	return out
}
