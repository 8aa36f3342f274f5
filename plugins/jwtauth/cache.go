package jwtauth

import "sync"

// tokenCache is a bounded cache of verdicts keyed by a seeded 64-bit hash of the token
// (hash/maphash; the verdict holds the token, and a hit must match it exactly). It keeps two
// generations of at most size/2 entries each: when the current one fills up it becomes the
// old one and the previous old one is dropped; a hit in the old generation is moved forward.
// So recently used tokens stay, memory is bounded, and every operation is O(1).
type tokenCache struct {
	mu   sync.Mutex
	cur  map[uint64]*verdict
	old  map[uint64]*verdict
	half int
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	half := size / 2
	if half < 1 {
		half = 1
	}
	return &tokenCache{cur: make(map[uint64]*verdict, half), old: map[uint64]*verdict{}, half: half}
}

func (c *tokenCache) get(key uint64) *verdict {
	c.mu.Lock()
	v := c.cur[key]
	if v == nil {
		v = c.old[key]
		if v != nil {
			delete(c.old, key)
			c.putLocked(key, v)
		}
	}
	c.mu.Unlock()
	return v
}

func (c *tokenCache) put(key uint64, v *verdict) {
	c.mu.Lock()
	c.putLocked(key, v)
	c.mu.Unlock()
}

func (c *tokenCache) putLocked(key uint64, v *verdict) {
	if len(c.cur) >= c.half {
		c.old = c.cur
		c.cur = make(map[uint64]*verdict, c.half)
	}
	c.cur[key] = v
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	n := len(c.cur) + len(c.old)
	c.mu.Unlock()
	return n
}
