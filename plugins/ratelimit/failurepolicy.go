package ratelimit

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/pavilion-trust/gateway/plugins/resp"
)

// What happens when Redis does not answer a request's call (redisFailed), and how requests
// are answered while it is considered down (applyPolicy, after the breaker refused them a
// probe: decideUncached).

// redisFailed handles a Redis call that did not answer properly: err is its error, or
// errUnexpectedReply. probe tells whether the call was the breaker's probe.
func (l *rateLimit) redisFailed(rw http.ResponseWriter, req *http.Request, base string, set *limitSet, err error, probe bool) {
	if req.Context().Err() != nil {
		// The client went away (or Traefik gave up on it): not Redis' fault, nobody to answer.
		l.redisBreaker.release(probe)
		return
	}
	if err == resp.ErrClosed {
		// The configuration was replaced; requests still in flight get the policy.
		l.redisBreaker.release(probe)
		l.applyPolicy(rw, req, base, set)
		return
	}
	atomic.AddInt64(l.counters.redisErrors, 1)
	if err == resp.ErrPoolTimeout {
		// Every pooled connection stayed busy for the whole timeout: the gateway is
		// overloaded, Redis answered. Redis is not marked down, and the local fallback is not
		// used: its budget is this instance's own, so admitting from it under load would let
		// a client past the shared limit. The request is refused as overload (503,
		// Retry-After 1) unless failurePolicy is open. Raise redis.poolSize if this happens
		// under normal load.
		l.redisBreaker.release(probe)
		if l.failurePolicy == PolicyOpen {
			l.admit(rw, req, nil, reply{})
			return
		}
		unavailable(rw)
		return
	}
	if l.redisBreaker.fail(probe) {
		atomic.StoreInt64(l.counters.fallback, 1)
		l.log("redis_failover", "redis unavailable ("+err.Error()+"): failurePolicy "+l.failurePolicy+
			" until it answers; retrying with one request after 1s, then at doubling intervals up to 30s")
	}
	l.applyPolicy(rw, req, base, set)
}

// applyPolicy answers by failurePolicy: local counts the client (base) against set in
// memory, open lets the request pass without rate-limit fields, closed answers 503.
func (l *rateLimit) applyPolicy(rw http.ResponseWriter, req *http.Request, base string, set *limitSet) {
	if l.local != nil {
		d := l.local.allow(base, set, l.now())
		if !d.allowed {
			l.refuse(rw, req, set, d)
			return
		}
		l.admit(rw, req, set, reply{allowed: true, index: d.index,
			remaining: strconv.FormatInt(d.remaining, 10), reset: strconv.FormatInt(d.reset, 10)})
		return
	}
	if l.failurePolicy == PolicyClosed {
		unavailable(rw)
		return
	}
	l.admit(rw, req, nil, reply{})
}
