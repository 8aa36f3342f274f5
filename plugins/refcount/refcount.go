// Package refcount shares one value per key between the middlewares of an interpreter: the
// first user of a key makes the value, later users get the same one, and when the context of
// the last user ends (Traefik cancels the ctx given to New on the next configuration reload)
// the value is dropped and closed. The rate limiter shares its Redis pools this way, jwtauth
// its JWKS caches.
//
// Values are held as any and asserted back by the caller, not through a type parameter:
// plugin code runs under Yaegi (docs/yaegi.md).
package refcount

import (
	"context"
	"strings"
	"sync"
)

// Set holds the shared values of one kind, by key. Its zero value is not usable: see New.
type Set struct {
	mu      sync.Mutex
	entries map[string]*entry
	closeFn func(value any)
}

type entry struct {
	value any
	users int
}

// New returns an empty Set. closeFn (nil: nothing to close) is called once on each value,
// after its last user left, outside the Set's lock.
func New(closeFn func(value any)) *Set {
	return &Set{entries: map[string]*entry{}, closeFn: closeFn}
}

// Acquire returns the value held under key, made by create when the Set holds none, and
// counts the caller as one of its users until ctx ends; the last user's leaving drops the
// value and closes it. What a user does to the value for itself (jwtauth's metrics watch) it
// undoes on its own, e.g. with context.AfterFunc(ctx, …).
//
// create runs under the Set's lock: it must be quick, not block, and not call the Set. When
// it fails, nothing is held and its error is returned. A ctx already done is released at
// once (after the value was handed out).
func (s *Set) Acquire(ctx context.Context, key string, create func() (any, error)) (any, error) {
	s.mu.Lock()
	e := s.entries[key]
	if e == nil {
		v, err := create()
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		e = &entry{value: v}
		s.entries[key] = e
	}
	e.users++
	s.mu.Unlock()
	go s.release(ctx, key, e)
	return e.value, nil
}

// release waits for ctx to end and uncounts one user of e.
func (s *Set) release(ctx context.Context, key string, e *entry) {
	<-ctx.Done()
	s.mu.Lock()
	e.users--
	last := e.users == 0
	if last && s.entries[key] == e {
		delete(s.entries, key)
	}
	s.mu.Unlock()
	if last && s.closeFn != nil {
		s.closeFn(e.value)
	}
}

// Count reports how many values the Set holds under keys that start with prefix ("" for
// all), and how many users they have together.
func (s *Set) Count(prefix string) (values, users int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, e := range s.entries {
		if strings.HasPrefix(key, prefix) {
			values++
			users += e.users
		}
	}
	return values, users
}
