package ratelimit

import (
	"sync"
	"time"
)

// maxBlocked bounds the clients remembered as refused (see blockList).
const maxBlocked = 65536

// blockList remembers, per gateway instance, the clients that Redis refused and until when
// no request of theirs can pass, so that a client over its limit is refused in memory, without
// a Redis round trip, until its retry time. It never admits what Redis would refuse: Redis
// computed the retry time from the shared state, refused requests are counted by no limit,
// and requests of other instances only push the time later. The local deadline starts when
// the reply arrives, a little after Redis' clock read, and the retry time is rounded up to a
// millisecond: a block may end a millisecond or two after Redis would admit again. It is bounded: when full, expired entries are dropped, and
// if none has expired the list is emptied (those clients then ask Redis again).
type blockList struct {
	mu      sync.Mutex
	clients map[string]blocked // by key base
}

// blocked is one refused client: until when (unix ns) a retry cannot pass, when its most
// restrictive limit is fully back, and which limit it is.
type blocked struct {
	until, reset int64
	index        int
}

func newBlockList() *blockList { return &blockList{clients: map[string]blocked{}} }

// add remembers base as refused by d, decided at now.
func (b *blockList) add(base string, d decision, retryMS int64, now time.Time) {
	t := now.UnixNano()
	e := blocked{until: t + retryMS*int64(time.Millisecond), reset: t + d.reset*int64(time.Second), index: d.index}
	b.mu.Lock()
	if len(b.clients) >= maxBlocked {
		for k, v := range b.clients {
			if v.until <= t {
				delete(b.clients, k)
			}
		}
		if len(b.clients) >= maxBlocked {
			b.clients = map[string]blocked{}
		}
	}
	b.clients[base] = e
	b.mu.Unlock()
}

// check returns the refusal of base at now, if it is still blocked.
func (b *blockList) check(base string, now time.Time) (decision, bool) {
	b.mu.Lock()
	e, ok := b.clients[base]
	b.mu.Unlock()
	t := now.UnixNano()
	if !ok || e.until <= t {
		return decision{}, false
	}
	second := int64(time.Second)
	return decision{
		index: e.index,
		reset: (e.reset - t + second - 1) / second,
		retry: (e.until - t + second - 1) / second,
	}, true
}
