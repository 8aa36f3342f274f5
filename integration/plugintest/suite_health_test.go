package plugintest

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

// TestSuiteHealth runs the suite's health section, compiled and under Yaegi, against the
// checks of the health plugin's tests: the section takes the health plugin's options and
// answers its document, the same as the standalone plugin answers for the same options.
func TestSuiteHealth(t *testing.T) {
	env := hlStartEnv(t)
	standalone := healthBuilders(t)[0] // compiled: the reference document
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				desc   string
				over   map[string]any
				code   int
				status string
				checks map[string][2]string
			}{
				{desc: "all pass", code: 200, status: "pass", checks: hlAllPass},
				{desc: "certificate near expiry: warn",
					over: map[string]any{"certificates": []any{map[string]any{"path": env.near, "minValidity": "168h"}}},
					code: 200, status: "warn", checks: map[string][2]string{"tls.crt:validity": {"warn", "in less than minValidity 168h0m0s"}}},
				{desc: "broker down",
					over: map[string]any{"upstreams": []any{map[string]any{"name": "core-broker", "url": "http://" + env.dead + "/health"}}},
					code: 503, status: "fail", checks: map[string][2]string{"core-broker:responseTime": {"fail", "connection refused"}, "jwks:keys": {"pass", ""}}},
				{desc: "redis wrong password",
					over: map[string]any{"redis": map[string]any{"address": env.redis.Addr(), "password": "wrong-" + hlRedisPassword}},
					code: 503, status: "fail", checks: map[string][2]string{"redis:responseTime": {"fail", "redis error WRONGPASS"}}},
			} {
				t.Run(tc.desc, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					cfg := env.config(tc.over)
					h, err := b.New(ctx, hlNext(t), map[string]any{"health": cfg}, "suite-health")
					if err != nil {
						t.Fatal(err)
					}
					code, d, body := hlGet(t, h)
					hlCheck(t, code, d, body, tc.code, tc.status, tc.checks)
					if tc.desc == "all pass" {
						hlCheckShape(t, d, body)
					}
					for _, addr := range []string{env.broker.Addr, env.sibling.URL, env.redis.Addr(), env.dead, env.jwks.URL, "127.0.0.1", "http"} {
						if strings.Contains(body, addr) {
							t.Fatalf("the document shows the address %s: %s", addr, body)
						}
					}
					ref, err := standalone.New(ctx, hlNext(t), env.config(tc.over), "standalone")
					if err != nil {
						t.Fatal(err)
					}
					rcode, rd, rbody := hlGet(t, ref)
					if rcode != code || rd.Status != d.Status || summary(rd) != summary(d) {
						t.Fatalf("the suite answers %d %s, the health plugin %d %s", code, body, rcode, rbody)
					}
				})
			}
		})
	}
}

// summary is a document's checks with their statuses and outputs, in a stable order.
func summary(d hlDoc) string {
	var out []string
	for key, entries := range d.Checks {
		for _, e := range entries {
			out = append(out, key+" "+e["status"].(string)+" "+strOf(e["output"])+" "+strOf(e["componentId"]))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func strOf(v any) string {
	s, _ := v.(string)
	return s
}

// TestSuiteHealthCacheAndMethods: cacheFor reaches the health plugin (one probe for many
// calls), HEAD has no body, POST is 405, the next handler is never called.
func TestSuiteHealthCacheAndMethods(t *testing.T) {
	env := hlStartEnv(t)
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h, err := b.New(ctx, hlNext(t), map[string]any{"health": env.config(map[string]any{"cacheFor": "1m"})}, "suite-health")
			if err != nil {
				t.Fatal(err)
			}
			calls0 := env.broker.calls.Load()
			fetches0 := env.jwks.fetches.Load()
			for i := 0; i < 5; i++ {
				code, d, body := hlGet(t, h)
				hlCheck(t, code, d, body, 200, "pass", hlAllPass)
			}
			if n := env.broker.calls.Load() - calls0; n != 1 {
				t.Fatalf("5 calls made %d broker probes, want 1 (cacheFor 1m)", n)
			}
			if n := env.jwks.fetches.Load() - fetches0; n != 1 {
				t.Fatalf("5 calls made %d JWKS fetches, want 1 (cacheFor 1m)", n)
			}
			hlMethods(t, h, "/health")
		})
	}
}

// TestSuiteHealthCRDShape: a Kubernetes Middleware's health section reaches the suite through
// JSON (numbers float64, booleans bool, an empty object a map), compiled and under Yaegi.
func TestSuiteHealthCRDShape(t *testing.T) {
	env := hlStartEnv(t)
	spec := `{"pavilion": {"health": {"certificates": [{"path": "` + env.valid + `", "minValidity": "168h"}],
		"upstreams": [{"name": "core-broker", "url": "` + env.broker.URL("/health") + `", "timeout": "2s"}],
		"redis": {"address": "` + env.redis.Addr() + `", "password": "` + hlRedisPassword + `", "db": 0, "tls": false},
		"jwks": ["` + env.jwks.URL + `/certs"], "cacheFor": "0s"}}}`
	var plugin map[string]map[string]any
	if err := json.Unmarshal([]byte(spec), &plugin); err != nil {
		t.Fatal(err)
	}
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h, err := b.New(ctx, hlNext(t), plugin["pavilion"], "crd")
			if err != nil {
				t.Fatal(err)
			}
			code, d, body := hlGet(t, h)
			hlCheck(t, code, d, body, 200, "pass", map[string][2]string{
				"tls.crt:validity": {"pass", ""}, "core-broker:responseTime": {"pass", ""}, "redis:responseTime": {"pass", ""}, "jwks:keys": {"pass", ""}})
		})
	}
}

// TestSuiteHealthConfig: the health section's errors, compiled and under Yaegi: the health
// plugin's own validation under the section's name, unknown keys named, and the section
// alone in its middleware.
func TestSuiteHealthConfig(t *testing.T) {
	env := hlStartEnv(t)
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				desc   string
				config map[string]any
				want   []string
			}{
				{desc: "{} (as Traefik hands it over: \"\") needs a check", config: map[string]any{"health": ""},
					want: []string{`pavilion "s": health: health "s": no checks: configure at least one of certificates, upstreams, redis, jwks`}},
				{desc: "true likewise", config: map[string]any{"health": "true"}, want: []string{"health: ", "no checks"}},
				{desc: "not a map", config: map[string]any{"health": "off"},
					want: []string{`health: expected a map of options, {} or true (on with defaults), got "off"`}},
				{desc: "unknown option", config: map[string]any{"health": env.config(map[string]any{"cacheFr": "1s"})},
					want: []string{`pavilion "s": health: cacheFr: unknown option`}},
				{desc: "unknown nested option", config: map[string]any{"health": map[string]any{"redis": map[string]any{"adress": "r:6379", "password": "pw-not-shown"}}},
					want: []string{"health: redis.adress: unknown option"}},
				{desc: "the health plugin's validation, every problem at once",
					config: map[string]any{"health": map[string]any{
						"upstreams": []any{map[string]any{"url": "http://a/"}},
						"redis":     map[string]any{"address": "redis", "password": "pw-not-shown"},
						"cacheFor":  "x"}},
					want: []string{`health: health "s": `, "upstreams[0].name: required", `redis.address: "redis" is not host:port`, `cacheFor: invalid duration "x"`}},
				{desc: "with a step", config: map[string]any{"health": env.config(nil), "jwt": map[string]any{"issuer": "https://kc.example/realms/p"}},
					want: []string{"health: cannot be combined with requestId, jwt, rateLimit or metrics"}},
				{desc: "with metrics", config: map[string]any{"health": env.config(nil), "metrics": map[string]any{"enabled": "true"}},
					want: []string{"health: cannot be combined with requestId, jwt, rateLimit or metrics"}},
			} {
				t.Run(tc.desc, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					h, err := b.New(ctx, hlNext(t), tc.config, "s")
					if err == nil {
						t.Fatalf("accepted (%T)", h)
					}
					for _, w := range tc.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q\nlacks %q", err, w)
						}
					}
					if strings.Contains(err.Error(), "pw-not-shown") || strings.Contains(err.Error(), hlRedisPassword) {
						t.Errorf("error shows a password: %q", err)
					}
				})
			}
		})
	}
}
