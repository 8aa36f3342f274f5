package ratelimit

import (
	"sync"
	"sync/atomic"
	"time"
)

// Backoff after a Redis failure: the first retry after minBackoff, then doubling up to
// maxBackoff while probes keep failing.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// breaker tracks whether Redis is usable. While it is down, requests are served by the
// failure policy without touching Redis, except one probe at a time once the backoff has
// passed; a probe that succeeds brings Redis back, one that fails doubles the backoff.
// The healthy path only reads down, atomically.
type breaker struct {
	down int32 // 1 while Redis is considered unreachable

	now      func() time.Time
	min, max time.Duration
	mu       sync.Mutex
	retryAt  time.Time
	backoff  time.Duration
	probing  bool
}

func newBreaker(now func() time.Time) *breaker {
	return &breaker{now: now, min: minBackoff, max: maxBackoff}
}

// isDown tells whether Redis is considered unreachable.
func (b *breaker) isDown() bool {
	return atomic.LoadInt32(&b.down) != 0
}

// tryProbe tells whether the caller may try Redis now: always while it is up; while it is
// down, only once the backoff has passed and no other probe is running. A caller given a
// probe must end it with succeed, fail(true) or release.
func (b *breaker) tryProbe() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if atomic.LoadInt32(&b.down) == 0 {
		return true
	}
	if b.probing || b.now().Before(b.retryAt) {
		return false
	}
	b.probing = true
	return true
}

// fail records a failed Redis call, probe telling whether it was the probe. It returns true
// when Redis just went down (the caller logs the failover once).
func (b *breaker) fail(probe bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if atomic.LoadInt32(&b.down) == 0 {
		atomic.StoreInt32(&b.down, 1)
		b.backoff = b.min
		b.retryAt = b.now().Add(b.backoff)
		b.probing = false
		return true
	}
	if probe {
		b.probing = false
		b.backoff *= 2
		if b.backoff > b.max {
			b.backoff = b.max
		}
		b.retryAt = b.now().Add(b.backoff)
	}
	return false
}

// succeed records a Redis call that answered. It returns true when Redis just came back
// (the caller logs the recovery once).
func (b *breaker) succeed() bool {
	if atomic.LoadInt32(&b.down) == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if atomic.LoadInt32(&b.down) == 0 {
		return false
	}
	atomic.StoreInt32(&b.down, 0)
	b.probing = false
	b.backoff = 0
	return true
}

// release ends a probe that neither succeeded nor failed (the client went away).
func (b *breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}
