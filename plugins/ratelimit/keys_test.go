package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/plugins/resp"
)

// testHandler builds a middleware (3 requests per second and 10 per hour unless edit changes
// it) that does not connect to Redis unless a request needs it.
func testHandler(tb testing.TB, edit func(c *Config)) *rateLimit {
	tb.Helper()
	c := CreateConfig()
	c.Limits = []Limit{{Requests: 3, Window: "1s"}, {Requests: 10, Window: "1h"}}
	if edit != nil {
		edit(c)
	}
	s, err := c.compile()
	if err != nil {
		tb.Fatal(err)
	}
	l, _ := newHandler(tb, http.NotFoundHandler(), s, time.Now)
	return l
}

func TestClientKey(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		desc      string
		edit      func(c *Config)
		remote    string
		headers   map[string][]string
		wantBase  string
		wantValue string
	}{
		{desc: "header source first", remote: "192.0.2.1:1234", headers: map[string][]string{"X-Auth-Client": {"svc"}},
			wantBase: "ptb:rl:{x-auth-client=svc", wantValue: "svc"},
		{desc: "empty header falls back to ip", remote: "192.0.2.1:1234", headers: map[string][]string{"X-Auth-Client": {""}},
			wantBase: "ptb:rl:{ip=192.0.2.1", wantValue: "192.0.2.1"},
		{desc: "ipv6 peer", remote: "[2001:db8::1]:443", wantBase: "ptb:rl:{ip=2001:db8::1", wantValue: "2001:db8::1"},
		{desc: "long value is hashed", remote: "192.0.2.1:1", headers: map[string][]string{"X-Auth-Client": {long}},
			wantBase: "ptb:rl:{x-auth-client=" + hashClient(long), wantValue: long},
		{desc: "braces are hashed", remote: "192.0.2.1:1", headers: map[string][]string{"X-Auth-Client": {"a}b"}},
			wantBase: "ptb:rl:{x-auth-client=" + hashClient("a}b"), wantValue: "a}b"},
		{desc: "a value that looks hashed is hashed", remote: "192.0.2.1:1", headers: map[string][]string{"X-Auth-Client": {"#abc"}},
			wantBase: "ptb:rl:{x-auth-client=" + hashClient("#abc"), wantValue: "#abc"},
		{desc: "no source value: anonymous", edit: func(c *Config) { c.Sources = []string{"header:X-Api-Key"} },
			remote: "192.0.2.1:1", wantBase: "ptb:rl:{anon", wantValue: ""},
		{desc: "custom prefix", edit: func(c *Config) { c.KeyPrefix = "gw1" }, remote: "192.0.2.1:1", wantBase: "gw1:{ip=192.0.2.1", wantValue: "192.0.2.1"},
		{desc: "XFF ignored without trusted proxies", remote: "192.0.2.1:1", headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}},
			wantBase: "ptb:rl:{ip=192.0.2.1", wantValue: "192.0.2.1"},
		{desc: "XFF ignored from an untrusted peer", edit: func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8"} },
			remote: "192.0.2.1:1", headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}},
			wantBase: "ptb:rl:{ip=192.0.2.1", wantValue: "192.0.2.1"},
		{desc: "XFF from a trusted peer: right-most untrusted", edit: func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8"} },
			remote: "10.0.0.5:1", headers: map[string][]string{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9, 10.1.1.1"}},
			wantBase: "ptb:rl:{ip=203.0.113.9", wantValue: "203.0.113.9"},
		{desc: "XFF over several header lines", edit: func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8"} },
			remote: "10.0.0.5:1", headers: map[string][]string{"X-Forwarded-For": {"198.51.100.1", "203.0.113.9, 10.1.1.1", "10.2.2.2"}},
			wantBase: "ptb:rl:{ip=203.0.113.9", wantValue: "203.0.113.9"},
		{desc: "XFF all trusted: left-most", edit: func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8"} },
			remote: "10.0.0.5:1", headers: map[string][]string{"X-Forwarded-For": {"10.9.9.9, 10.1.1.1"}},
			wantBase: "ptb:rl:{ip=10.9.9.9", wantValue: "10.9.9.9"},
		{desc: "XFF entry with a port", edit: func(c *Config) { c.TrustedProxies = []string{"10.0.0.5"} },
			remote: "10.0.0.5:1", headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9:5555"}},
			wantBase: "ptb:rl:{ip=203.0.113.9", wantValue: "203.0.113.9"},
		{desc: "trusted peer without XFF", edit: func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8"} },
			remote: "10.0.0.5:1", wantBase: "ptb:rl:{ip=10.0.0.5", wantValue: "10.0.0.5"},
		{desc: "garbage XFF entry from a trusted proxy is the client, as written", edit: func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8"} },
			remote: "10.0.0.5:1", headers: map[string][]string{"X-Forwarded-For": {"1.2.3.4, unknown"}},
			wantBase: "ptb:rl:{ip=unknown", wantValue: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			l := testHandler(t, tc.edit)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.headers {
				r.Header[k] = v
			}
			base, value := l.client(r)
			if base != tc.wantBase || value != tc.wantValue {
				t.Fatalf("client = %q, %q; want %q, %q", base, value, tc.wantBase, tc.wantValue)
			}
		})
	}
}

// TestKeyFormat reads the keys the scripts wrote in Redis for clients of each kind.
func TestKeyFormat(t *testing.T) {
	rd := startRedis(t)
	long := strings.Repeat("a", 65)
	for _, tc := range []struct {
		desc   string
		alg    string
		client string // X-Auth-Client, "" for none (the "ip" source)
		want   []string
	}{
		{desc: "ip source", alg: AlgorithmSlidingWindow, want: []string{"kf:{ip=192.0.2.1}:sw:1h", "kf:{ip=192.0.2.1}:sw:1s"}},
		{desc: "header source", alg: AlgorithmGCRA, client: "svc", want: []string{"kf:{x-auth-client=svc}:gcra:1h", "kf:{x-auth-client=svc}:gcra:1s"}},
		{desc: "long value hashed", alg: AlgorithmSlidingLog, client: long,
			want: []string{"kf:{x-auth-client=" + hashClient(long) + "}:sl:1h", "kf:{x-auth-client=" + hashClient(long) + "}:sl:1s"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			l, rdb := redisHandler(t, rd.addr(), time.Now, func(c *Config) {
				c.Algorithm = tc.alg
				c.KeyPrefix = "kf"
				c.Limits = []Limit{{Requests: 3, Window: "1s"}, {Requests: 10, Window: "1h"}}
			})
			mustFlush(t, rdb)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "192.0.2.1:1234"
			if tc.client != "" {
				r.Header.Set("X-Auth-Client", tc.client)
			}
			w := httptest.NewRecorder()
			l.ServeHTTP(w, r)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			v, err := rdb.Do(context.Background(), "KEYS", "*")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range v.Array {
				got = append(got, k.Str)
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("keys %q, want %q", got, tc.want)
			}
		})
	}
}

func mustFlush(tb testing.TB, rdb *resp.Client) {
	tb.Helper()
	if _, err := rdb.Do(context.Background(), "FLUSHALL"); err != nil {
		tb.Fatal(err)
	}
}

func TestArgsAndHeaders(t *testing.T) {
	l := testHandler(t, nil)
	if strings.Join(l.set.args, " ") != "3 1000 10 3600000" {
		t.Fatalf("args %q", l.set.args)
	}
	g := testHandler(t, func(c *Config) {
		c.Algorithm = "gcra"
		c.Limits = []Limit{{Requests: 100, Window: "1s"}, {Requests: 5000, Window: "3600s"}, {Requests: 7, Window: "90s"}, {Requests: 9, Window: "48h"}}
	})
	if strings.Join(g.set.args, " ") != "100 1 5000 3600 7 90 9 172800" {
		t.Fatalf("gcra args %q", g.set.args)
	}
	if g.set.policy[0] != `"1s";q=100;w=1, "1h";q=5000;w=3600, "90s";q=7;w=90, "2d";q=9;w=172800` {
		t.Fatalf("policy %q", g.set.policy[0])
	}
	h := http.Header{}
	g.set.writeHeaders(h, 1, 42, 17)
	want := map[string]string{
		"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "42", "X-RateLimit-Reset": "17",
		"RateLimit-Policy": g.set.policy[0], "RateLimit": `"1h";r=42;t=17`,
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestRefuseAndUnavailable(t *testing.T) {
	l := testHandler(t, nil)
	w := httptest.NewRecorder()
	refuse(w, l.set, true, decision{index: 0, remaining: 0, reset: 2, retry: 0})
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" || w.Header().Get("RateLimit") != `"1s";r=0;t=2` ||
		w.Body.String() != `{"error":"rate_limited","error_description":"too many requests; retry after 1 seconds","retry_after":1}`+"\n" {
		t.Fatalf("429: %d %v %s", w.Code, w.Header(), w.Body)
	}
	w = httptest.NewRecorder()
	refuse(w, l.set, false, decision{retry: 5})
	if w.Header().Get("Retry-After") != "5" || w.Header().Get("RateLimit") != "" {
		t.Fatalf("429 without headers: %v", w.Header())
	}
	w = httptest.NewRecorder()
	unavailable(w)
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), `"error":"rate_limiter_unavailable"`) {
		t.Fatalf("503: %d %v %s", w.Code, w.Header(), w.Body)
	}
}
