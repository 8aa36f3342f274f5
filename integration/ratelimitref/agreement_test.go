// Package ratelimitref compares plugins/ratelimit's decisions with references, on a real
// redis-server, with the same request sequences: its gcra with
// github.com/go-redis/redis_rate/v10 (which it reimplements), and its sliding-window counter
// with its exact sliding-log. Run `go test -v -run Agreement ./ratelimitref/` for the figures.
package ratelimitref

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/plugins/ratelimit"
	"github.com/redis/go-redis/v9"
)

// middleware builds the compiled plugin with one limit.
func middleware(t *testing.T, addr, algorithm, prefix string, requests int, window time.Duration) http.Handler {
	t.Helper()
	c := ratelimit.CreateConfig()
	c.Redis.Address = addr
	c.Redis.Timeout = "1s"
	c.Algorithm = algorithm
	c.KeyPrefix = prefix
	c.FailurePolicy = "closed" // a Redis failure must show, not be hidden by the local limiter
	c.Limits = []ratelimit.Limit{{Requests: requests, Window: window.String()}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := ratelimit.New(ctx, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), c, "ref")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ask sends one request for client and returns whether it passed and its remaining count.
func ask(t *testing.T, h http.Handler, client string) (bool, int) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Auth-Client", client)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 && w.Code != 429 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	rem, _ := strconv.Atoi(w.Header().Get("X-RateLimit-Remaining"))
	return w.Code == 200, rem
}

// pattern returns the pauses before each request.
type pattern struct {
	name   string
	pauses func(rng *rand.Rand) []time.Duration
}

func burst(n int) []time.Duration { return make([]time.Duration, n) }

func every(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func join(parts ...[]time.Duration) []time.Duration {
	var out []time.Duration
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// pause puts d before the next part.
func pause(d time.Duration, next []time.Duration) []time.Duration {
	out := append([]time.Duration{}, next...)
	if len(out) > 0 {
		out[0] += d
	}
	return out
}

func TestGCRAAgreement(t *testing.T) {
	rd := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer rdb.Close()
	limiter := redis_rate.NewLimiter(rdb)
	ctx := context.Background()

	type scenario struct {
		requests int
		period   time.Duration
		pattern  pattern
	}
	scaled := func(p time.Duration) pattern {
		return pattern{name: "bursts, trickles and pauses across periods", pauses: func(*rand.Rand) []time.Duration {
			return join(burst(12), pause(p/2, burst(6)), pause(p, every(15, p/7)), pause(p+p/5, every(8, p/4)), pause(p/3, burst(10)))
		}}
	}
	random := pattern{name: "random gaps 0-300ms", pauses: func(rng *rand.Rand) []time.Duration {
		out := make([]time.Duration, 35)
		for i := range out {
			out[i] = time.Duration(rng.Intn(300)) * time.Millisecond
		}
		return out
	}}
	scenarios := []scenario{
		{5, time.Second, scaled(time.Second)},
		{10, 2 * time.Second, scaled(time.Second)},
		{1, time.Second, pattern{name: "every 300ms", pauses: func(*rand.Rand) []time.Duration { return every(12, 300*time.Millisecond) }}},
		{50, 10 * time.Second, pattern{name: "burst of 60 then every 100ms", pauses: func(*rand.Rand) []time.Duration {
			return join(burst(60), every(30, 100*time.Millisecond))
		}}},
		{3, time.Second, random},
		{7, 3 * time.Second, random},
	}

	total, differ, borderline, remDiffer := 0, 0, 0, 0
	for si, sc := range scenarios {
		limit := redis_rate.Limit{Rate: sc.requests, Burst: sc.requests, Period: sc.period}
		h := middleware(t, rd.Addr(), "gcra", "ref-gcra-"+strconv.Itoa(si), sc.requests, sc.period)
		client := "c" + strconv.Itoa(si)
		refKey := "ref-" + client
		pluginKey := fmt.Sprintf("ref-gcra-%d:{x-auth-client=%s}:gcra:%s", si, client, windowName(sc.period))
		rng := rand.New(rand.NewSource(int64(si)))
		n, d, b := 0, 0, 0
		// maxGap is the longest gap between the two calls since both states were (re)created:
		// a GCRA state re-based on its call's "now" keeps that call's offset, so the two TATs
		// may differ by up to that much, not only by the current call's gap.
		var maxGap time.Duration
		for _, p := range sc.pattern.pauses(rng) {
			time.Sleep(p)
			start := time.Now()
			res, err := limiter.Allow(ctx, refKey, limit)
			if err != nil {
				t.Fatal(err)
			}
			ok, rem := ask(t, h, client)
			gap := time.Since(start) + time.Millisecond
			maxGap = max(maxGap, gap)
			n++
			refOK := res.Allowed == 1
			if ok == refOK {
				if ok && rem != res.Remaining {
					remDiffer++
				}
				continue
			}
			// How far the reference's decision was from flipping: allowed iff the new TAT is
			// at most one period ahead.
			dist := res.RetryAfter
			if refOK {
				dist = sc.period - res.ResetAfter
			}
			if dist <= maxGap {
				b++
				maxGap = 0
				// Realign both states so that one borderline call does not cascade.
				if err := rdb.Del(ctx, "rate:"+refKey, pluginKey).Err(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			d++
			t.Errorf("%d per %s, %s, request %d: plugin allowed=%v, redis_rate allowed=%v (retry %s, reset %s)",
				sc.requests, sc.period, sc.pattern.name, n, ok, refOK, res.RetryAfter, res.ResetAfter)
		}
		t.Logf("gcra %d per %-4s %-45s requests %3d  differing %d  borderline (within the timing offset of the two calls) %d",
			sc.requests, sc.period, sc.pattern.name, n, d, b)
		total += n
		differ += d
		borderline += b
	}
	t.Logf("AGREEMENT gcra vs redis_rate/v10: %d requests, %d differing decisions, %d borderline (decision within the two calls' timing offset of flipping), %d equal decisions with a different remaining",
		total, differ, borderline, remDiffer)
}

// windowName mirrors the plugin's key naming (1s, 2s, 1m, 10s...).
func windowName(w time.Duration) string {
	s := int64(w / time.Second)
	switch {
	case s%86400 == 0:
		return strconv.FormatInt(s/86400, 10) + "d"
	case s%3600 == 0:
		return strconv.FormatInt(s/3600, 10) + "h"
	case s%60 == 0:
		return strconv.FormatInt(s/60, 10) + "m"
	}
	return strconv.FormatInt(s, 10) + "s"
}
