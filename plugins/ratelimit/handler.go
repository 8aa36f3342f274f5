package ratelimit

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pavilion-trust/gateway/plugins/clientip"
	"github.com/pavilion-trust/gateway/plugins/metrics"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// A request's decision, in this file: ServeHTTP (the common case, inlined) or decide →
// decideUncached; then answer: admit, refusedByRedis, or the failure policy (failurepolicy.go).
// Redis is one call per request (resp.KeyedStatus or limitStore.StatusFor), which retries
// once by itself (resp/evalstatus.go).

// rateLimit is the middleware. Everything it needs per request is prepared in New.
type rateLimit struct {
	next          http.Handler
	name          string
	failurePolicy string
	set           *limitSet
	overrides     map[string]*limitSet // nil when there are none
	sources       []source
	header        string       // the first source's header, "" when it is "ip"
	trusted       []*net.IPNet // nil when there are none
	anonymous     string       // key base of requests without a client value
	headers       bool
	redisBreaker  *breaker
	blocks        *blockList    // clients refused by Redis, until their retry time
	local         *localLimiter // failurePolicy local only
	now           func() time.Time
	logTo         io.Writer // os.Stdout, beside Traefik's own log
	counters      counters

	// ServeHTTP's copies, made in New (under Yaegi a selector chain costs one value per step).
	hotKeyed       *resp.Keyed     // set.keyed when ServeHTTP may use it (a header source first, no overrides, not a cluster), else nil
	redisDown      *int32          // &redisBreaker.down
	redisTimeSlots []int64         // counters.redisTime.Slots
	redisTimeSum   *int64          // &counters.redisTime.Sum
	allowedCount   *int64          // counters.allowed
	headersByDigit []*limitHeaders // set's header values by the reply's limit digit
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
	l, err := newRateLimit(next, s, name, time.Now, rdb)
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

// newRateLimit builds the middleware on the client rdb.
func newRateLimit(next http.Handler, s *settings, name string, now func() time.Time, rdb *resp.Client) (*rateLimit, error) {
	script := resp.NewScript(scriptFor(s.algorithm))
	l := &rateLimit{
		next:          next,
		name:          name,
		failurePolicy: s.failurePolicy,
		set:           newLimitSet(s.limits, s.algorithm, script),
		sources:       s.sources,
		trusted:       s.trusted,
		anonymous:     s.keyPrefix + ":{anon",
		headers:       s.headers,
		redisBreaker:  newBreaker(now),
		blocks:        newBlockList(),
		now:           now,
		logTo:         os.Stdout,
		counters:      newCounters(name),
	}
	if err := l.set.bind(rdb); err != nil {
		return nil, err
	}
	if len(s.overrides) > 0 {
		l.overrides = map[string]*limitSet{}
		for client, limits := range s.overrides {
			o := newLimitSet(limits, s.algorithm, script)
			if err := o.bind(rdb); err != nil {
				return nil, err
			}
			l.overrides[client] = o
		}
	}
	if s.failurePolicy == PolicyLocal {
		l.local = newLocalLimiter(s.localMaxClients)
	}
	if !s.sources[0].ip {
		l.header = s.sources[0].header
	}
	if l.header != "" && l.overrides == nil && s.redis.Topology() != "cluster" {
		l.hotKeyed = l.set.keyed
	}
	l.redisDown = &l.redisBreaker.down
	l.redisTimeSlots = l.counters.redisSlots
	l.redisTimeSum = l.counters.redisSum
	l.allowedCount = l.counters.allowed
	l.headersByDigit = l.set.headersByDigit()
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

// ServeHTTP holds only the common case: the first source is a header, present, whose Redis
// command is cached; no overrides; Redis up; request allowed. Everything else is decide's
// (the rest of the file reads in order from there).
func (l *rateLimit) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	vs := req.Header[l.header]
	if len(vs) == 0 || l.hotKeyed == nil || atomic.LoadInt32(l.redisDown) != 0 {
		l.decide(rw, req)
		return
	}
	start := time.Now()
	status, err := resp.KeyedStatus(req.Context(), l.hotKeyed, vs[0], start)
	fields := strings.Split(status, " ")
	if err != nil || len(fields) != replyFields || fields[fieldAllowed] != "1" || len(fields[fieldIndex]) != 1 {
		l.afterCached(rw, req, l.set, fields, err, start.UnixNano())
		return
	}
	// redisTime.Observe and admit, inlined: Yaegi allocates every call's frame and locals
	// (docs/yaegi.md, "Cost model").
	elapsed := time.Since(start)
	atomic.AddInt64(&l.redisTimeSlots[bits.Len64(uint64(elapsed))], 1)
	atomic.AddInt64(l.redisTimeSum, int64(elapsed))
	atomic.AddInt64(l.allowedCount, 1)
	if l.headers {
		constant := l.headersByDigit[fields[fieldIndex][0]]
		h := rw.Header()
		h["X-Ratelimit-Limit"] = constant.limit
		h["X-Ratelimit-Remaining"] = fields[fieldRemaining:fieldReset:fieldReset]
		h["X-Ratelimit-Reset"] = fields[fieldReset:fieldRetry:fieldRetry]
		h["Ratelimit-Policy"] = constant.policy
		h["Ratelimit"] = fields[fieldItem:fieldRetryMS:fieldRetryMS]
	}
	l.next.ServeHTTP(rw, req)
}

// decide serves every request ServeHTTP does not finish. A client with its own limits
// (overrides) whose command is cached gets what ServeHTTP does, with those limits.
func (l *rateLimit) decide(rw http.ResponseWriter, req *http.Request) {
	key := l.cacheKey(req)
	if key != "" && l.overrides != nil && atomic.LoadInt32(l.redisDown) == 0 {
		set := l.overrideFor(key)
		if set.keyed != nil {
			start := time.Now()
			status, err := resp.KeyedStatus(req.Context(), set.keyed, key, start)
			l.afterCached(rw, req, set, strings.Split(status, " "), err, start.UnixNano())
			return
		}
	}
	l.decideUncached(rw, req, key)
}

// afterCached finishes a request whose cached command ran (resp.KeyedStatus) without an
// allowed reply read by ServeHTTP: fields (the reply split at its spaces) and err are the
// command's answer, start the clock read before it (unix ns).
func (l *rateLimit) afterCached(rw http.ResponseWriter, req *http.Request, set *limitSet, fields []string, err error, start int64) {
	if err == resp.ErrNotCached {
		// Nothing was sent: a new client, or one refused a moment ago (refusedByRedis).
		l.decideUncached(rw, req, l.cacheKey(req))
		return
	}
	l.counters.redisTime.ObserveSince(start)
	r, failure := parseReply(fields, err)
	if failure == nil && r.allowed {
		l.admit(rw, req, set, r)
		return
	}
	base, _ := l.client(req)
	l.answer(rw, req, base, set, r, failure, false)
}

// decideUncached is the decision in full: who the client is and its limits; refused by Redis
// a moment ago; Redis considered down; else one Redis call, whose command is cached under key
// (cacheKey's, "" for none) for the next request of the client.
func (l *rateLimit) decideUncached(rw http.ResponseWriter, req *http.Request, key string) {
	base, value := l.client(req)
	set := l.overrideFor(value)
	if d, ok := l.blocks.check(base, l.now()); ok {
		// Refused by Redis a moment ago and its retry time has not come: Redis would refuse
		// again, so it is not asked.
		atomic.AddInt64(l.counters.fromMemory, 1)
		l.refuse(rw, req, set, d)
		return
	}
	probe := false
	if l.redisBreaker.isDown() {
		// One request at a time, once the backoff has passed, tries Redis (the probe, not
		// cached); the others get the failure policy.
		if !l.redisBreaker.tryProbe() {
			l.applyPolicy(rw, req, base, set)
			return
		}
		probe = true
		key = ""
	}
	start := time.Now().UnixNano()
	status, err := set.store.StatusFor(req.Context(), key, base)
	l.counters.redisTime.ObserveSince(start)
	r, failure := parseReply(strings.Split(status, " "), err)
	l.answer(rw, req, base, set, r, failure, probe)
}

// answer decides from the script's reply r, or from the failure of the Redis call (then the
// failure policy). probe tells whether the call was the breaker's probe.
func (l *rateLimit) answer(rw http.ResponseWriter, req *http.Request, base string, set *limitSet, r reply, failure error, probe bool) {
	if failure != nil {
		l.redisFailed(rw, req, base, set, failure, probe)
		return
	}
	if probe && l.redisBreaker.succeed() {
		atomic.StoreInt64(l.counters.fallback, 0)
		l.log("redis_recovered", "redis answers again: limits are counted in redis")
	}
	if !r.allowed {
		l.refusedByRedis(rw, req, base, set, r)
		return
	}
	l.admit(rw, req, set, r)
}

// admit is the one exit of an allowed request (ServeHTTP has its own inlined copy): it is
// counted, gets the rate-limit fields of r's limit when enabled, and goes on. set is nil when
// no limit was counted (failurePolicy open): no fields then.
func (l *rateLimit) admit(rw http.ResponseWriter, req *http.Request, set *limitSet, r reply) {
	atomic.AddInt64(l.counters.allowed, 1)
	if l.headers && set != nil {
		set.writeHeaderStrings(rw.Header(), r.index, r.remaining, r.reset)
	}
	l.next.ServeHTTP(rw, req)
}

// refusedByRedis answers a refusal from Redis, and remembers the client (base) as refused
// until its retry time: until then its requests are refused without asking Redis
// (decideUncached; the cached command is dropped so that ServeHTTP and decide lead there).
func (l *rateLimit) refusedByRedis(rw http.ResponseWriter, req *http.Request, base string, set *limitSet, r reply) {
	d := r.refusal()
	if r.retryMS > 0 {
		l.blocks.add(base, d, r.retryMS, l.now())
		if key := l.cacheKey(req); key != "" {
			set.store.Forget(key)
		}
	}
	l.refuse(rw, req, set, d)
}

// cacheKey is the key of the request's command in the Keyed cache: the first source's value
// when it is a header, which ServeHTTP reads; "" (not cached) otherwise.
func (l *rateLimit) cacheKey(req *http.Request) string {
	vs := req.Header[l.header]
	if l.header == "" || len(vs) == 0 {
		return ""
	}
	return vs[0]
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

// log writes one JSON line to stdout, beside Traefik's log: "warn" for redis_failover (the
// failure policy decides until Redis answers), else "info". Never pass a client key.
func (l *rateLimit) log(event, msg string) {
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
