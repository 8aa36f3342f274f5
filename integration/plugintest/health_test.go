package plugintest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
	"github.com/pavilion-trust/gateway/plugins/health"
)

const healthImport = "github.com/pavilion-trust/gateway/plugins/health"

// hlRedisPassword is the test Redis' password: no health answer may contain it.
const hlRedisPassword = "hl-s3cret-Passw0rd"

func healthBuilders(t testing.TB) []pluginharness.Builder {
	return pluginharness.Both(t, healthImport, health.CreateConfig, health.New)
}

// hlDoc is the health document as a client reads it.
type hlDoc struct {
	Status string                      `json:"status"`
	Checks map[string][]map[string]any `json:"checks"`
}

// hlUpstream is a Core Broker stand-in that can go down and come back on the same address.
// /health answers 200 {"status":"pass"}, /fail 500; every request is counted.
type hlUpstream struct {
	Addr  string
	calls atomic.Int64

	mu  sync.Mutex
	srv *http.Server
	tb  testing.TB
}

func hlStartUpstream(tb testing.TB) *hlUpstream {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	u := &hlUpstream{Addr: ln.Addr().String(), tb: tb}
	u.serve(ln)
	tb.Cleanup(u.Stop)
	return u
}

func (u *hlUpstream) URL(path string) string { return "http://" + u.Addr + path }

func (u *hlUpstream) serve(ln net.Listener) {
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		w.Header().Set("Content-Type", "application/health+json")
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"status":"fail"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"pass"}`))
	})}
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Stop closes the listener and every connection: the next probe gets "connection refused".
func (u *hlUpstream) Stop() {
	u.mu.Lock()
	srv := u.srv
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart listens on the same address again.
func (u *hlUpstream) Restart() {
	u.tb.Helper()
	u.Stop()
	var err error
	for i := 0; i < 100; i++ {
		var ln net.Listener
		ln, err = net.Listen("tcp", u.Addr)
		if err == nil {
			u.serve(ln)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	u.tb.Fatalf("restarting the upstream on %s: %v", u.Addr, err)
}

// hlJWKS serves /certs (two keys), /empty (no keys) and counts the /certs fetches.
type hlJWKS struct {
	*httptest.Server
	fetches atomic.Int64
}

func hlStartJWKS(tb testing.TB) *hlJWKS {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	b64 := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.FillBytes(make([]byte, 32))) }
	jwk := fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256","x":%q,"y":%q}`, b64(key.X), b64(key.Y))
	set := `{"keys":[` + jwk + `,` + strings.Replace(jwk, `"k1"`, `"k2"`, 1) + `]}`
	j := &hlJWKS{}
	mux := http.NewServeMux()
	mux.HandleFunc("/certs", func(w http.ResponseWriter, _ *http.Request) {
		j.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write([]byte(set))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"keys":[]}`)) })
	j.Server = httptest.NewServer(mux)
	tb.Cleanup(j.Close)
	return j
}

// hlWriteCert writes a self-signed PEM certificate (after its key, as a combined file would
// have it) valid from now-1h to now+left.
func hlWriteCert(tb testing.TB, dir, name string, left time.Duration) string {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "gateway.pavilion.test"},
		DNSNames:     []string{"gateway.pavilion.test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(left),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// hlEnv is what the checks look at: a Core Broker stand-in, an echo sibling service, Redis
// with a password, a JWKS server and certificate files.
type hlEnv struct {
	broker  *hlUpstream
	sibling *echo.Server
	redis   *redistest.Server
	jwks    *hlJWKS
	dead    string // an address nobody listens on
	valid   string // certificate valid for a year
	near    string // expires in 48h
	expired string
	garbage string
}

func hlStartEnv(t testing.TB) *hlEnv {
	t.Helper()
	dir := t.TempDir()
	e := &hlEnv{
		broker:  hlStartUpstream(t),
		sibling: echo.Start(t, "audit-1"),
		redis:   redistest.Start(t, "--requirepass", hlRedisPassword),
		jwks:    hlStartJWKS(t),
		dead:    fmt.Sprintf("127.0.0.1:%d", traefiktest.FreePort(t)),
		valid:   hlWriteCert(t, filepath.Join(dir, "valid"), "tls.crt", 365*24*time.Hour),
		near:    hlWriteCert(t, filepath.Join(dir, "near"), "tls.crt", 48*time.Hour),
		expired: hlWriteCert(t, filepath.Join(dir, "expired"), "tls.crt", -time.Minute),
		garbage: filepath.Join(dir, "garbage", "tls.crt"),
	}
	if err := os.MkdirAll(filepath.Dir(e.garbage), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.garbage, []byte("-----BEGIN NOTHING-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// config is the all-pass configuration (as Traefik hands it over: strings, []any, maps), with
// overrides applied on top.
func (e *hlEnv) config(over map[string]any) map[string]any {
	cfg := map[string]any{
		"certificates": []any{map[string]any{"path": e.valid, "minValidity": "168h"}},
		"upstreams": []any{
			map[string]any{"name": "core-broker", "url": e.broker.URL("/health"), "timeout": "2s"},
			map[string]any{"name": "audit", "url": e.sibling.URL + "/health", "timeout": "2s"},
		},
		"redis":    map[string]any{"address": e.redis.Addr(), "password": hlRedisPassword, "timeout": "500ms"},
		"jwks":     []any{e.jwks.URL + "/certs"},
		"cacheFor": "5s",
	}
	for k, v := range over {
		cfg[k] = v
	}
	return cfg
}

// hlGet calls the middleware once and decodes its answer; the next handler must not run.
func hlGet(t testing.TB, h http.Handler) (int, hlDoc, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health", nil))
	body := w.Body.String()
	if ct := w.Header().Get("Content-Type"); ct != "application/health+json" {
		t.Fatalf("Content-Type %q (status %d, body %s)", ct, w.Code, body)
	}
	var d hlDoc
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if strings.Contains(body, hlRedisPassword) {
		t.Fatalf("the Redis password is in the answer: %s", body)
	}
	return w.Code, d, body
}

// hlNext fails the test if the middleware calls it.
func hlNext(t testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the health middleware called next")
		w.WriteHeader(http.StatusTeapot)
	})
}

// hlCheck asserts the overall answer and, for each named check, its status (and an output
// containing the given text when not empty).
func hlCheck(t *testing.T, code int, d hlDoc, body string, wantCode int, wantStatus string, checks map[string][2]string) {
	t.Helper()
	if code != wantCode || d.Status != wantStatus {
		t.Fatalf("got %d %q, want %d %q: %s", code, d.Status, wantCode, wantStatus, body)
	}
	for key, want := range checks {
		entries := d.Checks[key]
		if len(entries) != 1 {
			t.Fatalf("check %q: %d entries in %s", key, len(entries), body)
		}
		e := entries[0]
		if e["status"] != want[0] {
			t.Fatalf("check %q: status %v, want %s: %s", key, e["status"], want[0], body)
		}
		out, _ := e["output"].(string)
		if want[1] != "" && !strings.Contains(out, want[1]) {
			t.Fatalf("check %q: output %q, want it to contain %q", key, out, want[1])
		}
		if want[0] == "pass" && out != "" {
			t.Fatalf("check %q passes with output %q", key, out)
		}
		if ts, _ := e["time"].(string); ts == "" {
			t.Fatalf("check %q has no time", key)
		} else if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Fatalf("check %q: time %q: %v", key, ts, err)
		}
	}
}

var hlAllPass = map[string][2]string{
	"tls.crt:validity":         {"pass", ""},
	"core-broker:responseTime": {"pass", ""},
	"audit:responseTime":       {"pass", ""},
	"redis:responseTime":       {"pass", ""},
	"jwks:keys":                {"pass", ""},
}

// TestHealthCases: one configuration per case, each answered compiled and under Yaegi.
func TestHealthCases(t *testing.T) {
	env := hlStartEnv(t)
	for _, b := range healthBuilders(t) {
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
					code: 200, status: "warn",
					checks: map[string][2]string{"tls.crt:validity": {"warn", "in less than minValidity 168h0m0s"}, "core-broker:responseTime": {"pass", ""}}},
				{desc: "certificate near expiry, default minValidity",
					over: map[string]any{"certificates": []any{map[string]any{"path": env.near}}},
					code: 200, status: "warn", checks: map[string][2]string{"tls.crt:validity": {"warn", "minValidity 168h0m0s"}}},
				{desc: "certificate with 48h left above minValidity 24h",
					over: map[string]any{"certificates": []any{map[string]any{"path": env.near, "minValidity": "24h"}}},
					code: 200, status: "pass", checks: hlAllPass},
				{desc: "certificate expired",
					over: map[string]any{"certificates": []any{map[string]any{"path": env.expired}}},
					code: 503, status: "fail", checks: map[string][2]string{"tls.crt:validity": {"fail", "certificate expired at"}, "redis:responseTime": {"pass", ""}}},
				{desc: "certificate unreadable (no PEM)",
					over: map[string]any{"certificates": []any{map[string]any{"path": env.garbage}}},
					code: 503, status: "fail", checks: map[string][2]string{"tls.crt:validity": {"fail", "unreadable"}}},
				{desc: "certificate missing, named",
					over: map[string]any{"certificates": []any{map[string]any{"path": env.garbage + ".missing", "name": "edge-cert"}}},
					code: 503, status: "fail", checks: map[string][2]string{"edge-cert:validity": {"fail", "unreadable: not found"}}},
				{desc: "broker answers 500",
					over: map[string]any{"upstreams": []any{map[string]any{"name": "core-broker", "url": env.broker.URL("/fail")}}},
					code: 503, status: "fail", checks: map[string][2]string{"core-broker:responseTime": {"fail", "HTTP status 500"}}},
				{desc: "broker down",
					over: map[string]any{"upstreams": []any{map[string]any{"name": "core-broker", "url": "http://" + env.dead + "/health"}}},
					code: 503, status: "fail", checks: map[string][2]string{"core-broker:responseTime": {"fail", "connection refused"}, "jwks:keys": {"pass", ""}}},
				{desc: "redis wrong password",
					over: map[string]any{"redis": map[string]any{"address": env.redis.Addr(), "password": "wrong-" + hlRedisPassword}},
					code: 503, status: "fail", checks: map[string][2]string{"redis:responseTime": {"fail", "redis error WRONGPASS"}}},
				{desc: "redis without password",
					over: map[string]any{"redis": map[string]any{"address": env.redis.Addr()}},
					code: 503, status: "fail", checks: map[string][2]string{"redis:responseTime": {"fail", "redis error NOAUTH"}}},
				{desc: "redis down",
					over: map[string]any{"redis": map[string]any{"address": env.dead, "password": hlRedisPassword}},
					code: 503, status: "fail", checks: map[string][2]string{"redis:responseTime": {"fail", "connection refused"}}},
				{desc: "jwks without keys",
					over: map[string]any{"jwks": []any{env.jwks.URL + "/certs", env.jwks.URL + "/empty"}},
					code: 503, status: "fail"},
				{desc: "jwks unreachable",
					over: map[string]any{"jwks": []any{"http://" + env.dead + "/certs"}},
					code: 503, status: "fail", checks: map[string][2]string{"jwks:keys": {"fail", "connection refused"}}},
				{desc: "only one upstream, no cacheFor",
					over: map[string]any{"certificates": []any{}, "redis": map[string]any{}, "jwks": []any{},
						"upstreams": []any{map[string]any{"name": "audit", "url": env.sibling.URL + "/health"}}, "cacheFor": "0s"},
					code: 200, status: "pass", checks: map[string][2]string{"audit:responseTime": {"pass", ""}}},
			} {
				t.Run(tc.desc, func(t *testing.T) {
					h, err := b.New(context.Background(), hlNext(t), env.config(tc.over), "h")
					if err != nil {
						t.Fatal(err)
					}
					code, d, body := hlGet(t, h)
					hlCheck(t, code, d, body, tc.code, tc.status, tc.checks)
					if tc.desc == "all pass" {
						hlCheckShape(t, d, body)
					}
					// No URL, host or port is ever shown: not the upstreams', Redis' nor the JWKS'
					// (a JWKS entry's componentId is the option that defines it, jwks[i]).
					for _, addr := range []string{env.broker.Addr, env.sibling.URL, env.redis.Addr(), env.dead, env.jwks.URL, "127.0.0.1", "http"} {
						if strings.Contains(body, addr) {
							t.Fatalf("the document shows the address %s: %s", addr, body)
						}
					}
					if tc.desc == "jwks without keys" {
						hlCheckJWKSEntries(t, d, body, env)
					}
				})
			}
		})
	}
}

// hlCheckShape: observed values and units of the all-pass document.
func hlCheckShape(t *testing.T, d hlDoc, body string) {
	t.Helper()
	if len(d.Checks) != 5 {
		t.Fatalf("%d checks: %s", len(d.Checks), body)
	}
	for key, unit := range map[string]string{
		"tls.crt:validity": "h", "core-broker:responseTime": "ms", "audit:responseTime": "ms",
		"redis:responseTime": "ms", "jwks:keys": "keys",
	} {
		e := d.Checks[key][0]
		v, ok := e["observedValue"].(float64)
		if !ok || v < 0 || e["observedUnit"] != unit {
			t.Fatalf("%s: observed %v %v, want a number in %s", key, e["observedValue"], e["observedUnit"], unit)
		}
	}
	if v := d.Checks["jwks:keys"][0]["observedValue"]; v != 2.0 {
		t.Fatalf("jwks:keys observedValue %v, want 2", v)
	}
	if v := d.Checks["tls.crt:validity"][0]["observedValue"].(float64); v < 365*24-2 || v > 365*24 {
		t.Fatalf("tls.crt:validity %vh, want about a year", v)
	}
}

// hlCheckJWKSEntries: one entry per JWKS URL, told apart by componentId.
func hlCheckJWKSEntries(t *testing.T, d hlDoc, body string, env *hlEnv) {
	t.Helper()
	entries := d.Checks["jwks:keys"]
	if len(entries) != 2 {
		t.Fatalf("jwks:keys has %d entries: %s", len(entries), body)
	}
	byID := map[any]map[string]any{}
	for _, e := range entries {
		byID[e["componentId"]] = e
	}
	if e := byID["jwks[0]"]; e == nil || e["status"] != "pass" || e["observedValue"] != 2.0 {
		t.Fatalf("/certs entry: %s", body)
	}
	if e := byID["jwks[1]"]; e == nil || e["status"] != "fail" || e["output"] != "key set has no keys" || e["observedValue"] != 0.0 {
		t.Fatalf("/empty entry: %s", body)
	}
}

// hlEventually calls h until it answers wantStatus (each call may be cached: wait out
// cacheFor), or fails after 10s.
func hlEventually(t *testing.T, h http.Handler, wantCode int, wantStatus string, checks map[string][2]string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, d, body := hlGet(t, h)
		if code == wantCode && d.Status == wantStatus {
			hlCheck(t, code, d, body, wantCode, wantStatus, checks)
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d %s after 10s, want %d %s: %s", code, d.Status, wantCode, wantStatus, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHealthOutagesAndRecovery: the broker goes down (503 fail), comes back (pass once
// cacheFor has passed); then Redis is killed (503 fail) and restarted (pass). One middleware
// throughout, as Traefik keeps it.
func TestHealthOutagesAndRecovery(t *testing.T) {
	env := hlStartEnv(t)
	for _, b := range healthBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			h, err := b.New(context.Background(), hlNext(t), env.config(map[string]any{"cacheFor": "300ms"}), "h")
			if err != nil {
				t.Fatal(err)
			}
			hlEventually(t, h, 200, "pass", hlAllPass)

			env.broker.Stop()
			// Within cacheFor the pass is still served; then the failure shows.
			start := time.Now()
			hlEventually(t, h, 503, "fail", map[string][2]string{
				"core-broker:responseTime": {"fail", "connection refused"}, "redis:responseTime": {"pass", ""}})
			t.Logf("broker down seen after %s", time.Since(start).Round(time.Millisecond))
			env.broker.Restart()
			hlEventually(t, h, 200, "pass", hlAllPass)

			env.redis.Kill()
			body := hlEventually(t, h, 503, "fail", map[string][2]string{
				"redis:responseTime": {"fail", "connection refused"}, "core-broker:responseTime": {"pass", ""}})
			if strings.Contains(body, env.redis.Addr()) {
				t.Fatalf("the Redis address is in the answer: %s", body)
			}
			env.redis.Restart()
			hlEventually(t, h, 200, "pass", hlAllPass)
		})
	}
}

// TestHealthCacheFor: N calls within cacheFor, concurrent and sequential, make one probe per
// upstream and one JWKS fetch; with cacheFor 0s every sequential call probes.
func TestHealthCacheFor(t *testing.T) {
	env := hlStartEnv(t)
	for _, b := range healthBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			h, err := b.New(context.Background(), hlNext(t), env.config(map[string]any{"cacheFor": "1m"}), "h")
			if err != nil {
				t.Fatal(err)
			}
			calls0 := env.broker.calls.Load()
			fetches0 := env.jwks.fetches.Load()
			const workers, each = 10, 5
			var wg sync.WaitGroup
			codes := make(chan int, workers*each)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
						codes <- rec.Code
					}
				}()
			}
			wg.Wait()
			close(codes)
			for c := range codes {
				if c != 200 {
					t.Fatalf("a call answered %d", c)
				}
			}
			if n := env.broker.calls.Load() - calls0; n != 1 {
				t.Fatalf("%d calls made %d broker probes, want 1", workers*each, n)
			}
			if n := env.jwks.fetches.Load() - fetches0; n != 1 {
				t.Fatalf("%d calls made %d JWKS fetches, want 1", workers*each, n)
			}

			h0, err := b.New(context.Background(), hlNext(t), env.config(map[string]any{"cacheFor": "0s"}), "h0")
			if err != nil {
				t.Fatal(err)
			}
			calls0 = env.broker.calls.Load()
			for i := 0; i < 3; i++ {
				hlGet(t, h0)
			}
			if n := env.broker.calls.Load() - calls0; n != 3 {
				t.Fatalf("cacheFor 0s: 3 calls made %d probes, want 3", n)
			}
		})
	}
}

// TestHealthMethods: HEAD gets the status without a body, POST 405; any path is answered.
func TestHealthMethods(t *testing.T) {
	env := hlStartEnv(t)
	for _, b := range healthBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			h, err := b.New(context.Background(), hlNext(t), env.config(nil), "h")
			if err != nil {
				t.Fatal(err)
			}
			hlMethods(t, h, "/status/anything")
		})
	}
}

// hlMethods checks, on a health endpoint whose checks pass, that HEAD to path answers 200
// with no body, the health media type and no-store, and that POST answers 405 with Allow.
func hlMethods(t *testing.T, h http.Handler, path string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodHead, path, nil))
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "application/health+json" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("HEAD: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader("x")))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", w.Code, w.Header())
	}
}

func TestHealthConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		config map[string]any
		want   []string
	}{
		{"no checks", map[string]any{"cacheFor": "5s"}, []string{`health "h": no checks: configure at least one of certificates, upstreams, redis, jwks`}},
		{"upstream without url", map[string]any{"upstreams": []any{map[string]any{"name": "core-broker"}}},
			[]string{`health "h": upstreams[0].url: required`}},
		{"upstream url not http, credentials hidden", map[string]any{"upstreams": []any{map[string]any{"name": "a", "url": "redis://user:pw@r:6379"}}},
			[]string{`upstreams[0].url: must be an http(s) URL with a host, got "redis://r:6379"`}},
		{"upstream timeout", map[string]any{"upstreams": []any{map[string]any{"name": "a", "url": "http://a/", "timeout": "2"}}},
			[]string{`upstreams[0].timeout: invalid duration "2" (use e.g. "2s")`}},
		{"upstream name", map[string]any{"upstreams": []any{map[string]any{"name": "core:broker", "url": "http://a/"}}},
			[]string{`upstreams[0].name: "core:broker": only letters, digits`}},
		{"certificate minValidity", map[string]any{"certificates": []any{map[string]any{"path": "/etc/tls.crt", "minValidity": "7d"}}},
			[]string{`certificates[0].minValidity: invalid duration "7d"`}},
		{"certificate without path", map[string]any{"certificates": []any{map[string]any{"name": "edge"}}},
			[]string{`certificates[0].path: required`}},
		{"redis address", map[string]any{"redis": map[string]any{"address": "redis", "password": "pw-not-shown"}},
			[]string{`redis.address: "redis" is not host:port`}},
		{"redis timeout", map[string]any{"redis": map[string]any{"address": "r:6379", "timeout": "fast"}},
			[]string{`redis.timeout: invalid duration "fast"`}},
		{"redis db not a number", map[string]any{"redis": map[string]any{"address": "r:6379", "db": "one"}},
			[]string{`cannot parse 'Redis.DB' as int`}},
		{"jwks", map[string]any{"jwks": []any{"kc.example/certs"}}, []string{`jwks[0]: must be an http(s) URL with a host, got "kc.example/certs"`}},
		{"cacheFor", map[string]any{"jwks": []any{"https://kc/certs"}, "cacheFor": "2h"}, []string{`cacheFor: "2h" is out of range [0s, 1h0m0s]`}},
		{"several at once", map[string]any{"upstreams": []any{map[string]any{"url": "http://a/"}}, "cacheFor": "x"},
			[]string{`upstreams[0].name: required`, `cacheFor: invalid duration "x"`}},
	} {
		for _, b := range healthBuilders(t) {
			t.Run(tc.desc+"/"+b.Name, func(t *testing.T) {
				h, err := b.New(context.Background(), hlNext(t), tc.config, "h")
				if err == nil {
					t.Fatalf("accepted (%T)", h)
				}
				for _, want := range tc.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q, want it to contain %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("error shows a password: %q", err)
				}
			})
		}
	}
}

// TestHealthThroughTraefik loads the plugin into a real Traefik on Path(`/health`) with the
// noop@internal service (the middleware answers; no upstream is needed): all pass, then Redis
// killed (503 fail) and restarted (pass); other paths are not the health router's.
func TestHealthThroughTraefik(t *testing.T) {
	env := hlStartEnv(t)
	cfg := env.config(map[string]any{"cacheFor": "300ms"})
	dyn := "http:\n  routers:\n" +
		"    health:\n      entryPoints: [web]\n      rule: Path(`/health`)\n      middlewares: [health]\n      service: noop@internal\n" +
		"    healthbroken:\n      entryPoints: [web]\n      rule: Path(`/health-broken`)\n      middlewares: [healthbroken]\n      service: noop@internal\n" +
		"  middlewares:\n" +
		pluginMiddleware("health", "health", cfg) +
		pluginMiddleware("healthbroken", "health", map[string]any{"upstreams": []any{map[string]any{"name": "core-broker"}}})
	gw := traefiktest.Start(t, traefiktest.Options{
		Dynamic:     dyn,
		Plugins:     map[string]string{"health": healthImport},
		WaitRouters: []string{"health@file"},
	})
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(t *testing.T, path string) (int, http.Header, []byte) {
		t.Helper()
		res, err := client.Get(gw.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if strings.Contains(string(body), hlRedisPassword) {
			t.Fatalf("the Redis password is in the answer: %s", body)
		}
		return res.StatusCode, res.Header, body
	}
	until := func(t *testing.T, wantCode int, wantStatus string) []byte {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, hdr, body := get(t, "/health")
			var d hlDoc
			err := json.Unmarshal(body, &d)
			if err == nil && code == wantCode && d.Status == wantStatus {
				if ct := hdr.Get("Content-Type"); ct != "application/health+json" {
					t.Fatalf("Content-Type %q", ct)
				}
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/health: %d %s, want %d %s", code, body, wantCode, wantStatus)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("all pass", func(t *testing.T) {
		body := until(t, 200, "pass")
		var d hlDoc
		_ = json.Unmarshal(body, &d)
		hlCheck(t, 200, d, string(body), 200, "pass", hlAllPass)
		t.Logf("GET /health -> 200 %s", body)
	})
	t.Run("certificate near expiry: 200 warn, renewed: pass", func(t *testing.T) {
		// The plugin re-reads the file every round: replace it as a renewal would.
		near, err := os.ReadFile(env.near)
		if err != nil {
			t.Fatal(err)
		}
		valid, err := os.ReadFile(env.valid)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(env.valid, near, 0o600); err != nil {
			t.Fatal(err)
		}
		body := until(t, 200, "warn")
		t.Logf("GET /health with the certificate near expiry -> 200 %s", body)
		if err := os.WriteFile(env.valid, valid, 0o600); err != nil {
			t.Fatal(err)
		}
		until(t, 200, "pass")
	})
	t.Run("core broker down: 503 fail, back: pass", func(t *testing.T) {
		env.broker.Stop()
		body := until(t, 503, "fail")
		t.Logf("GET /health with the Core Broker down -> 503 %s", body)
		env.broker.Restart()
		until(t, 200, "pass")
	})
	t.Run("redis killed: 503 fail, restarted: pass", func(t *testing.T) {
		env.redis.Kill()
		body := until(t, 503, "fail")
		t.Logf("GET /health with Redis down -> 503 %s", body)
		env.redis.Restart()
		until(t, 200, "pass")
	})
	t.Run("other paths are not answered by the health router", func(t *testing.T) {
		if code, _, body := get(t, "/healthz"); code != http.StatusNotFound {
			t.Fatalf("/healthz: %d %s", code, body)
		}
	})
	t.Run("broken config: router disabled, error names the option", func(t *testing.T) {
		if code, _, body := get(t, "/health-broken"); code != http.StatusNotFound {
			t.Fatalf("/health-broken: %d %s", code, body)
		}
		want := `health \"healthbroken@file\": upstreams[0].url: required`
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(gw.Logs(), want) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(gw.Logs(), want) {
			t.Fatalf("Traefik's log does not contain %s", want)
		}
	})
}
