package jwtauth

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pavilion-trust/gateway/plugins/metrics"
)

// Metric names (see plugins/metrics). Every series has the label middleware.
const (
	metricValidations = "pavilion_jwt_validations_total"
	metricCacheHits   = "pavilion_jwt_cache_hits_total"
	metricCacheMisses = "pavilion_jwt_cache_misses_total"
)

// authLogPerSecond bounds the auth-failure log lines of one middleware per second.
const authLogPerSecond = 10

// counters are the middleware's series, looked up once in New.
type counters struct {
	ok, anonymous *int64
	hits, misses  *int64
	authLog       *metrics.Sampler
}

func newCounters(name string, rej *rejections) counters {
	c := counters{
		ok:        validationCounter(name, "ok"),
		anonymous: validationCounter(name, "anonymous"),
		hits: metrics.Counter(metricCacheHits, "Requests answered from the verified-token cache.",
			[]string{"middleware", name}),
		misses: metrics.Counter(metricCacheMisses, "Tokens verified because the verified-token cache could not answer.",
			[]string{"middleware", name}),
		authLog: metrics.NewSampler("jwtauth", name, "auth_failure", authLogPerSecond),
	}
	for _, r := range rej.all() {
		r.count = validationCounter(name, r.reason)
	}
	return c
}

func validationCounter(name, result string) *int64 {
	return metrics.Counter(metricValidations,
		"Requests by JWT validation result: ok, anonymous (optional, no token), or the rejection reason.",
		[]string{"middleware", name, "result", result})
}

// refuse counts, logs (sampled) and sends a rejection.
func (a *jwtAuth) refuse(rw http.ResponseWriter, req *http.Request, r *rejection) {
	if r.count != nil {
		atomic.AddInt64(r.count, 1)
	}
	if a.m.authLog != nil {
		a.logRefusal(req, r)
	}
	if a.fails != nil {
		a.countFailure(rw, req, r)
	}
	r.write(rw)
}

// countFailure counts an invalid token against the client address's failedAuth budget, and
// gives the budget's 429 its Retry-After.
func (a *jwtAuth) countFailure(rw http.ResponseWriter, req *http.Request, r *rejection) {
	now := a.now()
	if r == a.rej.tooManyFailures {
		retry := a.fails.spent(req, now)
		if retry < 1 {
			retry = 1 // the window ended a moment ago
		}
		rw.Header()["Retry-After"] = []string{strconv.FormatInt(retry, 10)}
		return
	}
	if r.status == http.StatusUnauthorized && r != a.rej.missing {
		a.fails.fail(req, now)
	}
}

// logRefusal writes the auth-failure line, unless the middleware is over its lines per second
// (counted on the middleware's clock, a.now).
func (a *jwtAuth) logRefusal(req *http.Request, r *rejection) {
	ok, dropped := a.m.authLog.Allow(a.now())
	if !ok {
		return
	}
	fields := map[string]any{
		"level":          "info",
		"message":        "request refused: " + r.reason,
		"middlewareName": a.name,
		"component":      "jwtauth",
		"event":          "auth_failure",
		"reason":         r.reason,
		"status":         r.status,
	}
	metrics.LogRequest(a.logTo, req, dropped, fields)
}

// logJWKS writes a JWKS event line: "warn" when a refresh failed or keys were skipped (the
// last good key set stays in use), else "info".
func logJWKS(w io.Writer, name, msg string) {
	level := "info"
	if strings.Contains(msg, "failed") || strings.Contains(msg, "skipped") {
		level = "warn"
	}
	metrics.Log(w, map[string]any{
		"level":          level,
		"message":        msg,
		"middlewareName": name,
		"component":      "jwtauth",
		"event":          "jwks",
	})
}
