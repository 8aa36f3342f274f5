package ratelimit

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pavilion-trust/gateway/plugins/metrics"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// Metric names (see plugins/metrics). Every series has the label middleware.
const (
	metricDecisions       = "pavilion_ratelimit_decisions_total"
	metricRedisErrors     = "pavilion_ratelimit_redis_errors_total"
	metricRedisTime       = "pavilion_ratelimit_redis_duration_seconds"
	metricFallback        = "pavilion_ratelimit_fallback_active"
	metricRefusedInMemory = "pavilion_ratelimit_refused_in_memory_total"
)

// The Redis time histogram has buckets up to 2^17 ns (131µs), 2^19 (524µs), … 2^27 ns
// (134ms), then +Inf: a healthy local Redis answers well under a millisecond, and
// redis.timeout defaults to 100ms.
const (
	redisBucketFirst = 17
	redisBuckets     = 11
)

// limitedLogPerSecond bounds the rate-limit rejection log lines of one middleware per second.
const limitedLogPerSecond = 10

// counters are the middleware's series, looked up once in New.
type counters struct {
	allowed, limited *int64
	fromMemory       *int64 // refusals answered from the block list, without Redis
	redisErrors      *int64
	fallback         *int64
	redisTime        *metrics.Histogram
	redisSlots       []int64 // redisTime.Slots[:], for the hot path
	redisSum         *int64  // &redisTime.Sum
	limitedLog       *metrics.Sampler
}

func newCounters(name string) counters {
	decisions := "Rate-limit decisions by result: allowed, limited (Redis or the local fallback)."
	c := counters{
		allowed: metrics.Counter(metricDecisions, decisions, []string{"middleware", name, "result", "allowed"}),
		limited: metrics.Counter(metricDecisions, decisions, []string{"middleware", name, "result", "limited"}),
		fromMemory: metrics.Counter(metricRefusedInMemory,
			"Refusals answered without Redis: the client was refused by Redis and its retry time has not come (also counted in decisions, result limited).",
			[]string{"middleware", name}),
		redisErrors: metrics.Counter(metricRedisErrors,
			"Redis calls that failed (error, timeout, no pooled connection in time).", []string{"middleware", name}),
		fallback: metrics.Gauge(metricFallback,
			"1 while Redis is considered down and failurePolicy decides, else 0.", []string{"middleware", name}),
		redisTime: metrics.NewHistogram(metricRedisTime,
			"Time spent in the Redis call of a request (the rate-limit script), seconds.", redisBucketFirst, redisBuckets,
			[]string{"middleware", name}),
		limitedLog: metrics.NewSampler("ratelimit", name, "rate_limited", limitedLogPerSecond),
	}
	c.redisSlots = c.redisTime.Slots[:]
	c.redisSum = &c.redisTime.Sum
	return c
}

// refuse counts, logs (sampled) and sends a 429.
func (l *rateLimit) refuse(rw http.ResponseWriter, req *http.Request, set *limitSet, d decision) {
	atomic.AddInt64(l.counters.limited, 1)
	if l.counters.limitedLog != nil {
		l.logRefusal(req, set, d)
	}
	refuse(rw, set, l.headers, d)
}

// logRefusal writes the rejection line (never the client's key), unless the middleware is
// over its lines per second (counted on the middleware's clock, l.now).
func (l *rateLimit) logRefusal(req *http.Request, set *limitSet, d decision) {
	ok, dropped := l.counters.limitedLog.Allow(l.now())
	if !ok {
		return
	}
	limit := ""
	if d.index >= 0 && d.index < len(set.limits) {
		limit = windowName(set.limits[d.index].window)
	}
	fields := map[string]any{
		"level":          "info",
		"message":        "request rate-limited",
		"middlewareName": l.name,
		"component":      "ratelimit",
		"event":          "rate_limited",
		"limit":          limit,
		"retry_after":    d.retry,
		"redis":          !l.redisBreaker.isDown(),
	}
	metrics.LogRequest(l.logTo, req, dropped, fields)
}

// Topology metrics (Sentinel and Cluster; see resp.Counters).
const (
	metricPrimarySwitches = "pavilion_ratelimit_redis_primary_switches_total"
	metricRedirects       = "pavilion_ratelimit_redis_cluster_redirects_total"
	metricMapRefreshes    = "pavilion_ratelimit_redis_cluster_map_refreshes_total"
	metricClusterErrors   = "pavilion_ratelimit_redis_cluster_errors_total"
	metricPrimary         = "pavilion_ratelimit_redis_primary"
	metricClusterNode     = "pavilion_ratelimit_redis_cluster_primary"
)

// topologyHooks adds the middleware's topology counters and operator log to o. A pool is
// shared by the middlewares with the same options: its events are counted and logged under
// the middleware that created it.
func topologyHooks(o resp.Options, name string) resp.Options {
	topo := o.Topology()
	if topo == "standalone" {
		return o
	}
	mw := []string{"middleware", name}
	if topo == "sentinel" {
		o.Counters.PrimarySwitches = metrics.Counter(metricPrimarySwitches,
			"Times Sentinel named a new primary (failovers followed).", mw)
	} else {
		redirects := "Cluster redirections followed, by kind: moved, ask."
		o.Counters.Moved = metrics.Counter(metricRedirects, redirects, []string{"middleware", name, "kind", "moved"})
		o.Counters.Ask = metrics.Counter(metricRedirects, redirects, []string{"middleware", name, "kind", "ask"})
		refreshes := "Cluster slot map reads, by result: ok, error."
		o.Counters.Refreshes = metrics.Counter(metricMapRefreshes, refreshes, []string{"middleware", name, "result", "ok"})
		o.Counters.RefreshErrors = metrics.Counter(metricMapRefreshes, refreshes, []string{"middleware", name, "result", "error"})
		cerrs := "Cluster error replies answered by the failure policy, by code: tryagain, clusterdown."
		o.Counters.TryAgain = metrics.Counter(metricClusterErrors, cerrs, []string{"middleware", name, "code", "tryagain"})
		o.Counters.ClusterDown = metrics.Counter(metricClusterErrors, cerrs, []string{"middleware", name, "code", "clusterdown"})
	}
	ev := &topologyLog{name: name, gauges: map[string]*int64{}}
	if topo == "sentinel" {
		ev.gauge = metricPrimary
		ev.help = "1 for the primary Sentinel named and the limiter uses (label address), 0 for earlier ones."
	} else {
		ev.gauge = metricClusterNode
		ev.help = "1 for each primary of the cluster's slot map in use (label address), 0 for nodes no longer in it."
	}
	o.OnEvent = ev.event
	return o
}

// topologyLog writes the topology events of a pool to the operator log (stdout, in Traefik's
// shape, like the middleware's own lines) and keeps
// the gauge of the nodes in use.
type topologyLog struct {
	name        string
	gauge, help string
	mu          sync.Mutex
	gauges      map[string]*int64 // by node address
}

func (t *topologyLog) event(event, nodes, msg string) {
	metrics.Log(os.Stdout, map[string]any{
		"level":          "info",
		"message":        msg,
		"middlewareName": t.name,
		"component":      "ratelimit",
		"event":          event,
	})
	if nodes == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, g := range t.gauges {
		atomic.StoreInt64(g, 0)
	}
	for _, addr := range strings.Split(nodes, ",") {
		g := t.gauges[addr]
		if g == nil {
			g = metrics.Gauge(t.gauge, t.help, []string{"middleware", t.name, "address", addr})
			t.gauges[addr] = g
		}
		atomic.StoreInt64(g, 1)
	}
}
