package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
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

	"github.com/pavilion-trust/gateway/plugins/resp"
)

// doc is the health document as a client reads it.
type doc struct {
	Status string                      `json:"status"`
	Checks map[string][]map[string]any `json:"checks"`
}

// writeCert writes a self-signed PEM certificate valid from notBefore to notAfter, after a
// PEM private key block (the first CERTIFICATE block is the one checked).
func writeCert(t testing.TB, dir, name string, notBefore, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gateway.test"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newHealth(t testing.TB, cfg *Config) *health {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := New(ctx, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("next called")
	}), cfg, "h")
	if err != nil {
		t.Fatal(err)
	}
	return h.(*health)
}

func get(t testing.TB, h http.Handler) (int, doc, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health", nil))
	if ct := w.Header().Get("Content-Type"); ct != ContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	var d doc
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return w.Code, d, w.Body.String()
}

func TestCertificateChecks(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	garbage := filepath.Join(dir, "garbage.crt")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	badDER := filepath.Join(dir, "bad.crt")
	if err := os.WriteFile(badDER, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, path, minValidity string
		status                  string
		code                    int
		output                  string
	}{
		{"valid for a year", writeCert(t, dir, "valid.crt", now.Add(-time.Hour), now.Add(365*24*time.Hour)), "", "pass", 200, ""},
		{"near expiry (default minValidity 168h)", writeCert(t, dir, "near.crt", now.Add(-time.Hour), now.Add(48*time.Hour)), "", "warn", 200, "in less than minValidity 168h0m0s"},
		{"near expiry of a custom minValidity", writeCert(t, dir, "near2.crt", now.Add(-time.Hour), now.Add(48*time.Hour)), "72h", "warn", 200, "minValidity 72h0m0s"},
		{"above a custom minValidity", writeCert(t, dir, "ok2.crt", now.Add(-time.Hour), now.Add(48*time.Hour)), "24h", "pass", 200, ""},
		{"expired", writeCert(t, dir, "expired.crt", now.Add(-48*time.Hour), now.Add(-time.Hour)), "", "fail", 503, "certificate expired at"},
		{"not yet valid", writeCert(t, dir, "future.crt", now.Add(time.Hour), now.Add(365*24*time.Hour)), "", "fail", 503, "not valid before"},
		{"missing file", filepath.Join(dir, "missing.crt"), "", "fail", 503, "certificate file unreadable: not found"},
		{"no PEM", garbage, "", "fail", 503, "no PEM CERTIFICATE block"},
		{"malformed DER", badDER, "", "fail", 503, "malformed certificate"},
		{"a directory", dir, "", "fail", 503, "certificate file unreadable"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := newHealth(t, &Config{Certificates: []Certificate{{Path: tc.path, MinValidity: tc.minValidity}}, CacheFor: "0s"})
			code, d, body := get(t, h)
			key := filepath.Base(tc.path) + ":validity"
			entries := d.Checks[key]
			if code != tc.code || d.Status != tc.status || len(entries) != 1 {
				t.Fatalf("%d %s", code, body)
			}
			e := entries[0]
			if e["status"] != tc.status || e["componentType"] != "system" || e["time"] == "" {
				t.Fatalf("entry %v", e)
			}
			out, _ := e["output"].(string)
			if (tc.output == "") != (out == "") || !strings.Contains(out, tc.output) {
				t.Fatalf("output %q, want %q", out, tc.output)
			}
			if tc.status != "fail" || strings.Contains(tc.desc, "expired") {
				if v, ok := e["observedValue"].(float64); !ok || e["observedUnit"] != "h" || (tc.status == "pass" && v < 24) {
					t.Fatalf("observed %v %v", e["observedValue"], e["observedUnit"])
				}
			}
		})
	}
}

// counting is an upstream that counts its calls and answers status after delay.
type counting struct {
	calls  atomic.Int64
	status atomic.Int64
	delay  time.Duration
}

func (c *counting) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.calls.Add(1)
	time.Sleep(c.delay)
	w.WriteHeader(int(c.status.Load()))
}

// TestSingleFlightAndCache: concurrent callers share one round, later callers get the cached
// answer until cacheFor has passed, then one new round runs.
func TestSingleFlightAndCache(t *testing.T) {
	up := &counting{delay: 100 * time.Millisecond}
	up.status.Store(200)
	srv := httptest.NewServer(up)
	defer srv.Close()
	h := newHealth(t, &Config{Upstreams: []Upstream{{Name: "core-broker", URL: srv.URL + "/health"}}, CacheFor: "5s"})
	var mu sync.Mutex
	clock := time.Now()
	h.prober.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	advance := func(d time.Duration) {
		mu.Lock()
		clock = clock.Add(d)
		mu.Unlock()
	}

	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := 0; i < len(codes); i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health", nil))
			codes[i] = w.Code
		}(i)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("call %d: %d", i, c)
		}
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("50 concurrent calls made %d probes, want 1", n)
	}
	up.status.Store(500)
	advance(4 * time.Second)
	if code, _, _ := get(t, h); code != 200 || up.calls.Load() != 1 {
		t.Fatalf("within cacheFor: %d, %d probes", code, up.calls.Load())
	}
	advance(2 * time.Second)
	code, d, body := get(t, h)
	if code != 503 || d.Status != "fail" || up.calls.Load() != 2 {
		t.Fatalf("after cacheFor: %d, %d probes: %s", code, up.calls.Load(), body)
	}
	if out := d.Checks["core-broker:responseTime"][0]["output"]; out != "HTTP status 500" {
		t.Fatalf("output %v", out)
	}
	if h.rounds != 2 {
		t.Fatalf("%d rounds", h.rounds)
	}
}

// TestCallerLeaving: a caller whose request ends while the round runs gets nothing, and the
// round still completes for the others.
func TestCallerLeaving(t *testing.T) {
	up := &counting{delay: 300 * time.Millisecond}
	up.status.Store(200)
	srv := httptest.NewServer(up)
	defer srv.Close()
	h := newHealth(t, &Config{Upstreams: []Upstream{{Name: "a", URL: srv.URL}}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// The caller's context ending does not cancel the round, and the wait is bounded by the
	// checks' timeouts (no select under Yaegi, see current).
	if a := h.current(ctx); a == nil || a.code != 200 {
		t.Fatalf("answer %v for a caller whose context ended", a)
	}
	if a := h.current(context.Background()); a == nil || a.code != 200 {
		t.Fatalf("answer %v", a)
	}
	if up.calls.Load() != 1 {
		t.Fatalf("%d probes", up.calls.Load())
	}
}

func TestUpstreamChecks(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) { time.Sleep(500 * time.Millisecond) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/health"
	ln.Close()
	for _, tc := range []struct {
		desc, url, timeout, status, output string
	}{
		{"2xx", srv.URL + "/ok", "", "pass", ""},
		{"503", srv.URL + "/down", "", "fail", "HTTP status 503"},
		{"redirect not followed", srv.URL + "/moved", "", "fail", "HTTP status 302"},
		{"timeout", srv.URL + "/slow", "100ms", "fail", "no answer within 100ms"},
		{"connection refused", closed, "", "fail", "connection refused"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := newHealth(t, &Config{Upstreams: []Upstream{{Name: "core-broker", URL: tc.url, Timeout: tc.timeout}}})
			_, d, body := get(t, h)
			e := d.Checks["core-broker:responseTime"]
			if d.Status != tc.status || len(e) != 1 || e[0]["observedUnit"] != "ms" || e[0]["componentType"] != "component" {
				t.Fatalf("%s", body)
			}
			if _, ok := e[0]["observedValue"].(float64); !ok {
				t.Fatalf("observedValue %v", e[0]["observedValue"])
			}
			if out, _ := e[0]["output"].(string); out != tc.output {
				t.Fatalf("output %q, want %q", out, tc.output)
			}
			if strings.Contains(body, "127.0.0.1") {
				t.Fatalf("the document shows the upstream's address: %s", body)
			}
		})
	}
}

func TestJWKSChecks(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/two", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA"},{"kty":"EC"}]}`))
	})
	mux.HandleFunc("/none", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"keys":[]}`)) })
	mux.HandleFunc("/html", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`<html>`)) })
	mux.HandleFunc("/gone", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		desc, path, status, output string
		keys                       float64
	}{
		{"two keys", "/two", "pass", "", 2},
		{"no keys", "/none", "fail", "key set has no keys", 0},
		{"not JSON", "/html", "fail", "not a JSON key set", -1},
		{"404", "/gone", "fail", "HTTP status 404", -1},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := newHealth(t, &Config{JWKS: []string{srv.URL + tc.path + "?secret=x"}})
			_, d, body := get(t, h)
			e := d.Checks["jwks:keys"]
			if d.Status != tc.status || len(e) != 1 || e[0]["componentId"] != "jwks[0]" || strings.Contains(body, srv.URL) {
				t.Fatalf("%s", body)
			}
			if out, _ := e[0]["output"].(string); out != tc.output {
				t.Fatalf("output %q, want %q", out, tc.output)
			}
			v, ok := e[0]["observedValue"].(float64)
			if tc.keys >= 0 && (!ok || v != tc.keys || e[0]["observedUnit"] != "keys") {
				t.Fatalf("observed %v %v", e[0]["observedValue"], e[0]["observedUnit"])
			}
			if tc.keys < 0 && (ok || e[0]["observedUnit"] != nil) {
				t.Fatalf("observed %v %v, want none", e[0]["observedValue"], e[0]["observedUnit"])
			}
		})
	}
}

// TestRedisUnreachable: the password is in no answer.
func TestRedisUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := newHealth(t, &Config{Redis: resp.Config{Address: addr, Password: "hunter2-secret", Timeout: "200ms"}})
	code, d, body := get(t, h)
	e := d.Checks["redis:responseTime"]
	if code != 503 || len(e) != 1 || e[0]["output"] != "connection refused" || e[0]["componentType"] != "datastore" {
		t.Fatalf("%d %s", code, body)
	}
	if strings.Contains(body, "hunter2") || strings.Contains(body, addr) {
		t.Fatalf("secret or address in %s", body)
	}
}

// TestRedisNotDialledByNew: New only validates the redis options (a Redis outage must never
// make the configuration invalid); the first health call is the first connection.
func TestRedisNotDialledByNew(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			atomic.AddInt32(&accepted, 1)
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	for _, r := range []resp.Config{
		{Address: addr, Timeout: "200ms"},
		{Sentinel: resp.SentinelConfig{MasterName: "m", Addresses: []string{addr}}, Timeout: "200ms"},
		{Cluster: resp.ClusterConfig{Addresses: []string{addr}}, Timeout: "200ms"},
	} {
		h := newHealth(t, &Config{Redis: r})
		time.Sleep(50 * time.Millisecond)
		if n := atomic.LoadInt32(&accepted); n != 0 {
			t.Fatalf("%s: New connected to Redis %d times", r.Address+strings.Join(r.Sentinel.Addresses, ",")+strings.Join(r.Cluster.Addresses, ","), n)
		}
		if code, _, body := get(t, h); code != 503 {
			t.Fatalf("a server that closes every connection: %d %s", code, body)
		}
		if atomic.LoadInt32(&accepted) == 0 {
			t.Fatal("the health call did not connect either: this test proves nothing")
		}
		atomic.StoreInt32(&accepted, 0)
	}
}

// TestRedisNotRedis: a server that answers something else than RESP.
func TestRedisNotRedis(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	h := newHealth(t, &Config{Redis: resp.Config{Address: strings.TrimPrefix(srv.URL, "http://"), Timeout: "300ms"}})
	code, d, body := get(t, h)
	if code != 503 || d.Status != "fail" {
		t.Fatalf("%d %s", code, body)
	}
}

func TestAggregateAndMethods(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	near := writeCert(t, dir, "tls.crt", now.Add(-time.Hour), now.Add(24*time.Hour))
	cfg := &Config{
		Certificates: []Certificate{{Path: near}, {Path: writeCert(t, dir, "other.crt", now, now.Add(9000*time.Hour)), Name: "api-cert"}},
		Upstreams:    []Upstream{{Name: "core-broker", URL: ok.URL}, {Name: "audit", URL: ok.URL}},
	}
	h := newHealth(t, cfg)
	code, d, body := get(t, h)
	if code != 200 || d.Status != "warn" || len(d.Checks) != 4 {
		t.Fatalf("%d %s", code, body)
	}
	for _, k := range []string{"tls.crt:validity", "api-cert:validity", "core-broker:responseTime", "audit:responseTime"} {
		if len(d.Checks[k]) != 1 {
			t.Fatalf("no check %q in %s", k, body)
		}
	}

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/anything", nil))
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != ContentType || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("HEAD: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/health", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", w.Code, w.Header())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		desc string
		cfg  Config
		want []string
	}{
		{"nothing to check", Config{}, []string{`health "h": no checks: configure at least one of certificates, upstreams, redis, jwks`}},
		{"upstream without url", Config{Upstreams: []Upstream{{Name: "core-broker"}}}, []string{`health "h": upstreams[0].url: required`}},
		{"upstream bad url, secret hidden", Config{Upstreams: []Upstream{{Name: "x", URL: "ftp://u:pw@h/x"}}}, []string{`upstreams[0].url: must be an http(s) URL with a host, got "ftp://h/x"`}},
		{"upstream without host", Config{Upstreams: []Upstream{{Name: "x", URL: "http:///x"}}}, []string{`upstreams[0].url: must be an http(s) URL`}},
		{"upstream without name", Config{Upstreams: []Upstream{{URL: "http://a/"}}}, []string{`upstreams[0].name: required`}},
		{"upstream bad name", Config{Upstreams: []Upstream{{Name: "core broker", URL: "http://a/"}}}, []string{`upstreams[0].name: "core broker": only letters`}},
		{"upstream bad timeout", Config{Upstreams: []Upstream{{Name: "a", URL: "http://a/", Timeout: "2"}}}, []string{`upstreams[0].timeout: invalid duration "2"`}},
		{"upstream timeout too long", Config{Upstreams: []Upstream{{Name: "a", URL: "http://a/", Timeout: "2h"}}}, []string{`upstreams[0].timeout: "2h" is out of range`}},
		{"duplicate upstream", Config{Upstreams: []Upstream{{Name: "a", URL: "http://a/"}, {Name: "a", URL: "http://b/"}}}, []string{`upstreams[1].name: check "a:responseTime" is already defined by upstreams[0]`}},
		{"upstream named redis", Config{Upstreams: []Upstream{{Name: "redis", URL: "http://a/"}}, Redis: resp.Config{Address: "r:6379"}}, []string{`redis: check "redis:responseTime" is already defined by upstreams[0]`}},
		{"certificate without path", Config{Certificates: []Certificate{{MinValidity: "1h"}}}, []string{`certificates[0].path: required`}},
		{"certificate bad minValidity", Config{Certificates: []Certificate{{Path: "/x/tls.crt", MinValidity: "7d"}}}, []string{`certificates[0].minValidity: invalid duration "7d"`}},
		{"two certificates with one base name", Config{Certificates: []Certificate{{Path: "/a/tls.crt"}, {Path: "/b/tls.crt"}}}, []string{`certificates[1].name: check "tls.crt:validity" is already defined by certificates[0] (set a distinct name)`}},
		{"redis without address", Config{Redis: resp.Config{Password: "pw"}}, []string{`redis.address: required (host:port), or sentinel.addresses, or cluster.addresses`}},
		{"redis bad address", Config{Redis: resp.Config{Address: "localhost"}}, []string{`redis.address: "localhost" is not host:port`}},
		{"redis username without password", Config{Redis: resp.Config{Address: "r:6379", Username: "u"}}, []string{`redis.username: set without redis.password`}},
		{"redis bad timeout", Config{Redis: resp.Config{Address: "r:6379", Timeout: "soon"}}, []string{`redis.timeout: invalid duration "soon"`}},
		{"redis negative db", Config{Redis: resp.Config{Address: "r:6379", DB: -1}}, []string{`redis.db: must be 0 or more`}},
		{"jwks not a URL", Config{JWKS: []string{"kc/certs"}}, []string{`jwks[0]: must be an http(s) URL with a host, got "kc/certs"`}},
		{"jwks twice", Config{JWKS: []string{"https://kc/certs", " https://kc/certs"}}, []string{`jwks[1]: "https://kc/certs" is listed twice`}},
		{"jwksTimeout", Config{JWKS: []string{"https://kc/certs"}, JWKSTimeout: "0s"}, []string{`jwksTimeout: "0s" is out of range`}},
		{"cacheFor", Config{JWKS: []string{"https://kc/certs"}, CacheFor: "5"}, []string{`cacheFor: invalid duration "5"`}},
		{"cacheFor negative", Config{JWKS: []string{"https://kc/certs"}, CacheFor: "-1s"}, []string{`cacheFor: "-1s" is out of range`}},
		{"every problem at once", Config{Upstreams: []Upstream{{Name: "a"}}, JWKS: []string{"x"}, CacheFor: "x"},
			[]string{`upstreams[0].url: required`, `jwks[0]: must be`, `cacheFor: invalid duration "x"`}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			cfg := CreateConfig()
			cfg.Certificates = tc.cfg.Certificates
			cfg.Upstreams = tc.cfg.Upstreams
			cfg.Redis = tc.cfg.Redis
			cfg.JWKS = tc.cfg.JWKS
			if tc.cfg.JWKSTimeout != "" {
				cfg.JWKSTimeout = tc.cfg.JWKSTimeout
			}
			if tc.cfg.CacheFor != "" {
				cfg.CacheFor = tc.cfg.CacheFor
			}
			_, err := New(context.Background(), http.NotFoundHandler(), cfg, "h")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q, want it to contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("error shows a password: %q", err)
			}
		})
	}
	if _, err := New(context.Background(), http.NotFoundHandler(), nil, "h"); err == nil {
		t.Fatal("nil config accepted")
	}
}
