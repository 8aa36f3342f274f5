package jwtauth

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// jwtAuth is the middleware. Everything it needs per request is prepared in New.
type jwtAuth struct {
	next    http.Handler
	name    string
	s       *settings
	keys    *jwksCache
	cache   *tokenCache
	refused *tokenCache    // verdicts of refused tokens (lasting rejections only), see verdictFor
	fails   *failureBudget // failedAuth; nil when off
	// Copies of settings read on every request (a selector chain costs one value per step
	// under the interpreter).
	maxHeaders  int
	strip       map[string]bool
	stripPrefix map[string]bool
	// spentVerdict answers a client that has spent its failedAuth budget.
	spentVerdict *verdict
	seed         maphash.Seed
	methods      map[string]*signatureMethod // the allow-listed algorithms
	rej          rejections
	now          func() time.Time
	m            counters
	logTo        io.Writer // os.Stdout, beside Traefik's own log
}

// New validates the configuration and builds the middleware. The JWKS is fetched in the
// background until ctx ends (Traefik cancels it on the next configuration reload).
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil {
		return nil, fmt.Errorf("jwtauth %q: no configuration", name)
	}
	s, err := config.compile()
	if err != nil {
		return nil, fmt.Errorf("jwtauth %q: %w", name, err)
	}
	return newHandler(ctx, next, s, name), nil
}

func newHandler(ctx context.Context, next http.Handler, s *settings, name string) *jwtAuth {
	return newHandlerTo(ctx, next, s, name, os.Stdout)
}

// newHandlerTo builds the middleware with its operator log written to logTo.
func newHandlerTo(ctx context.Context, next http.Handler, s *settings, name string, logTo io.Writer) *jwtAuth {
	a := &jwtAuth{
		next:    next,
		name:    name,
		s:       s,
		cache:   newTokenCache(s.cacheSize),
		refused: newTokenCache(refusedCacheSize(s.cacheSize)),
		fails:   newFailureBudget(s),
		seed:    maphash.MakeSeed(),
		methods: map[string]*signatureMethod{},
		rej:     newRejections(s),
		now:     time.Now,
		logTo:   logTo,
	}
	a.m = newCounters(name, &a.rej)
	a.spentVerdict = &verdict{reject: a.rej.tooManyFailures}
	a.maxHeaders = s.maxHeaders
	a.strip = s.strip
	a.stripPrefix = s.stripPrefix
	for _, alg := range s.algorithms {
		a.methods[alg] = signatureMethods[alg]
	}
	a.keys = acquireKeys(ctx, s, a.log, name)
	return a
}

// ServeHTTP is the hot path, written for the interpreter: Yaegi allocates every local and
// temporary of a function on each call, so this function holds only the common case (one
// "Bearer" header, a cached verdict); everything else is in serveSlow and verdictFor.
func (a *jwtAuth) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	h := req.Header
	if len(h) > a.maxHeaders {
		a.serveTooManyHeaders(rw, req)
		return
	}
	for name := range h {
		if a.strip[name] || len(name) > 6 && name[0] == 'X' && a.stripPrefix[name[:7]] {
			delete(h, name)
		}
	}
	values := h["Authorization"]
	if len(values) != 1 || !strings.HasPrefix(values[0], "Bearer ") || a.cache == nil {
		a.serveSlow(rw, req)
		return
	}
	token := values[0][7:]
	key := maphash.String(a.seed, token)
	// Inlined tokenCache.get (current generation only) and jwksCache.generation: each
	// interpreted call costs a frame.
	a.cache.mu.Lock()
	v := a.cache.cur[key]
	a.cache.mu.Unlock()
	if v == nil || v.token != token || v.exp <= a.now().Unix() || v.gen != atomic.LoadInt64(&a.keys.gen) {
		v = a.checkedVerdict(req, token)
	} else {
		atomic.AddInt64(a.m.hits, 1)
	}
	if v.reject != nil {
		a.refuse(rw, req, v.reject)
		return
	}
	atomic.AddInt64(a.m.ok, 1)
	for i, name := range v.names {
		h[name] = v.vals[i]
	}
	if !a.s.forwardToken {
		a.removeToken(req)
	}
	a.next.ServeHTTP(rw, req)
}

// serveTooManyHeaders refuses a request with more header names than maxHeaders (431).
func (a *jwtAuth) serveTooManyHeaders(rw http.ResponseWriter, req *http.Request) {
	a.refuse(rw, req, a.rej.tooManyHeaders)
}

// serveSlow handles everything but a single "Bearer" Authorization header: other spellings
// of the scheme, cookies, no token, several headers, and a disabled cache.
func (a *jwtAuth) serveSlow(rw http.ResponseWriter, req *http.Request) {
	token, rej := a.extract(req)
	if rej != nil {
		a.refuse(rw, req, rej)
		return
	}
	if token == "" {
		if !a.s.optional {
			a.refuse(rw, req, a.rej.missing)
			return
		}
		atomic.AddInt64(a.m.anonymous, 1)
		if !a.s.forwardToken {
			a.removeToken(req)
		}
		a.next.ServeHTTP(rw, req)
		return
	}
	v := a.checkedVerdict(req, token)
	if v.reject != nil {
		a.refuse(rw, req, v.reject)
		return
	}
	atomic.AddInt64(a.m.ok, 1)
	for i, name := range v.names {
		req.Header[name] = v.vals[i]
	}
	if !a.s.forwardToken {
		a.removeToken(req)
	}
	a.next.ServeHTTP(rw, req)
}

// removeToken removes the Authorization header and the token cookie (forwardToken: false).
func (a *jwtAuth) removeToken(req *http.Request) {
	delete(req.Header, "Authorization")
	if a.s.cookie != "" {
		removeCookie(req.Header, a.s.cookie)
	}
}

// checkedVerdict is verdictFor for a request whose client address may have spent its
// failedAuth budget: then the answer is 429, and the token is not looked at.
func (a *jwtAuth) checkedVerdict(req *http.Request, token string) *verdict {
	if a.fails != nil && a.fails.spent(req, a.now()) > 0 {
		return a.spentVerdict
	}
	return a.verdictFor(token)
}

// verdictFor answers from the cache (either generation) when it can, else verifies the
// token. A cached verdict is used only for the very same token, before its exp, and against
// the same key set. A refused token whose answer cannot change while the key set stays the
// same (bad signature, expired, wrong issuer or audience, malformed…) is remembered in a
// cache of its own, bounded apart from the verified tokens so that a flood of forged tokens
// never evicts them: a repeated forged token costs a lookup, not a signature check.
func (a *jwtAuth) verdictFor(token string) *verdict {
	// The hot path hands over what follows "Bearer " as it is: one rule for every spelling of
	// the scheme (see extract), so the spaces around the token are dropped here too.
	token = strings.Trim(token, bearerSpace)
	if len(token) > maxTokenBytes {
		return &verdict{reject: a.rej.malformed}
	}
	if a.cache == nil {
		return a.verify(token)
	}
	key := maphash.String(a.seed, token)
	now := a.now().Unix()
	gen := a.keys.generation()
	v := a.cache.get(key)
	if v == nil {
		v = a.refused.get(key)
	}
	if v != nil && v.token == token && now < v.exp && v.gen == gen {
		atomic.AddInt64(a.m.hits, 1)
		return v
	}
	atomic.AddInt64(a.m.misses, 1)
	v = a.verify(token)
	if v.reject == nil || v.reject.status == http.StatusForbidden {
		if v.exp > now {
			a.cache.put(key, v)
		}
		return v
	}
	if v.reject.lasting && len(token) <= maxRefusedTokenBytes {
		// verify's early refusals carry neither the token nor the generation: this verdict
		// is the request's own, so it can be completed here.
		v.token = token
		v.exp = now + int64(negativeTTL/time.Second)
		v.gen = gen
		a.refused.put(key, v)
	}
	return v
}

// Bounds of the refused-token cache: its entries hold the token (a hit must match it
// exactly), so they are few and short; an entry lives negativeTTL at most, and is dropped
// with the key set it was checked against.
const (
	maxRefusedTokens     = 4096
	maxRefusedTokenBytes = 4 << 10
	negativeTTL          = 5 * time.Minute
)

// refusedCacheSize is the refused-token cache's size: the verified-token cache's, at most
// maxRefusedTokens; 0 (no cache) with it.
func refusedCacheSize(cacheSize int) int {
	if cacheSize > maxRefusedTokens {
		return maxRefusedTokens
	}
	return cacheSize
}

// bearerSpace is what may surround the token: "Bearer" in any letter case, then one or more
// spaces (RFC 7235 1*SP), the token, optional white space (RFC 9110 OWS).
const bearerSpace = " \t"

// extract returns the bearer token from the Authorization header or, failing that, the
// configured cookie. Another scheme counts as no token.
func (a *jwtAuth) extract(req *http.Request) (string, *rejection) {
	values := req.Header["Authorization"]
	token := ""
	if len(values) > 1 {
		return "", a.rej.multipleAuth
	}
	if len(values) == 1 {
		v := values[0]
		if len(v) > 7 && (strings.HasPrefix(v, "Bearer ") || strings.EqualFold(v[:7], "bearer ")) {
			token = strings.Trim(v[7:], bearerSpace)
			if token == "" {
				return "", a.rej.malformed
			}
		} else if strings.EqualFold(strings.TrimSpace(v), "bearer") {
			return "", a.rej.malformed
		}
	}
	if token == "" && a.s.cookie != "" {
		if c, err := req.Cookie(a.s.cookie); err == nil {
			token = c.Value
		}
	}
	if len(token) > maxTokenBytes {
		return "", a.rej.malformed
	}
	return token, nil
}

// removeCookie removes the named cookie from the raw Cookie headers, leaving every other
// cookie byte for byte as the client sent it.
func removeCookie(h http.Header, name string) {
	values := h["Cookie"]
	if len(values) == 0 {
		return
	}
	var kept []string
	for _, line := range values {
		parts := strings.Split(line, ";")
		out := parts[:0]
		for _, p := range parts {
			n := strings.TrimSpace(p)
			if i := strings.IndexByte(n, '='); i >= 0 {
				n = n[:i]
			}
			if n != name && strings.TrimSpace(p) != "" {
				out = append(out, strings.TrimSpace(p))
			}
		}
		if len(out) > 0 {
			kept = append(kept, strings.Join(out, "; "))
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// log writes one JSON line about the JWKS to stdout, beside Traefik's own log.
func (a *jwtAuth) log(msg string) {
	logJWKS(a.logTo, a.name, msg)
}
