package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/plugins/metrics"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// fakeStore is a limitStore that answers each call with the next of its answers (the last
// one repeats) and records the calls.
type fakeStore struct {
	mu      sync.Mutex
	answers []fakeAnswer
	calls   int
	forgot  []string
}

type fakeAnswer struct {
	status string
	err    error
}

func (f *fakeStore) StatusFor(ctx context.Context, key, base string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.answers[len(f.answers)-1]
	if f.calls < len(f.answers) {
		a = f.answers[f.calls]
	}
	f.calls++
	return a.status, a.err
}

func (f *fakeStore) Forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgot = append(f.forgot, key)
}

// withFakeStore is testHandler (3 requests per second and 10 per hour unless edit changes it)
// with a fakeStore of answers behind its limits, a next handler that answers 200, and a clock
// that stands still in the middle of a second (the local fallback's windows and the block
// list read it: a second boundary between two requests would change their answers).
func withFakeStore(tb testing.TB, edit func(c *Config), answers []fakeAnswer) (*rateLimit, *fakeStore) {
	tb.Helper()
	l := testHandler(tb, edit)
	store := &fakeStore{answers: answers}
	l.set.store = store
	l.set.keyed = nil
	l.hotKeyed = nil
	l.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	still := time.Date(2030, 1, 2, 3, 4, 5, 500*int(time.Millisecond), time.UTC)
	l.now = func() time.Time { return still }
	return l, store
}

// TestDecisions: what a client gets for each answer of Redis, with a double behind limitStore
// (3 requests per second and 10 per hour; the requests come from client "svc").
func TestDecisions(t *testing.T) {
	allowedHour := fakeAnswer{status: `1 2 7 3500 0 "1h";r=7;t=3500 0`}
	refusedSecond := fakeAnswer{status: `0 1 0 1 1 "1s";r=0;t=1 800`}
	tests := []struct {
		desc    string
		edit    func(c *Config)
		answers []fakeAnswer
		// want, for each request in turn: status, X-RateLimit-Remaining ("-": absent).
		want      []int
		remaining []string
		calls     int      // calls to the store
		forgot    []string // keys forgotten
		failovers int      // redis_failover log lines
	}{
		{desc: "allowed: the fields of the deciding limit", answers: []fakeAnswer{allowedHour},
			want: []int{200, 200}, remaining: []string{"7", "7"}, calls: 2},
		{desc: "allowed without headers", edit: func(c *Config) { c.Headers = false }, answers: []fakeAnswer{allowedHour},
			want: []int{200}, remaining: []string{"-"}, calls: 1},
		{desc: "refused: then refused in memory until the retry time", answers: []fakeAnswer{refusedSecond, allowedHour},
			want: []int{429, 429}, remaining: []string{"0", "0"}, calls: 1, forgot: []string{"svc"}},
		{desc: "refused without a retry time: not remembered", answers: []fakeAnswer{{status: `0 1 0 1 1 "1s";r=0;t=1 0`}, allowedHour},
			want: []int{429, 200}, remaining: []string{"0", "7"}, calls: 2},
		{desc: "failure under closed: 503, then no call during the backoff", edit: func(c *Config) { c.FailurePolicy = PolicyClosed },
			answers: []fakeAnswer{{err: errors.New("resp: EVALSHA: broken pipe")}, allowedHour},
			want:    []int{503, 503}, remaining: []string{"-", "-"}, calls: 1, failovers: 1},
		{desc: "unexpected reply under local: the local limits", answers: []fakeAnswer{{status: "1 2 3"}},
			want: []int{200, 200, 200, 429}, remaining: []string{"2", "1", "0", "0"}, calls: 1, failovers: 1},
		{desc: "failure under open: passes without fields", edit: func(c *Config) { c.FailurePolicy = PolicyOpen },
			answers: []fakeAnswer{{err: errors.New("resp: dial tcp: connection refused")}},
			want:    []int{200}, remaining: []string{"-"}, calls: 1, failovers: 1},
		{desc: "busy pool under local: 503, not an outage", answers: []fakeAnswer{{err: resp.ErrPoolTimeout}},
			want: []int{503, 503}, remaining: []string{"-", "-"}, calls: 2},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			l, store := withFakeStore(t, tc.edit, tc.answers)
			var logs bytes.Buffer
			l.logTo = &logs
			for i, want := range tc.want {
				w := httptest.NewRecorder()
				l.ServeHTTP(w, hitRequest("svc"))
				remaining := w.Header().Get("X-RateLimit-Remaining")
				if _, ok := w.Header()["X-Ratelimit-Remaining"]; !ok {
					remaining = "-"
				}
				if w.Code != want || remaining != tc.remaining[i] {
					t.Fatalf("request %d: %d, remaining %q; want %d, %q", i, w.Code, remaining, want, tc.remaining[i])
				}
				if want == 429 && w.Header().Get("Retry-After") != "1" {
					t.Fatalf("request %d: Retry-After %q", i, w.Header().Get("Retry-After"))
				}
			}
			if store.calls != tc.calls || len(store.forgot) != len(tc.forgot) {
				t.Fatalf("%d calls, forgot %q; want %d, %q", store.calls, store.forgot, tc.calls, tc.forgot)
			}
			for i := range tc.forgot {
				if store.forgot[i] != tc.forgot[i] {
					t.Fatalf("forgot %q, want %q", store.forgot, tc.forgot)
				}
			}
			if n := events(t, &logs, "redis_failover"); n != tc.failovers {
				t.Fatalf("%d failover lines, want %d:\n%s", n, tc.failovers, logs.String())
			}
		})
	}
}

// TestAllowedHeaders: the rate-limit fields of an allowed answer name the deciding limit.
func TestAllowedHeaders(t *testing.T) {
	l, _ := withFakeStore(t, nil, []fakeAnswer{{status: `1 2 7 3500 0 "1h";r=7;t=3500 0`}})
	w := httptest.NewRecorder()
	l.ServeHTTP(w, hitRequest("svc"))
	want := map[string]string{
		"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "3500",
		"RateLimit-Policy": `"1s";q=3;w=1, "1h";q=10;w=3600`, "RateLimit": `"1h";r=7;t=3500`,
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
}

// TestRefusalLogFollowsTheClock: the rejection lines per second are counted on the
// middleware's clock (l.now): within one second of it at most limitedLogPerSecond lines, and
// the first line of its next second reports how many were suppressed, whatever the wall clock
// says.
func TestRefusalLogFollowsTheClock(t *testing.T) {
	// Refused without a retry time: every request asks the store and is logged (no block).
	l, _ := withFakeStore(t, nil, []fakeAnswer{{status: `0 1 0 1 1 "1s";r=0;t=1 0`}})
	var logs bytes.Buffer
	l.logTo = &logs
	l.counters.limitedLog = metrics.NewSampler("ratelimit", "clocktest-"+strconv.FormatInt(time.Now().UnixNano(), 36), "rate_limited", limitedLogPerSecond)
	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l.now = func() time.Time { return clock }
	refuse := func(n int) {
		for i := 0; i < n; i++ {
			w := httptest.NewRecorder()
			l.ServeHTTP(w, hitRequest("svc"))
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("%d, want 429", w.Code)
			}
		}
	}
	refuse(limitedLogPerSecond + 5)
	clock = clock.Add(999 * time.Millisecond)
	refuse(1)
	if n := events(t, &logs, "rate_limited"); n != limitedLogPerSecond {
		t.Fatalf("%d lines within one second of the clock, want %d:\n%s", n, limitedLogPerSecond, logs.String())
	}
	clock = clock.Add(time.Millisecond)
	logs.Reset()
	refuse(1)
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatalf("the next second's line %q: %v", logs.String(), err)
	}
	if line["event"] != "rate_limited" || line["suppressed"] != float64(6) {
		t.Fatalf("the next second's line: %v; want rate_limited with suppressed 6", line)
	}
}
