package jwtauth

import (
	"context"
	"strings"
	"sync"
)

// Middlewares with the same key source share one JWKS cache (one refresher, one set of
// fetches) within an interpreter: the routers × entry points that use one middleware, and
// the instances Traefik builds on each configuration reload. A shared cache lives while at
// least one middleware that uses it is alive (its New context not done).
var shared = struct {
	mu      sync.Mutex
	entries map[string]*sharedKeys
}{entries: map[string]*sharedKeys{}}

type sharedKeys struct {
	runCtx  context.Context
	running bool
	cache   *jwksCache
	users   int
	cancel  context.CancelFunc
}

// acquireKeys returns the JWKS cache for s, creating and starting it when needed, and
// releases it when ctx ends.
func acquireKeys(ctx context.Context, s *settings, log func(string), name string) *jwksCache {
	key := s.issuer + "\x00" + s.jwksURL + "\x00" + s.fetchTimeout.String() + "\x00" +
		s.minRefresh.String() + "\x00" + s.refresh.String() + "\x00" + s.caSum
	shared.mu.Lock()
	e := shared.entries[key]
	if e == nil {
		runCtx, cancel := context.WithCancel(context.Background())
		e = &sharedKeys{cache: newJWKSCache(s, log), cancel: cancel, runCtx: runCtx}
		shared.entries[key] = e
	}
	e.cache.watch(name)
	// The refresher starts with the first live user (a New whose context already ended, as in
	// a configuration check, fetches nothing).
	if !e.running && ctx.Err() == nil {
		e.running = true
		go e.cache.run(e.runCtx)
	}
	e.users++
	shared.mu.Unlock()
	go release(ctx, key, e, name)
	return e.cache
}

func release(ctx context.Context, key string, e *sharedKeys, name string) {
	<-ctx.Done()
	e.cache.unwatch(name)
	shared.mu.Lock()
	e.users--
	if e.users == 0 {
		e.cancel()
		delete(shared.entries, key)
	}
	shared.mu.Unlock()
}

// sharedUsers reports how many middlewares use the shared cache of issuer (for tests).
func sharedUsers(issuer string) int {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	n := 0
	for key, e := range shared.entries {
		if strings.HasPrefix(key, issuer+"\x00") {
			n += e.users
		}
	}
	return n
}
