package gatewaytest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/demo/certs/devca"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/redistest"
)

const (
	allowedOrigin    = "https://portal.pavilion.example" // in dynamic/gateway.yml's allow-list
	disallowedOrigin = "https://evil.example"
	rateRequests     = 20   // PAVILION_RATE_REQUESTS for the test: per client (azp) per minute
	authFailures     = 1000 // PAVILION_AUTH_FAILURES: the tests send many bad tokens from 127.0.0.1
	healthInterval   = time.Second
)

// stack is everything the gateway needs, as real processes or servers on free ports.
type stack struct {
	gw       *Gateway
	iss      *issuer.Issuer
	brokers  [2]*echo.Server
	certs    devca.Files
	leafDER  []byte
	client   *http.Client // HTTPS to websecure, trusting the dev CA, SNI localhost, no compression
	redirect *http.Client // plain HTTP, redirects not followed
}

func startStack(t testing.TB) *stack {
	t.Helper()
	s := &stack{}
	var err error
	s.certs, err = devca.Generate(t.TempDir(), devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(s.certs.Cert)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	s.leafDER = block.Bytes

	rds := redistest.Start(t)
	s.iss, err = issuer.New(issuer.Config{Clients: []issuer.Client{{
		ID: "svc", Secret: "s3cret", Audience: []string{"core-broker"},
		Scopes: []string{"broker:read"}, RealmRoles: []string{"broker-user"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.iss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.iss.Stop() })
	s.brokers[0] = echo.Start(t, "core-broker-1")
	s.brokers[1] = echo.Start(t, "core-broker-2")

	s.gw = Start(t, []string{
		"PAVILION_ISSUER_URL=" + s.iss.IssuerURL(),
		"PAVILION_REDIS_ADDR=" + rds.Addr(),
		"PAVILION_BROKER_1_ADDR=" + strings.TrimPrefix(s.brokers[0].URL, "http://"),
		"PAVILION_BROKER_2_ADDR=" + strings.TrimPrefix(s.brokers[1].URL, "http://"),
		"PAVILION_RATE_REQUESTS=" + strconv.Itoa(rateRequests),
		"PAVILION_RATE_WINDOW=60s",
		"PAVILION_AUTH_FAILURES=" + strconv.Itoa(authFailures),
		"PAVILION_HEALTHCHECK_INTERVAL=" + healthInterval.String(),
		"PAVILION_HEALTH_CACHE=200ms",
		"PAVILION_TLS_CERT=" + s.certs.Cert,
		"PAVILION_TLS_KEY=" + s.certs.Key,
	}, "api-v1@file", "health@file")

	s.client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:    s.tlsConfig("localhost"),
			DisableCompression: true,
			ForceAttemptHTTP2:  true,
		},
	}
	s.redirect = &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(s.client.CloseIdleConnections)
	return s
}

func (s *stack) tlsConfig(serverName string) *tls.Config {
	ca, err := os.ReadFile(s.certs.CACert)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &tls.Config{RootCAs: pool, ServerName: serverName}
}

// token is a valid access token whose client (azp, the rate-limit key) is client, so that
// every subtest has its own rate-limit budget.
func (s *stack) token(t *testing.T, client string) string {
	t.Helper()
	claims, err := s.iss.Claims("svc")
	if err != nil {
		t.Fatal(err)
	}
	claims["azp"] = "gatewaytest-" + client
	tok, err := s.iss.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type answer struct {
	status int
	header http.Header
	body   []byte
	proto  string
}

// do sends a request to websecure; headers are name, value pairs.
func (s *stack) do(t *testing.T, method, path string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.gw.HTTPSURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: body, proto: res.Proto}
}

// checkSecurityHeaders asserts HSTS and every security header of dynamic/gateway.yml.
func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"X-Xss-Protection":       "0",
		"Referrer-Policy":        "no-referrer",
	}
	for name, v := range want {
		if got := h.Get(name); got != v {
			t.Errorf("%s: %s = %q, want %q", what, name, got, v)
		}
	}
	sts := h.Get("Strict-Transport-Security")
	if !strings.Contains(sts, "max-age=31536000") || !strings.Contains(sts, "includeSubDomains") {
		t.Errorf("%s: Strict-Transport-Security = %q, want max-age of a year and includeSubDomains", what, sts)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy = %q", what, csp)
	}
}

func TestGateway(t *testing.T) {
	s := startStack(t)

	t.Run("TLS 1.3 handshake with the configured certificate", func(t *testing.T) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.gw.HTTPSURL, "https://"), s.tlsConfig("localhost"))
		if err != nil {
			t.Fatalf("TLS 1.3 handshake: %v", err)
		}
		defer conn.Close()
		st := conn.ConnectionState()
		if st.Version != tls.VersionTLS13 {
			t.Fatalf("negotiated %s, want TLS 1.3", tls.VersionName(st.Version))
		}
		if !bytes.Equal(st.PeerCertificates[0].Raw, s.leafDER) {
			t.Fatalf("served certificate %q is not the configured tls.crt", st.PeerCertificates[0].Subject)
		}
	})

	t.Run("TLS 1.2 refused", func(t *testing.T) {
		cfg := s.tlsConfig("localhost")
		cfg.MaxVersion = tls.VersionTLS12
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.gw.HTTPSURL, "https://"), cfg)
		if err == nil {
			conn.Close()
			t.Fatal("TLS 1.2 handshake succeeded")
		}
		t.Logf("TLS 1.2: %v", err)
	})

	t.Run("SNI strict: a name the certificate lacks is refused; no SNI matches its IP SAN", func(t *testing.T) {
		addr := strings.TrimPrefix(s.gw.HTTPSURL, "https://")
		cfg := s.tlsConfig("unknown.example")
		cfg.InsecureSkipVerify = true // the refusal must come from the server
		if conn, err := tls.Dial("tcp", addr, cfg); err == nil {
			conn.Close()
			t.Fatal("SNI unknown.example: handshake succeeded")
		}
		// Without SNI Traefik matches the local address against IP SANs (127.0.0.1 is one).
		cfg = s.tlsConfig("127.0.0.1")
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatalf("no SNI, 127.0.0.1: %v", err)
		}
		defer conn.Close()
		if !bytes.Equal(conn.ConnectionState().PeerCertificates[0].Raw, s.leafDER) {
			t.Fatal("no SNI: served certificate is not the configured one")
		}
	})

	t.Run("HTTP redirects permanently to HTTPS, path and query kept", func(t *testing.T) {
		want := "https://127.0.0.1:" + strconv.Itoa(s.gw.Ports.WebSecure) + "/api/v1/accounts/42?expand=owner"
		// Traefik's permanent redirect: 301 for GET, 308 (method and body kept) for the rest.
		for method, status := range map[string]int{"GET": http.StatusMovedPermanently, "POST": http.StatusPermanentRedirect} {
			req, _ := http.NewRequest(method, s.gw.HTTPURL+"/api/v1/accounts/42?expand=owner", nil)
			res, err := s.redirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != status || res.Header.Get("Location") != want {
				t.Errorf("%s: %d Location %q, want %d %q", method, res.StatusCode, res.Header.Get("Location"), status, want)
			}
		}
	})

	t.Run("api reaches a broker over HTTP/2 with security headers and a request id", func(t *testing.T) {
		a := s.do(t, "GET", "/api/v1/accounts?x=1", "Authorization", "Bearer "+s.token(t, "basic"))
		if a.status != 200 {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		seen := echo.Decode(t, a.body)
		if seen.Proto != "HTTP/2.0" {
			t.Errorf("upstream saw %s, want HTTP/2.0 (h2c)", seen.Proto)
		}
		if seen.Path != "/api/v1/accounts" || seen.Query != "x=1" {
			t.Errorf("upstream saw %s?%s", seen.Path, seen.Query)
		}
		if got := seen.Headers.Get("X-Auth-Client"); got != "gatewaytest-basic" {
			t.Errorf("upstream X-Auth-Client %q", got)
		}
		if id := a.header.Get("X-Request-Id"); id == "" || seen.Headers.Get("X-Request-Id") != id {
			t.Errorf("request id: answer %q, upstream %q", id, seen.Headers.Get("X-Request-Id"))
		}
		if a.proto != "HTTP/2.0" {
			t.Errorf("client got %s, want HTTP/2.0 over TLS", a.proto)
		}
		checkSecurityHeaders(t, "200", a.header)
	})

	t.Run("401 without token carries security and CORS headers", func(t *testing.T) {
		a := s.do(t, "GET", "/api/v1/accounts", "Origin", allowedOrigin)
		if a.status != 401 {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		checkSecurityHeaders(t, "401", a.header)
		if got := a.header.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
			t.Errorf("401: Access-Control-Allow-Origin %q, want %q", got, allowedOrigin)
		}
		if !strings.Contains(a.header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Errorf("401: Access-Control-Expose-Headers %q lacks WWW-Authenticate", a.header.Get("Access-Control-Expose-Headers"))
		}
		if a.header.Get("X-Request-Id") == "" {
			t.Error("401 without X-Request-Id")
		}
	})

	t.Run("429 carries security, CORS and rate-limit headers", func(t *testing.T) {
		tok := s.token(t, "limited")
		var a answer
		for i := 0; i <= rateRequests; i++ {
			a = s.do(t, "GET", "/api/v1/accounts", "Authorization", "Bearer "+tok, "Origin", allowedOrigin)
			if a.status == http.StatusTooManyRequests {
				break
			}
			if a.status != 200 {
				t.Fatalf("request %d: status %d: %s", i+1, a.status, a.body)
			}
		}
		if a.status != http.StatusTooManyRequests {
			t.Fatalf("no 429 after %d requests with a limit of %d", rateRequests+1, rateRequests)
		}
		checkSecurityHeaders(t, "429", a.header)
		if got := a.header.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
			t.Errorf("429: Access-Control-Allow-Origin %q, want %q", got, allowedOrigin)
		}
		if a.header.Get("Retry-After") == "" || a.header.Get("X-Request-Id") == "" {
			t.Errorf("429: Retry-After %q, X-Request-Id %q", a.header.Get("Retry-After"), a.header.Get("X-Request-Id"))
		}
	})

	t.Run("CORS preflight from an allowed origin answered without a token", func(t *testing.T) {
		a := s.do(t, "OPTIONS", "/api/v1/accounts", "Origin", allowedOrigin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
		if a.status != 200 {
			t.Fatalf("preflight status %d: %s", a.status, a.body)
		}
		if got := a.header.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
			t.Errorf("Access-Control-Allow-Origin %q, want %q", got, allowedOrigin)
		}
		if got := strings.ToLower(a.header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "authorization") {
			t.Errorf("Access-Control-Allow-Headers %q lacks Authorization", got)
		}
		if got := a.header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
			t.Errorf("Access-Control-Allow-Methods %q lacks POST", got)
		}
		if a.header.Get("WWW-Authenticate") != "" || len(a.body) != 0 {
			t.Errorf("preflight went past CORS: WWW-Authenticate %q, body %q", a.header.Get("WWW-Authenticate"), a.body)
		}
		checkSecurityHeaders(t, "preflight", a.header)
	})

	t.Run("CORS: a disallowed origin gets no Access-Control-Allow-Origin", func(t *testing.T) {
		pre := s.do(t, "OPTIONS", "/api/v1/accounts", "Origin", disallowedOrigin, "Access-Control-Request-Method", "GET")
		get := s.do(t, "GET", "/api/v1/accounts", "Origin", disallowedOrigin, "Authorization", "Bearer "+s.token(t, "cors"))
		for what, a := range map[string]answer{"preflight": pre, "GET": get} {
			if v := a.header.Values("Access-Control-Allow-Origin"); len(v) != 0 {
				t.Errorf("%s: Access-Control-Allow-Origin %q for %s", what, v, disallowedOrigin)
			}
		}
		if get.status != 200 {
			t.Errorf("GET from a disallowed origin: %d (CORS is the browser's business, the API still answers)", get.status)
		}
	})

	t.Run("large JSON compressed when asked, small and unasked not", func(t *testing.T) {
		tok := s.token(t, "compress")
		big := "/api/v1/reports?filter=" + strings.Repeat("a", 4096)
		for _, enc := range []string{"gzip", "br", "zstd"} {
			a := s.do(t, "GET", big, "Authorization", "Bearer "+tok, "Accept-Encoding", enc)
			if a.status != 200 || a.header.Get("Content-Encoding") != enc {
				t.Fatalf("%s: status %d, Content-Encoding %q", enc, a.status, a.header.Get("Content-Encoding"))
			}
			if enc == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(a.body))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
				if seen := echo.Decode(t, plain); len(seen.Query) < 4096 || len(a.body) >= len(plain) {
					t.Fatalf("gzip: %d bytes for %d of JSON", len(a.body), len(plain))
				}
			}
		}
		if a := s.do(t, "GET", big, "Authorization", "Bearer "+tok); a.header.Get("Content-Encoding") != "" {
			t.Errorf("not asked: Content-Encoding %q", a.header.Get("Content-Encoding"))
		}
		small := s.do(t, "GET", "/api/v1/reports", "Accept-Encoding", "gzip, br, zstd") // 401, ~100 bytes of JSON
		if small.status != 401 || small.header.Get("Content-Encoding") != "" || !json.Valid(small.body) {
			t.Errorf("small JSON: status %d, Content-Encoding %q, body %q", small.status, small.header.Get("Content-Encoding"), small.body)
		}
	})

	t.Run("load alternates between the two brokers", func(t *testing.T) {
		tok := s.token(t, "balance")
		var order []string
		count := map[string]int{}
		for i := 0; i < 10; i++ {
			a := s.do(t, "GET", "/api/v1/accounts", "Authorization", "Bearer "+tok)
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			inst := echo.Decode(t, a.body).Instance
			order = append(order, inst)
			count[inst]++
		}
		if count["core-broker-1"] != 5 || count["core-broker-2"] != 5 {
			t.Fatalf("answers by instance %v (order %v), want 5 each", count, order)
		}
		for i := 1; i < len(order); i++ {
			if order[i] == order[i-1] {
				t.Fatalf("not alternating: %v", order)
			}
		}
	})

	t.Run("health on the public entry point without token", func(t *testing.T) {
		a := s.do(t, "GET", "/health")
		if a.status != 200 || a.header.Get("Content-Type") != "application/health+json" || !strings.Contains(string(a.body), `"status":"pass"`) {
			t.Fatalf("/health: %d %s %q", a.status, a.header.Get("Content-Type"), a.body)
		}
		for _, check := range []string{"core-broker-1:responseTime", "core-broker-2:responseTime", "redis:responseTime", "jwks:keys", ":validity"} {
			if !strings.Contains(string(a.body), check) {
				t.Fatalf("/health lacks the %s check: %s", check, a.body)
			}
		}
		checkSecurityHeaders(t, "/health", a.header)
		// It is the suite's health section: /health runs in the suite's interpreter, the only
		// one static/ declares.
		var mw struct {
			Type   string                    `json:"type"`
			Status string                    `json:"status"`
			Plugin map[string]map[string]any `json:"plugin"`
		}
		if err := s.gw.GetJSON("/api/http/middlewares/health@file", &mw); err != nil {
			t.Fatal(err)
		}
		if mw.Type != "pavilion" || mw.Status != "enabled" || len(mw.Plugin) != 1 || mw.Plugin["pavilion"]["health"] == nil {
			t.Fatalf("middleware health@file: type %q, status %q, plugin %v; want the suite's health section", mw.Type, mw.Status, mw.Plugin)
		}
	})

	t.Run("no catch-all and nothing internal on the public entry point", func(t *testing.T) {
		for _, p := range []string{"/", "/api/v2/accounts", "/metrics", "/ping", "/dashboard/", "/api/http/routers", "/api/rawdata"} {
			if a := s.do(t, "GET", p); a.status != 404 {
				t.Errorf("public %s: %d, want 404", p, a.status)
			}
		}
	})

	t.Run("metrics on the internal entry point: counters and histograms with labels", func(t *testing.T) {
		res, err := http.Get(s.gw.InternalURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("/metrics: %d", res.StatusCode)
		}
		for _, want := range []string{
			`traefik_entrypoint_requests_total{code="200",entrypoint="websecure"`,
			`traefik_entrypoint_request_duration_seconds_bucket{code="200",entrypoint="websecure"`,
			`router="api-v1@file"`,
			`traefik_router_requests_total{`,
			`traefik_router_request_duration_seconds_bucket{`,
			`traefik_service_requests_total{`,
			`traefik_service_request_duration_seconds_bucket{`,
			`service="core-broker@file"`,
			`code="429"`,
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("access log line carries the request id, status and duration", func(t *testing.T) {
		id := "gatewaytest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if a := s.do(t, "GET", "/api/v1/accounts", "Authorization", "Bearer "+s.token(t, "log"), "X-Request-Id", id); a.status != 200 {
			t.Fatalf("status %d", a.status)
		}
		var entry map[string]any
		deadline := time.Now().Add(5 * time.Second)
		for entry == nil && time.Now().Before(deadline) {
			sc := bufio.NewScanner(strings.NewReader(s.gw.Output()))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if bytes.Contains(sc.Bytes(), []byte(id)) {
					var m map[string]any
					if json.Unmarshal(sc.Bytes(), &m) == nil && m["RequestPath"] != nil {
						entry = m
					}
				}
			}
			if entry == nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if entry == nil {
			t.Fatalf("no JSON access log line with request id %s", id)
		}
		if entry["request_X-Request-Id"] != id || entry["DownstreamStatus"] != float64(200) || entry["RouterName"] != "api-v1@file" {
			t.Errorf("access log line: %v", entry)
		}
		if d, ok := entry["Duration"].(float64); !ok || d <= 0 {
			t.Errorf("access log Duration %v", entry["Duration"])
		}
		if entry["request_Authorization"] != nil {
			t.Error("access log keeps the Authorization header")
		}
	})

	t.Run("core-broker uses the servers transport and active health checks", func(t *testing.T) {
		var svc struct {
			LoadBalancer struct {
				ServersTransport string `json:"serversTransport"`
				HealthCheck      *struct {
					Path     string `json:"path"`
					Interval string `json:"interval"`
				} `json:"healthCheck"`
			} `json:"loadBalancer"`
		}
		if err := s.gw.GetJSON("/api/http/services/core-broker@file", &svc); err != nil {
			t.Fatal(err)
		}
		hc := svc.LoadBalancer.HealthCheck
		if svc.LoadBalancer.ServersTransport != "core-broker@file" || hc == nil || hc.Path != "/health" || hc.Interval != healthInterval.String() {
			t.Fatalf("service core-broker: transport %q, health check %+v", svc.LoadBalancer.ServersTransport, hc)
		}
		// The API does not list servers transports; a missing one would fail the service (and the
		// request tests above), so only check that Traefik did not complain about it.
		if strings.Contains(s.gw.Output(), "serversTransport") && strings.Contains(s.gw.Output(), "not found") {
			t.Fatal("Traefik logged a missing servers transport")
		}
	})

	// Last: it stops a broker.
	t.Run("one broker stopped: after the health-check interval every request succeeds", func(t *testing.T) {
		stopped := time.Now()
		s.brokers[1].Stop()
		dead := s.brokers[1].URL
		t.Logf("broker 2 stopped in %s", time.Since(stopped).Round(time.Millisecond))
		deadline := stopped.Add(3*healthInterval + 2*time.Second)
		for {
			var svc struct {
				ServerStatus map[string]string `json:"serverStatus"`
			}
			if err := s.gw.GetJSON("/api/http/services/core-broker@file", &svc); err != nil {
				t.Fatal(err)
			}
			if svc.ServerStatus[strings.Replace(dead, "http://", "h2c://", 1)] == "DOWN" {
				t.Logf("health check marked %s DOWN after %s", dead, time.Since(stopped).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %s not marked DOWN after %s: %v", dead, time.Since(stopped), svc.ServerStatus)
			}
			time.Sleep(100 * time.Millisecond)
		}
		tok := s.token(t, "failover")
		for i := 0; i < 12; i++ {
			a := s.do(t, "GET", "/api/v1/accounts", "Authorization", "Bearer "+tok)
			if a.status != 200 {
				t.Fatalf("request %d after failover: %d %s", i+1, a.status, a.body)
			}
			if inst := echo.Decode(t, a.body).Instance; inst != "core-broker-1" {
				t.Fatalf("answered by %s", inst)
			}
		}
		// The aggregate health sees the dead broker (cacheFor is short in this test).
		healthDeadline := time.Now().Add(5 * time.Second)
		for {
			a := s.do(t, "GET", "/health")
			if a.status == 503 && strings.Contains(string(a.body), `"status":"fail"`) {
				break
			}
			if time.Now().After(healthDeadline) {
				t.Fatalf("/health with a broker down: %d %s", a.status, a.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestRenderStatic: the static file's addresses are replaced once each, or it fails.
func TestRenderStatic(t *testing.T) {
	out, err := RenderStatic([]byte(`a: ":8080"`+"\n"+`b: ":8443"`+"\n"+`c: "127.0.0.1:8082"`), Ports{1, 2, 3})
	if err != nil || string(out) != "a: \"127.0.0.1:1\"\nb: \"127.0.0.1:2\"\nc: \"127.0.0.1:3\"" {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := RenderStatic([]byte(`a: ":8080"`), Ports{1, 2, 3}); err == nil {
		t.Fatal("missing addresses accepted")
	}
}
