package ratelimit

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pavilion-trust/gateway/plugins/clientip"
	"github.com/pavilion-trust/gateway/plugins/metrics"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// rateLimit is the middleware. Everything it needs per request is prepared in New.
type rateLimit struct {
	next      http.Handler
	name      string
	s         *settings
	rdb       *resp.Client
	set       *limitSet
	overrides map[string]*limitSet // nil when there are none
	sources   []source
	header    string       // the first source's header, "" when it is "ip"
	trusted   []*net.IPNet // nil when there are none
	anonymous string       // key base of requests without a client value
	headers   bool
	brk       *breaker
	blocks    *blockList    // clients refused by Redis, until their retry time
	local     *localLimiter // failurePolicy local only
	now       func() time.Time
	logged    int64     // log lines written, for tests
	logTo     io.Writer // os.Stdout, beside Traefik's own log
	m         counters

	// The hot path's copies (see ServeHTTP): hot is set.keyed when the first source is a
	// header and there are no overrides, else nil; hdr holds the header values of set by
	// the reply's limit index digit.
	hot     *resp.Keyed
	down    *int32 // &brk.down
	slots   []int64
	sum     *int64
	allowed *int64
	hdr     []*hdrValues
}

// New validates the configuration and builds the middleware. It does not connect to Redis
// (the first request does), so a Redis outage never disables the router. The connection
// pool is closed when ctx ends (Traefik cancels it on the next configuration reload).
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil {
		return nil, fmt.Errorf("ratelimit %q: no configuration", name)
	}
	s, err := config.compile()
	if err != nil {
		return nil, fmt.Errorf("ratelimit %q: %w", name, err)
	}
	rdb, err := acquirePool(ctx, topologyHooks(s.redisOptions(), name))
	if err != nil {
		return nil, fmt.Errorf("ratelimit %q: redis: %w", name, err)
	}
	l, err := newHandlerWith(next, s, name, time.Now, rdb)
	if err != nil {
		return nil, fmt.Errorf("ratelimit %q: %w", name, err)
	}
	for _, w := range s.redisWarn {
		l.log("redis_insecure", w)
	}
	return l, nil
}

// redisOptions are the resp client options of the configuration.
func (s *settings) redisOptions() resp.Options {
	return s.redis
}

// newHandler builds a middleware with a pool of its own (tests).
func newHandler(next http.Handler, s *settings, name string, now func() time.Time) (*rateLimit, error) {
	rdb, err := resp.New(s.redisOptions())
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return newHandlerWith(next, s, name, now, rdb)
}

func newHandlerWith(next http.Handler, s *settings, name string, now func() time.Time, rdb *resp.Client) (*rateLimit, error) {
	script := resp.NewScript(scriptFor(s.algorithm))
	l := &rateLimit{
		next:      next,
		name:      name,
		s:         s,
		rdb:       rdb,
		set:       newLimitSet(s.limits, s.algorithm, script),
		sources:   s.sources,
		trusted:   s.trusted,
		anonymous: s.keyPrefix + ":{anon",
		headers:   s.headers,
		brk:       newBreaker(now),
		blocks:    newBlockList(),
		now:       now,
		logTo:     os.Stdout,
		m:         newCounters(name),
	}
	if len(s.overrides) > 0 {
		l.overrides = map[string]*limitSet{}
		for client, limits := range s.overrides {
			l.overrides[client] = newLimitSet(limits, s.algorithm, script)
		}
	}
	if !s.sources[0].ip {
		l.header = s.sources[0].header
	}
	if err := l.set.bind(rdb); err != nil {
		return nil, err
	}
	if l.header != "" && l.overrides == nil && s.redis.Topology() != "cluster" {
		l.hot = l.set.keyed
	}
	l.down = &l.brk.down
	l.slots = l.m.redisSlots
	l.sum = l.m.redisSum
	l.allowed = l.m.allowed
	l.hdr = l.set.byDigit()
	for _, o := range l.overrides {
		if err := o.bind(rdb); err != nil {
			return nil, err
		}
	}
	if s.failurePolicy == PolicyLocal {
		l.local = newLocalLimiter(s.localMaxClients)
	}
	return l, nil
}

func scriptFor(algorithm string) string {
	if algorithm == AlgorithmSlidingLog {
		return slidingLogScript
	}
	if algorithm == AlgorithmGCRA {
		return gcraScript
	}
	return slidingWindowScript
}

// ServeHTTP is the hot path, written for the interpreter: Yaegi allocates every local and
// temporary of a function on each call (taken branch or not), so this function holds only
// the common case (the first source is a header, present, whose Redis command is cached; no
// overrides; Redis up; request allowed) in as few expressions as possible; everything else
// is in other functions. Fields used here are copied flat into rateLimit in New (a selector
// chain costs one value per step).
func (l *rateLimit) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	vs := req.Header[l.header]
	if len(vs) == 0 || l.hot == nil || atomic.LoadInt32(l.down) != 0 {
		l.serveGeneral(rw, req)
		return
	}
	start := time.Now()
	status, err := resp.KeyedStatus(l.hot, req.Context(), vs[0], start)
	f := strings.Split(status, " ")
	if err != nil || len(f) != replyFields || f[0] != "1" || len(f[1]) != 1 {
		l.serveOther(rw, req, l.set, f, err, start.UnixNano())
		return
	}
	// Inlined Histogram.Observe: an interpreted call costs a frame.
	d := time.Since(start)
	atomic.AddInt64(&l.slots[bits.Len64(uint64(d))], 1)
	atomic.AddInt64(l.sum, int64(d))
	atomic.AddInt64(l.allowed, 1)
	if l.headers {
		hd := l.hdr[f[1][0]]
		h := rw.Header()
		h["X-Ratelimit-Limit"] = hd.limit
		h["X-Ratelimit-Remaining"] = f[2:3:3]
		h["X-Ratelimit-Reset"] = f[3:4:4]
		h["Ratelimit-Policy"] = hd.policy
		h["Ratelimit"] = f[5:6:6]
	}
	l.next.ServeHTTP(rw, req)
}

// serveSet is ServeHTTP for a header source with overrides: set is the client's limits.
func (l *rateLimit) serveSet(rw http.ResponseWriter, req *http.Request, set *limitSet, key string) {
	start := time.Now()
	status, err := resp.KeyedStatus(set.keyed, req.Context(), key, start)
	f := strings.Split(status, " ")
	if err != nil || len(f) != replyFields || len(f[1]) != 1 || f[0] != "1" {
		l.serveOther(rw, req, set, f, err, start.UnixNano())
		return
	}
	l.m.redisTime.ObserveSince(start.UnixNano())
	atomic.AddInt64(l.m.allowed, 1)
	if l.headers {
		set.writeHeaderStrings(rw.Header(), int(f[1][0]-'1'), f[2], f[3])
	}
	l.next.ServeHTTP(rw, req)
}

// serveOther finishes a request of the hot path that did not get an allowed reply: the
// command was not cached yet, Redis failed, or refused.
func (l *rateLimit) serveOther(rw http.ResponseWriter, req *http.Request, set *limitSet, f []string, err error, start int64) {
	if err == resp.ErrNotCached {
		l.serveClient(rw, req, l.cacheKey(req))
		return
	}
	l.m.redisTime.ObserveSince(start)
	base, _ := l.client(req)
	l.serveReply(rw, req, base, set, f, err, false)
}

// serveGeneral serves any request: every source, the degraded modes.
func (l *rateLimit) serveGeneral(rw http.ResponseWriter, req *http.Request) {
	key := l.cacheKey(req)
	if key != "" && l.overrides != nil && atomic.LoadInt32(&l.brk.down) == 0 {
		l.serveSet(rw, req, l.overrideFor(key), key)
		return
	}
	l.serveClient(rw, req, key)
}

// serveClient is serveGeneral without a cached command to try; key is cacheKey's.
func (l *rateLimit) serveClient(rw http.ResponseWriter, req *http.Request, key string) {
	base, value := l.client(req)
	set := l.set
	if l.overrides != nil {
		set = l.overrideFor(value)
	}
	if d, ok := l.blocks.check(base, l.now()); ok {
		// Refused by Redis a moment ago and its retry time has not come: Redis would refuse
		// again, so it is not asked.
		atomic.AddInt64(l.m.fromMemory, 1)
		l.refuse(rw, req, set, d)
		return
	}
	if atomic.LoadInt32(&l.brk.down) != 0 {
		l.serveDegraded(rw, req, base, set)
		return
	}
	start := time.Now().UnixNano()
	status, err := set.keyed.StatusFor(req.Context(), key, base)
	l.m.redisTime.ObserveSince(start)
	l.serveReply(rw, req, base, set, strings.Split(status, " "), err, false)
}

// cacheKey is the key of the request's command in the Keyed cache: the first source's value
// when it is a header, which the hot path reads; "" (not cached) otherwise.
func (l *rateLimit) cacheKey(req *http.Request) string {
	vs := req.Header[l.header]
	if l.header == "" || len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// serveReply answers from the fields of the script's reply (or its error).
func (l *rateLimit) serveReply(rw http.ResponseWriter, req *http.Request, base string, set *limitSet, f []string, err error, probe bool) {
	if err != nil || len(f) != replyFields || len(f[1]) != 1 {
		l.serveFailure(rw, req, base, set, err, probe)
		return
	}
	if probe && l.brk.succeed() {
		atomic.StoreInt64(l.m.fallback, 0)
		l.log("redis_recovered", "redis answers again: limits are counted in redis")
	}
	if f[0] != "1" {
		l.serveRefused(rw, req, base, set, f)
		return
	}
	atomic.AddInt64(l.m.allowed, 1)
	if l.headers {
		set.writeHeaderStrings(rw.Header(), int(f[1][0]-'1'), f[2], f[3])
	}
	l.next.ServeHTTP(rw, req)
}

// client returns the key base of the request's client ("<prefix>:{<source>=<value>") and the
// value as its source produced it ("" for the anonymous budget).
func (l *rateLimit) client(req *http.Request) (string, string) {
	for i := 0; i < len(l.sources); i++ {
		src := &l.sources[i]
		v := ""
		if src.ip {
			if l.trusted == nil {
				v = clientip.Peer(req)
			} else {
				v = clientip.Forwarded(req, l.trusted)
			}
		} else {
			vs := req.Header[src.header]
			if len(vs) > 0 {
				v = vs[0]
			}
		}
		if v != "" {
			if len(v) <= maxRawClient && v[0] != '#' && !strings.ContainsAny(v, "{}") {
				return src.tag + v, v
			}
			return src.tag + hashClient(v), v
		}
	}
	return l.anonymous, ""
}

// overrideFor returns the client's own limits, or the default ones.
func (l *rateLimit) overrideFor(value string) *limitSet {
	o := l.overrides[value]
	if o == nil || value == "" {
		return l.set
	}
	return o
}

// serveRefused answers a refusal from Redis, and remembers the client (base) as refused until
// its retry time: until then its requests are refused without asking Redis (serveClient;
// the cached command is dropped so that the hot path leads there).
func (l *rateLimit) serveRefused(rw http.ResponseWriter, req *http.Request, base string, set *limitSet, f []string) {
	index, _ := strconv.Atoi(f[1])
	remaining, _ := strconv.ParseInt(f[2], 10, 64)
	reset, _ := strconv.ParseInt(f[3], 10, 64)
	retry, _ := strconv.ParseInt(f[4], 10, 64)
	retryMS, _ := strconv.ParseInt(f[6], 10, 64)
	d := decision{index: index - 1, remaining: remaining, reset: reset, retry: retry}
	if retryMS > 0 {
		l.blocks.add(base, d, retryMS, l.now())
		if key := l.cacheKey(req); key != "" {
			set.keyed.Forget(key)
		}
	}
	l.refuse(rw, req, set, d)
}

// serveDegraded serves a request while Redis is considered down: one request at a time,
// once the backoff has passed, tries Redis; the others get the failure policy.
func (l *rateLimit) serveDegraded(rw http.ResponseWriter, req *http.Request, base string, set *limitSet) {
	if !l.brk.tryProbe() {
		l.servePolicy(rw, req, base, set)
		return
	}
	start := time.Now().UnixNano()
	status, err := set.keyed.StatusFor(req.Context(), "", base)
	l.m.redisTime.ObserveSince(start)
	l.serveReply(rw, req, base, set, strings.Split(status, " "), err, true)
}

// serveFailure handles a Redis call that did not answer properly.
func (l *rateLimit) serveFailure(rw http.ResponseWriter, req *http.Request, base string, set *limitSet, err error, probe bool) {
	if req.Context().Err() != nil {
		// The client went away (or Traefik gave up on it): not Redis' fault, nobody to answer.
		l.brk.release(probe)
		return
	}
	if err == resp.ErrClosed {
		// The configuration was replaced; requests still in flight get the policy.
		l.brk.release(probe)
		l.servePolicy(rw, req, base, set)
		return
	}
	atomic.AddInt64(l.m.redisErrors, 1)
	if err == resp.ErrPoolTimeout {
		// Every pooled connection stayed busy for the whole timeout: the gateway is
		// overloaded, Redis answered. Redis is not marked down, and the local fallback is not
		// used: its budget is this instance's own, so admitting from it under load would let
		// a client past the shared limit. The request is refused as overload (503,
		// Retry-After 1) unless failurePolicy is open. Raise redis.poolSize if this happens
		// under normal load.
		l.brk.release(probe)
		if l.s.failurePolicy == PolicyOpen {
			atomic.AddInt64(l.m.allowed, 1)
			l.next.ServeHTTP(rw, req)
			return
		}
		unavailable(rw)
		return
	}
	if err == nil {
		err = fmt.Errorf("unexpected script reply")
	}
	if l.brk.fail(probe) {
		atomic.StoreInt64(l.m.fallback, 1)
		l.log("redis_failover", "redis unavailable ("+err.Error()+"): failurePolicy "+l.s.failurePolicy+
			" until it answers; retrying with one request after 1s, then at doubling intervals up to 30s")
	}
	l.servePolicy(rw, req, base, set)
}

// servePolicy applies failurePolicy.
func (l *rateLimit) servePolicy(rw http.ResponseWriter, req *http.Request, base string, set *limitSet) {
	if l.local != nil {
		d := l.local.allow(base, set, l.now())
		if !d.allowed {
			l.refuse(rw, req, set, d)
			return
		}
		atomic.AddInt64(l.m.allowed, 1)
		if l.headers {
			set.writeHeaders(rw.Header(), d.index, d.remaining, d.reset)
		}
		l.next.ServeHTTP(rw, req)
		return
	}
	if l.s.failurePolicy == PolicyClosed {
		unavailable(rw)
		return
	}
	atomic.AddInt64(l.m.allowed, 1)
	l.next.ServeHTTP(rw, req)
}

// log writes one JSON line to stdout, beside Traefik's log: "warn" for redis_failover (the
// failure policy decides until Redis answers), else "info". Never pass a client key.
func (l *rateLimit) log(event, msg string) {
	atomic.AddInt64(&l.logged, 1)
	level := "info"
	if event == "redis_failover" {
		level = "warn"
	}
	metrics.Log(l.logTo, map[string]any{
		"level":          level,
		"message":        msg,
		"middlewareName": l.name,
		"component":      "ratelimit",
		"event":          event,
	})
}
