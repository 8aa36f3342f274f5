package ratelimit

import (
	"sync"
	"time"
)

// decision is the outcome of one check, from Redis or the local limiter: index of the most
// restrictive limit (0-based), its remaining and seconds until fully reset, and seconds until
// a retry can pass when refused.
type decision struct {
	allowed   bool
	index     int
	remaining int64
	reset     int64
	retry     int64
}

// localLimiter is failurePolicy local: the sliding-window arithmetic of the Redis script,
// in memory, per gateway instance, on the gateway's clock. Its size is bounded by two
// generations of at most max/2 clients each: when the current one is full, the previous one
// is dropped and the current one becomes the previous one (clients seen since move back).
type localLimiter struct {
	mu   sync.Mutex
	half int
	cur  map[string]*localEntry
	prev map[string]*localEntry
}

type localEntry struct {
	set  *limitSet
	idx  []int64
	cur  []float64
	prev []float64
}

func newLocalLimiter(max int) *localLimiter {
	half := max / 2
	if half < 1 {
		half = 1
	}
	return &localLimiter{half: half, cur: map[string]*localEntry{}, prev: map[string]*localEntry{}}
}

// allow checks and counts one request of the client key base against set at now.
func (l *localLimiter) allow(key string, set *limitSet, now time.Time) decision {
	ms := now.UnixNano() / int64(time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.cur[key]
	if e == nil {
		e = l.prev[key]
		if e != nil {
			delete(l.prev, key)
		}
		if e == nil || e.set != set {
			n := len(set.limits)
			e = &localEntry{set: set, idx: make([]int64, n), cur: make([]float64, n), prev: make([]float64, n)}
		}
		if len(l.cur) >= l.half {
			l.prev = l.cur
			l.cur = map[string]*localEntry{}
		}
		l.cur[key] = e
	}
	return e.check(ms)
}

// check is the sliding-window script for one client, in milliseconds.
func (e *localEntry) check(now int64) decision {
	n := len(e.set.limits)
	d := decision{allowed: true}
	var rems, resets [maxLimits]int64
	var refused [maxLimits]bool
	var retry float64
	for i := 0; i < n; i++ {
		limit := float64(e.set.limits[i].requests)
		win := int64(e.set.limits[i].window / time.Millisecond)
		idx := now / win
		cur := 0.0
		prev := 0.0
		if e.idx[i] == idx {
			cur = e.cur[i]
			prev = e.prev[i]
		} else if e.idx[i] == idx-1 {
			prev = e.cur[i]
		}
		// Roll the window now: the counts are only read through idx.
		e.idx[i] = idx
		e.cur[i] = cur
		e.prev[i] = prev
		elapsed := float64(now - idx*win)
		w := float64(win)
		est := prev*(w-elapsed)/w + cur
		var rem int64
		var reset float64
		if est+1 <= limit {
			rem = int64(limit - est - 1)
			reset = float64((idx+2)*win - now)
		} else {
			d.allowed = false
			refused[i] = true
			var wait float64
			if cur+1 <= limit {
				wait = w - (limit-1-cur)*w/prev - elapsed
			} else {
				wait = float64((idx+1)*win-now) + w - (limit-1)*w/cur
			}
			if wait > retry {
				retry = wait
			}
			if cur > 0 {
				reset = float64((idx+2)*win - now)
			} else if prev > 0 {
				reset = float64((idx+1)*win - now)
			}
		}
		rems[i] = rem
		resets[i] = ceilDiv(reset, 1000)
	}
	// The most restrictive limit: lowest remaining, then longest reset; among the refusing
	// limits when refused.
	best := -1
	for i := 0; i < n; i++ {
		if !d.allowed && !refused[i] {
			continue
		}
		if best < 0 || rems[i] < rems[best] || (rems[i] == rems[best] && resets[i] > resets[best]) {
			best = i
		}
	}
	if d.allowed {
		for i := 0; i < n; i++ {
			e.cur[i]++
		}
	} else {
		d.retry = ceilDiv(retry, 1000)
		if d.retry < 1 {
			d.retry = 1
		}
	}
	d.index = best
	d.remaining = rems[best]
	d.reset = resets[best]
	return d
}

// ceilDiv is ceil(x / unit), at least 0.
func ceilDiv(x float64, unit float64) int64 {
	if x <= 0 {
		return 0
	}
	q := int64(x / unit)
	if float64(q)*unit < x {
		q++
	}
	return q
}
