package jwtauth

import (
	"context"
	"sync"

	"github.com/pavilion-trust/gateway/plugins/refcount"
)

// Middlewares with the same key source share one JWKS cache (one refresher, one set of
// fetches) within an interpreter: the routers × entry points that use one middleware, and
// the instances Traefik builds on each configuration reload. A shared cache lives while at
// least one middleware that uses it is alive (its New context not done); when the last one
// leaves, its refresher stops.
var keySets = refcount.New(stopKeys)

// sharedKeys is a JWKS cache and its refresher.
type sharedKeys struct {
	cache  *jwksCache
	runCtx context.Context // the refresher's; cancelled when the last user left
	cancel context.CancelFunc
	start  sync.Once
}

func stopKeys(v any) {
	v.(*sharedKeys).cancel()
}

// keySetKey identifies a key source. It starts with the issuer and "\x00" (tests count the
// users of an issuer by that prefix).
func keySetKey(s *settings) string {
	return s.issuer + "\x00" + s.jwksURL + "\x00" + s.fetchTimeout.String() + "\x00" +
		s.minRefresh.String() + "\x00" + s.refresh.String() + "\x00" + s.caSum
}

// acquireKeys returns the JWKS cache for s, creating and starting it when needed, and
// releases it when ctx ends.
func acquireKeys(ctx context.Context, s *settings, log func(string), name string) *jwksCache {
	v, _ := keySets.Acquire(ctx, keySetKey(s), func() (any, error) { return newSharedKeys(s, log), nil })
	e := v.(*sharedKeys)
	e.cache.watch(name)
	// Undone when this middleware leaves (in no set order with the release of the cache: unwatch
	// on a cache whose refresher stopped only drops the series).
	context.AfterFunc(ctx, func() { e.cache.unwatch(name) })
	// The refresher starts with the first live user (a New whose context already ended, as in
	// a configuration check, fetches nothing).
	if ctx.Err() == nil {
		e.start.Do(func() { go e.cache.run(e.runCtx) })
	}
	return e.cache
}

func newSharedKeys(s *settings, log func(string)) *sharedKeys {
	runCtx, cancel := context.WithCancel(context.Background())
	return &sharedKeys{cache: newJWKSCache(s, log), runCtx: runCtx, cancel: cancel}
}
