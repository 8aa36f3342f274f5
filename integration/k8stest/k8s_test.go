package k8stest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/pavilion-trust/gateway/demo/certs/devca"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

const (
	namespace    = "pavilion"
	readyTimeout = 60 * time.Second
	client       = "k8stest-client" // azp of the test's tokens: the rate-limit key
)

// Production values in deploy/kubernetes that the test replaces with its own servers.
const (
	prodIssuer   = "https://keycloak.example.com/realms/pavilion"
	prodRedis    = "redis-master.pavilion.svc.cluster.local:6379"
	prodCertPath = "/etc/traefik/certs/tls.crt"
	prodBroker   = "http://core-broker.pavilion.svc.cluster.local:8080/health"
)

// cluster is everything of one test: the stand-in API with the manifests, the real
// components behind them, and Traefik reading them.
type cluster struct {
	api       *APIServer
	apiURL    string
	manifests []Manifest
	values    helmValues
	iss       *issuer.Issuer
	rds       *redistest.Server
	redisPass string
	broker    *echo.Server
	certs     devca.Files
	dir       string
	proc      *traefiktest.Process
	https     string // https://127.0.0.1:<websecure>
	internal  string // http://127.0.0.1:<traefik>
	client    *http.Client
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func start(t *testing.T) *cluster {
	t.Helper()
	root := pluginharness.RepoRoot()
	c := &cluster{dir: t.TempDir()}
	var err error
	c.values, err = loadHelmValues(root)
	if err != nil {
		t.Fatal(err)
	}
	c.certs, err = devca.Generate(filepath.Join(c.dir, "certs"), devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.redisPass = randomHex(t, 16)
	c.rds = redistest.Start(t, "--requirepass", c.redisPass)
	c.iss, err = issuer.New(issuer.Config{Clients: []issuer.Client{{
		ID: "svc", Secret: "s3cret", Audience: []string{"core-broker"}, RealmRoles: []string{"broker-user"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.iss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.iss.Stop() })
	c.broker = echo.Start(t, "core-broker-pod")

	c.manifests, err = Load(root, map[string]string{
		prodIssuer:   c.iss.IssuerURL(),
		prodRedis:    c.rds.Addr(),
		prodCertPath: c.certs.Cert,
		prodBroker:   c.broker.URL + "/health",
	})
	if err != nil {
		t.Fatal(err)
	}
	c.startAPI(t)
	c.startTraefik(t)
	return c
}

// startAPI serves the manifests, the Secrets they name and the Core Broker's EndpointSlice
// over TLS (certificate of the development CA) to holders of a random token.
func (c *cluster) startAPI(t *testing.T) {
	t.Helper()
	c.api = NewAPIServer(randomHex(t, 24))
	var skipped []string
	for _, m := range c.manifests {
		if m.Kind() == "Namespace" { // Traefik reads no namespace objects
			skipped = append(skipped, m.Kind()+"/"+m.Name())
			continue
		}
		if err := c.api.Put(m.Object); err != nil {
			t.Fatalf("%s: %v", m.File, err)
		}
	}
	if len(skipped) != 1 {
		t.Fatalf("manifests not served: %v (want exactly the Namespace)", skipped)
	}
	cert, err := os.ReadFile(c.certs.Cert)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(c.certs.Key)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(c.broker.URL, "http://"))
	brokerPort, _ := strconv.Atoi(port)
	for _, obj := range []map[string]any{
		{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
			"metadata": map[string]any{"name": "pavilion-gateway-tls", "namespace": namespace},
			"data":     map[string]any{"tls.crt": base64.StdEncoding.EncodeToString(cert), "tls.key": base64.StdEncoding.EncodeToString(key)}},
		{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
			"metadata": map[string]any{"name": "pavilion-redis", "namespace": namespace},
			"data":     map[string]any{"password": base64.StdEncoding.EncodeToString([]byte(c.redisPass))}},
		{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
			"metadata": map[string]any{"name": "core-broker-x7k2p", "namespace": namespace,
				"labels": map[string]any{"kubernetes.io/service-name": "core-broker"}},
			"endpoints": []any{map[string]any{"addresses": []any{host},
				"conditions": map[string]any{"ready": true, "serving": true, "terminating": false}}},
			"ports": []any{map[string]any{"name": "h2c", "port": brokerPort, "protocol": "TCP"}}},
	} {
		if err := c.api.Put(obj); err != nil {
			t.Fatal(err)
		}
	}

	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: c.api, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeTLS(ln, "", "")
	}()
	c.apiURL = "https://" + ln.Addr().String()
	t.Cleanup(func() {
		c.api.Close()
		_ = srv.Close()
		<-done
	})
}

// startTraefik writes the static configuration the Helm values describe (local plugins,
// watched namespaces, internal entry point with API, ping and Prometheus metrics) with the
// kubernetesCRD provider pointed at the stand-in, and waits for the IngressRoutes' routers.
func (c *cluster) startTraefik(t *testing.T) {
	t.Helper()
	root := pluginharness.RepoRoot()
	web, secure, internal := traefiktest.FreePort(t), 0, 0
	for secure == 0 || secure == web {
		secure = traefiktest.FreePort(t)
	}
	for internal == 0 || internal == web || internal == secure {
		internal = traefiktest.FreePort(t)
	}
	var plugins strings.Builder
	for _, name := range sortedKeys(c.values.Experimental.LocalPlugins) {
		fmt.Fprintf(&plugins, "    %s: {moduleName: %q}\n", name, c.values.Experimental.LocalPlugins[name].ModuleName)
	}
	namespaces, _ := json.Marshal(c.values.Providers.KubernetesCRD.Namespaces)
	static := fmt.Sprintf(`global: {checkNewVersion: false, sendAnonymousUsage: false}
entryPoints:
  web:
    address: "127.0.0.1:%d"
    http: {redirections: {entryPoint: {to: websecure, scheme: https, permanent: true}}}
  websecure:
    address: "127.0.0.1:%d"
    http: {tls: {}}
  traefik:
    address: "127.0.0.1:%d"
api: {dashboard: %t}
ping: {entryPoint: traefik}
metrics:
  prometheus: {entryPoint: %s, addEntryPointsLabels: true, addRoutersLabels: true, addServicesLabels: true}
log: {level: INFO, format: json}
accessLog: {format: json}
providers:
  kubernetesCRD:
    endpoint: %q
    token: %q
    certAuthFilePath: %q
    namespaces: %s
    allowCrossNamespace: %t
    allowEmptyServices: %t
experimental:
  abortOnPluginFailure: %t
  localPlugins:
%s`, web, secure, internal, c.values.API.Dashboard, c.values.Metrics.Prometheus.EntryPoint,
		c.apiURL, c.api.Token, c.certs.CACert, namespaces,
		c.values.Providers.KubernetesCRD.AllowCrossNamespace, c.values.Providers.KubernetesCRD.AllowEmptyServices,
		c.values.Experimental.AbortOnPluginFailure, plugins.String())

	dir := filepath.Join(c.dir, "traefik")
	pluginsDir := filepath.Join(dir, "plugins-local", "src", filepath.FromSlash(path.Dir(pluginharness.RootModule)))
	if err := os.MkdirAll(pluginsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(pluginsDir, path.Base(pluginharness.RootModule))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(static), 0o600); err != nil {
		t.Fatal(err)
	}
	c.https = "https://127.0.0.1:" + strconv.Itoa(secure)
	c.internal = "http://127.0.0.1:" + strconv.Itoa(internal)
	ca, err := os.ReadFile(c.certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: true, DisableCompression: true}}
	t.Cleanup(c.client.CloseIdleConnections)

	// Never an in-cluster or kubeconfig client: only endpoint + token.
	c.proc = traefiktest.StartProcess(t, traefiktest.Binary(t), dir, filepath.Join(dir, "traefik.yml"),
		[]string{"KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT=", "KUBECONFIG="})
	t.Cleanup(func() {
		c.proc.Stop()
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(dir, "traefik.out"))
			if len(out) > 256<<10 {
				out = out[len(out)-256<<10:]
			}
			reqs, unauth := c.api.Requests()
			t.Logf("stand-in API requests %v, refused %d", reqs, unauth)
			t.Logf("traefik output (%s):\n%s", dir, out)
		}
	})
	c.waitRouters(t, "api-v1", "health", "internal")
}

// routers is Traefik's list of HTTP routers.
func (c *cluster) routers(t *testing.T) []map[string]any {
	t.Helper()
	var rs []map[string]any
	if err := traefiktest.GetJSON(c.client, c.internal+"/api/http/routers", &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

// routerOf returns the routers Traefik built from an IngressRoute: <namespace>-<name>-<hash
// of the rule>@kubernetescrd, one per route.
func routerOf(rs []map[string]any, ingressRoute string) []map[string]any {
	var out []map[string]any
	for _, r := range rs {
		name, _ := r["name"].(string)
		if strings.HasPrefix(name, namespace+"-"+ingressRoute+"-") && strings.HasSuffix(name, "@kubernetescrd") {
			out = append(out, r)
		}
	}
	return out
}

func (c *cluster) waitRouters(t *testing.T, ingressRoutes ...string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := func() error {
			var rs []map[string]any
			if err := traefiktest.GetJSON(c.client, c.internal+"/api/http/routers", &rs); err != nil {
				return err
			}
			for _, ir := range ingressRoutes {
				found := routerOf(rs, ir)
				if len(found) == 0 {
					return fmt.Errorf("no router for IngressRoute %s", ir)
				}
				for _, r := range found {
					if r["status"] != "enabled" {
						return fmt.Errorf("router %v is %v: %v", r["name"], r["status"], r["error"])
					}
				}
			}
			return nil
		}()
		if err == nil {
			return
		}
		select {
		case <-c.proc.Done():
			t.Fatalf("traefik exited (%v) before it was ready: %v", c.proc.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("traefik not ready after %s: %v", readyTimeout, err)
		}
	}
}

func (c *cluster) middleware(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := traefiktest.GetJSON(c.client, c.internal+"/api/http/middlewares/"+namespace+"-"+name+"@kubernetescrd", &m); err != nil {
		t.Fatalf("middleware %s: %v", name, err)
	}
	return m
}

// dig walks nested maps (keys compared case-insensitively, as Traefik's decoding does).
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		var next any
		for mk, mv := range m {
			if strings.EqualFold(mk, k) {
				next = mv
			}
		}
		v = next
	}
	return v
}

func (c *cluster) token(t *testing.T, azp string) string {
	t.Helper()
	claims, err := c.iss.Claims("svc")
	if err != nil {
		t.Fatal(err)
	}
	claims["azp"] = azp
	tok, err := c.iss.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (c *cluster) get(t *testing.T, url, token string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return answer{res.StatusCode, res.Header, body}
}

func TestCRDProvider(t *testing.T) {
	c := start(t)
	rs := c.routers(t)

	t.Run("routers built from the IngressRoutes", func(t *testing.T) {
		want := map[string]struct {
			entryPoint, rule, service string
			middlewares               []string
			tls                       bool
		}{
			"api-v1": {"websecure", "PathPrefix(`/api/v1/`)", "", []string{"pavilion-api-chain@kubernetescrd"}, true},
			"health": {"websecure", "Path(`/health`)", "noop@internal", []string{"pavilion-security-headers@kubernetescrd", "pavilion-health@kubernetescrd"}, true},
		}
		for ir, w := range want {
			found := routerOf(rs, ir)
			if len(found) != 1 {
				t.Fatalf("IngressRoute %s: %d routers, want 1", ir, len(found))
			}
			r := found[0]
			t.Logf("router %v: entryPoints=%v rule=%v middlewares=%v service=%v tls=%v status=%v",
				r["name"], r["entryPoints"], r["rule"], r["middlewares"], r["service"], r["tls"], r["status"])
			if fmt.Sprint(r["entryPoints"]) != "["+w.entryPoint+"]" || r["rule"] != w.rule || (w.service != "" && r["service"] != w.service) {
				t.Errorf("router %v = %v %v -> %v, want [%s] %s -> %s", r["name"], r["entryPoints"], r["rule"], r["service"], w.entryPoint, w.rule, w.service)
			}
			if fmt.Sprint(r["middlewares"]) != fmt.Sprint(w.middlewares) {
				t.Errorf("router %v middlewares %v, want %v", r["name"], r["middlewares"], w.middlewares)
			}
			if w.tls && r["tls"] == nil {
				t.Errorf("router %v has no TLS", r["name"])
			}
		}
		internal := routerOf(rs, "internal")
		if len(internal) != 2 {
			t.Fatalf("IngressRoute internal: %d routers, want 2", len(internal))
		}
		for _, r := range internal {
			t.Logf("router %v: entryPoints=%v rule=%v middlewares=%v service=%v status=%v",
				r["name"], r["entryPoints"], r["rule"], r["middlewares"], r["service"], r["status"])
			if fmt.Sprint(r["entryPoints"]) != "[traefik]" {
				t.Errorf("router %v on %v, want only the internal entry point", r["name"], r["entryPoints"])
			}
		}
	})

	t.Run("middlewares with plugin options and resolved secrets", func(t *testing.T) {
		suite := c.middleware(t, "pavilion")
		opts, _ := json.Marshal(dig(suite, "plugin", "pavilion"))
		t.Logf("middleware pavilion-pavilion@kubernetescrd: type=%v status=%v plugin.pavilion=%s",
			suite["type"], suite["status"], strings.ReplaceAll(string(opts), c.redisPass, "<secret>"))
		if suite["status"] != "enabled" {
			t.Errorf("pavilion middleware %v: %v", suite["status"], suite["error"])
		}
		if got := dig(suite, "plugin", "pavilion", "jwt", "issuer"); got != c.iss.IssuerURL() {
			t.Errorf("jwt.issuer = %v, want %s", got, c.iss.IssuerURL())
		}
		if got := dig(suite, "plugin", "pavilion", "rateLimit", "redis", "password"); got != c.redisPass {
			t.Errorf("rateLimit.redis.password = %v, want the value of Secret pavilion-redis (urn:k8s:secret resolved)", got)
		}
		health := c.middleware(t, "health")
		if got := dig(health, "plugin", "pavilion", "health", "redis", "password"); got != c.redisPass {
			t.Errorf("health.redis.password = %v, want the Secret's value", got)
		}
		chain := c.middleware(t, "api-chain")
		t.Logf("middleware pavilion-api-chain@kubernetescrd: chain=%v", dig(chain, "chain", "middlewares"))
		if got := fmt.Sprint(dig(chain, "chain", "middlewares")); got != "[pavilion-security-headers@kubernetescrd pavilion-cors@kubernetescrd pavilion-compress@kubernetescrd pavilion-pavilion@kubernetescrd pavilion-body-limit@kubernetescrd]" {
			t.Errorf("api-chain = %s", got)
		}
		for _, name := range []string{"security-headers", "cors", "compress", "body-limit", "health", "pavilion-metrics"} {
			if m := c.middleware(t, name); m["status"] != "enabled" {
				t.Errorf("middleware %s: %v %v", name, m["status"], m["error"])
			}
		}
		if got, _ := dig(c.middleware(t, "security-headers"), "headers", "stsSeconds").(float64); got != 31536000 {
			t.Errorf("security-headers stsSeconds = %v", got)
		}
	})

	t.Run("Core Broker service: EndpointSlice address, h2c, servers transport", func(t *testing.T) {
		routers := routerOf(rs, "api-v1")
		if len(routers) != 1 {
			t.Fatalf("api-v1 routers: %v", routers)
		}
		name := fmt.Sprint(routers[0]["service"]) + "@kubernetescrd"
		var svc map[string]any
		if err := traefiktest.GetJSON(c.client, c.internal+"/api/http/services/"+name, &svc); err != nil {
			t.Fatal(err)
		}
		lb, _ := svc["loadBalancer"].(map[string]any)
		t.Logf("service %s: servers=%v serversTransport=%v passHostHeader=%v serverStatus=%v status=%v",
			name, lb["servers"], lb["serversTransport"], lb["passHostHeader"], svc["serverStatus"], svc["status"])
		wantURL := "h2c://" + strings.TrimPrefix(c.broker.URL, "http://")
		servers, _ := lb["servers"].([]any)
		if len(servers) != 1 || dig(servers[0], "url") != wantURL {
			t.Errorf("servers = %v, want one at %s", lb["servers"], wantURL)
		}
		if lb["serversTransport"] != "pavilion-core-broker@kubernetescrd" {
			t.Errorf("serversTransport = %v", lb["serversTransport"])
		}
	})

	t.Run("TLSOption default: TLS 1.3 only, SNI strict, certificate from the Secret", func(t *testing.T) {
		addr := strings.TrimPrefix(c.https, "https://")
		cfg := c.client.Transport.(*http.Transport).TLSClientConfig.Clone()
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatalf("TLS 1.3 handshake: %v", err)
		}
		st := conn.ConnectionState()
		_ = conn.Close()
		pem, _ := os.ReadFile(c.certs.Cert)
		leaf, _ := tls.X509KeyPair(pem, mustRead(t, c.certs.Key))
		if st.Version != tls.VersionTLS13 || string(st.PeerCertificates[0].Raw) != string(leaf.Certificate[0]) {
			t.Errorf("negotiated %s with %q, want TLS 1.3 with the Secret's certificate", tls.VersionName(st.Version), st.PeerCertificates[0].Subject)
		}
		old := cfg.Clone()
		old.MaxVersion = tls.VersionTLS12
		if conn, err := tls.Dial("tcp", addr, old); err == nil {
			_ = conn.Close()
			t.Errorf("TLS 1.2 handshake succeeded, want it refused (TLSOption minVersion)")
		}
		other := cfg.Clone()
		other.ServerName = "not-covered.example"
		other.InsecureSkipVerify = true
		if conn, err := tls.Dial("tcp", addr, other); err == nil {
			_ = conn.Close()
			t.Errorf("handshake with an unknown SNI succeeded, want it refused (sniStrict)")
		}
	})

	t.Run("requests through the gateway", func(t *testing.T) {
		a := c.get(t, c.https+"/api/v1/accounts", "")
		if a.status != http.StatusUnauthorized || !strings.Contains(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("no token: %d %q, want 401 with WWW-Authenticate Bearer", a.status, a.header.Get("WWW-Authenticate"))
		}
		if !strings.Contains(a.header.Get("Strict-Transport-Security"), "max-age=31536000") {
			t.Errorf("401 without HSTS: %v", a.header)
		}
		a = c.get(t, c.https+"/api/v1/accounts", c.token(t, client+"-ok"))
		if a.status != http.StatusOK {
			t.Fatalf("valid token: %d %s", a.status, a.body)
		}
		seen := echo.Decode(t, a.body)
		if seen.Proto != "HTTP/2.0" || seen.Headers.Get("X-Auth-Client") != client+"-ok" || seen.Headers.Get("X-Request-Id") == "" {
			t.Errorf("upstream saw proto %s, X-Auth-Client %q, X-Request-Id %q; want HTTP/2.0 (h2c), the token's azp, an id",
				seen.Proto, seen.Headers.Get("X-Auth-Client"), seen.Headers.Get("X-Request-Id"))
		}
		if a.header.Get("X-Ratelimit-Limit") != "100" {
			t.Errorf("X-RateLimit-Limit = %q, want the manifest's 100", a.header.Get("X-Ratelimit-Limit"))
		}
		if a := c.get(t, c.https+"/other", ""); a.status != http.StatusNotFound {
			t.Errorf("unrouted path: %d, want 404 (no catch-all)", a.status)
		}

		var h struct {
			Status string                      `json:"status"`
			Checks map[string][]map[string]any `json:"checks"`
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			a = c.get(t, c.https+"/health", "")
			_ = json.Unmarshal(a.body, &h)
			if a.status == http.StatusOK && h.Status == "pass" || time.Now().After(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		var checks []string
		for k := range h.Checks {
			checks = append(checks, k)
		}
		sort.Strings(checks)
		t.Logf("/health: %d status=%s checks=%v", a.status, h.Status, checks)
		if a.status != http.StatusOK || h.Status != "pass" || len(h.Checks) != 4 {
			t.Errorf("/health = %d %s, want 200 pass with certificate, core-broker, redis (password from the Secret) and jwks checks", a.status, a.body)
		}
	})

	t.Run("internal entry point: the ServiceMonitor's paths", func(t *testing.T) {
		paths := c.values.serviceMonitorPaths(t)
		for _, p := range paths {
			a := c.get(t, c.internal+p, "")
			if a.status != http.StatusOK || !(strings.Contains(string(a.body), "traefik_") || strings.Contains(string(a.body), "pavilion_")) {
				t.Errorf("internal %s: %d, want 200 with Prometheus series", p, a.status)
			}
			if a := c.get(t, c.https+p, ""); a.status != http.StatusNotFound {
				t.Errorf("public %s: %d, want 404", p, a.status)
			}
		}
	})

	t.Run("a changed Middleware is picked up through the watch", func(t *testing.T) {
		var suite map[string]any
		for _, m := range c.manifests {
			if m.Kind() == "Middleware" && m.Name() == "pavilion" {
				b, _ := json.Marshal(m.Object)
				_ = json.Unmarshal(b, &suite)
			}
		}
		rl, _ := dig(suite, "spec", "plugin", "pavilion", "rateLimit").(map[string]any)
		if rl == nil {
			t.Fatal("no rateLimit section in the pavilion Middleware")
		}
		rl["limits"] = []any{map[string]any{"requests": 3, "window": "60s"}}
		if err := c.api.Put(suite); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			limits := dig(c.middleware(t, "pavilion"), "plugin", "pavilion", "rateLimit", "limits")
			if fmt.Sprint(limits) == "[map[requests:3 window:60s]]" {
				t.Logf("after the MODIFIED event Traefik's API shows rateLimit.limits=%v", limits)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Traefik still shows limits %v 30s after the watch event", limits)
			}
			time.Sleep(200 * time.Millisecond)
		}
		tok := c.token(t, client+"-limited")
		var statuses []int
		var last answer
		deadline = time.Now().Add(20 * time.Second)
		for len(statuses) < 4 {
			last = c.get(t, c.https+"/api/v1/accounts", tok)
			if last.status == http.StatusOK && last.header.Get("X-Ratelimit-Limit") != "3" {
				// a request still on the old router: not counted against the new limit
				if time.Now().After(deadline) {
					t.Fatalf("the new limit never applied: X-RateLimit-Limit %q", last.header.Get("X-Ratelimit-Limit"))
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			statuses = append(statuses, last.status)
		}
		t.Logf("4 requests with one token under the new limit: %v, Retry-After %q", statuses, last.header.Get("Retry-After"))
		if fmt.Sprint(statuses) != "[200 200 200 429]" || last.header.Get("Retry-After") == "" {
			t.Errorf("statuses %v (Retry-After %q), want [200 200 200 429] with Retry-After", statuses, last.header.Get("Retry-After"))
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		noAuth := redis.NewClient(&redis.Options{Addr: c.rds.Addr()})
		defer noAuth.Close()
		if err := noAuth.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Errorf("redis without password: %v, want NOAUTH (requirepass)", err)
		}
		rdb := redis.NewClient(&redis.Options{Addr: c.rds.Addr(), Password: c.redisPass})
		defer rdb.Close()
		keys, err := rdb.Keys(ctx, "ptb:rl:*").Result()
		if err != nil || len(keys) == 0 {
			t.Errorf("rate-limit keys in Redis: %v %v, want some (the plugin authenticated with the Secret's password)", keys, err)
		}
	})

	t.Run("a rotated Secret reaches the plugin through the watch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rdb := redis.NewClient(&redis.Options{Addr: c.rds.Addr(), Password: c.redisPass})
		defer rdb.Close()
		rotated := randomHex(t, 16)
		if err := rdb.ConfigSet(ctx, "requirepass", rotated).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.api.Put(map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
			"metadata": map[string]any{"name": "pavilion-redis", "namespace": namespace},
			"data":     map[string]any{"password": base64.StdEncoding.EncodeToString([]byte(rotated))}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for dig(c.middleware(t, "pavilion"), "plugin", "pavilion", "rateLimit", "redis", "password") != rotated {
			if time.Now().After(deadline) {
				t.Fatal("Traefik still has the old password 30s after the Secret changed")
			}
			time.Sleep(200 * time.Millisecond)
		}
		a := c.get(t, c.https+"/api/v1/accounts", c.token(t, client+"-rotated"))
		if a.status != http.StatusOK {
			t.Fatalf("after the rotation: %d %s", a.status, a.body)
		}
		after := redis.NewClient(&redis.Options{Addr: c.rds.Addr(), Password: rotated})
		defer after.Close()
		keys, err := after.Keys(ctx, "*"+client+"-rotated*").Result()
		t.Logf("after the Secret changed, Traefik's API shows the new password and Redis holds %v", keys)
		if err != nil || len(keys) == 0 {
			t.Errorf("no rate-limit key for the request after the rotation (%v): the plugin did not count in Redis with the new password", err)
		}
	})

	t.Run("the stand-in API saw only authenticated list and watch requests", func(t *testing.T) {
		reqs, unauth := c.api.Requests()
		if unauth != 0 {
			t.Errorf("%d requests without the token", unauth)
		}
		for _, p := range []string{
			"GET GET /apis/traefik.io/v1alpha1/namespaces/pavilion/middlewares",
			"GET WATCH /apis/traefik.io/v1alpha1/namespaces/pavilion/middlewares",
			"GET GET /api/v1/namespaces/pavilion/secrets",
			"GET GET /apis/discovery.k8s.io/v1/namespaces/pavilion/endpointslices",
		} {
			if reqs[p] == 0 {
				t.Errorf("no %s", p)
			}
		}
		var seen []string
		for p := range reqs {
			seen = append(seen, strings.TrimPrefix(p, "GET "))
		}
		sort.Strings(seen)
		t.Logf("stand-in API requests: %s", strings.Join(seen, ", "))
	})
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// helmValues is the part of deploy/kubernetes/helm-values.yaml the test turns into Traefik's
// static configuration.
type helmValues struct {
	Experimental struct {
		AbortOnPluginFailure bool `yaml:"abortOnPluginFailure"`
		LocalPlugins         map[string]struct {
			ModuleName string `yaml:"moduleName"`
			Type       string `yaml:"type"`
			MountPath  string `yaml:"mountPath"`
			VolumeName string `yaml:"volumeName"`
			SubPath    string `yaml:"subPath"`
		} `yaml:"localPlugins"`
	} `yaml:"experimental"`
	API struct {
		Dashboard bool `yaml:"dashboard"`
	} `yaml:"api"`
	Ports map[string]*struct {
		Expose map[string]bool `yaml:"expose"`
	} `yaml:"ports"`
	Providers struct {
		KubernetesCRD struct {
			Namespaces          []string `yaml:"namespaces"`
			AllowCrossNamespace bool     `yaml:"allowCrossNamespace"`
			AllowEmptyServices  bool     `yaml:"allowEmptyServices"`
		} `yaml:"kubernetesCRD"`
	} `yaml:"providers"`
	Metrics struct {
		Prometheus struct {
			EntryPoint string `yaml:"entryPoint"`
		} `yaml:"prometheus"`
	} `yaml:"metrics"`
	ExtraObjects []map[string]any `yaml:"extraObjects"`
	Volumes      []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		Type      string `yaml:"type"`
	} `yaml:"volumes"`
	Deployment struct {
		InitContainers []struct {
			Command      []string `yaml:"command"`
			VolumeMounts []struct {
				Name      string `yaml:"name"`
				MountPath string `yaml:"mountPath"`
			} `yaml:"volumeMounts"`
		} `yaml:"initContainers"`
		AdditionalVolumes []struct {
			Name string `yaml:"name"`
		} `yaml:"additionalVolumes"`
	} `yaml:"deployment"`
}

func loadHelmValues(root string) (helmValues, error) {
	var v helmValues
	b, err := os.ReadFile(filepath.Join(root, Dir, "helm-values.yaml"))
	if err != nil {
		return v, err
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("helm-values.yaml: %w", err)
	}
	return v, nil
}

func (v helmValues) serviceMonitorPaths(t *testing.T) []string {
	t.Helper()
	var paths []string
	for _, o := range v.ExtraObjects {
		if o["kind"] != "ServiceMonitor" {
			continue
		}
		eps, _ := dig(o, "spec", "endpoints").([]any)
		for _, ep := range eps {
			if dig(ep, "port") != "traefik" {
				t.Errorf("ServiceMonitor endpoint %v is not on the internal port traefik", ep)
			}
			p, _ := dig(ep, "path").(string)
			paths = append(paths, p)
		}
	}
	if fmt.Sprint(paths) != "[/metrics /plugin-metrics]" {
		t.Errorf("ServiceMonitor paths %v, want /metrics and /plugin-metrics", paths)
	}
	return paths
}

// TestHelmValues checks what the static configuration above cannot show: the internal entry
// point is off the public Service, and every Middleware plugin of the manifests is a local
// plugin of the values, mounted where Traefik looks for its module.
func TestHelmValues(t *testing.T) {
	root := pluginharness.RepoRoot()
	v, err := loadHelmValues(root)
	if err != nil {
		t.Fatal(err)
	}
	if p := v.Ports["traefik"]; p == nil || p.Expose["default"] {
		t.Errorf("ports.traefik.expose.default must be false (internal entry point off the public Service)")
	}
	if p := v.Ports["websecure"]; p == nil || !p.Expose["default"] {
		t.Errorf("ports.websecure must be on the public Service")
	}
	if v.Metrics.Prometheus.EntryPoint != "traefik" || !v.Experimental.AbortOnPluginFailure {
		t.Errorf("metrics on %q, abortOnPluginFailure %t: want traefik, true", v.Metrics.Prometheus.EntryPoint, v.Experimental.AbortOnPluginFailure)
	}
	// The init container fills a volume of the pod from the image's plugin tree; every local
	// plugin mounts that volume (at its sub-directory) where Traefik looks for its module.
	volumes := map[string]bool{}
	for _, av := range v.Deployment.AdditionalVolumes {
		volumes[av.Name] = true
	}
	filled := map[string]bool{}
	for _, ic := range v.Deployment.InitContainers {
		for _, vm := range ic.VolumeMounts {
			if strings.Contains(strings.Join(ic.Command, " "), "/plugins-local/src/"+pluginharness.RootModule+"/. "+vm.MountPath) {
				filled[vm.Name] = true
			}
		}
	}
	for name, p := range v.Experimental.LocalPlugins {
		sub := strings.TrimPrefix(strings.TrimPrefix(p.ModuleName, pluginharness.RootModule), "/")
		if p.Type != "localPath" || p.MountPath != "/plugins-local/src/"+p.ModuleName || p.SubPath != sub {
			t.Errorf("local plugin %s: type %q mountPath %q subPath %q, want localPath at /plugins-local/src/%s, subPath %q", name, p.Type, p.MountPath, p.SubPath, p.ModuleName, sub)
		}
		if !volumes[p.VolumeName] || !filled[p.VolumeName] {
			t.Errorf("local plugin %s: volume %q is not an additional volume filled by an init container from the image's plugin tree", name, p.VolumeName)
		}
	}
	certDir := ""
	for _, vol := range v.Volumes {
		if vol.Name == "pavilion-gateway-tls" && vol.Type == "secret" {
			certDir = vol.MountPath
		}
	}
	if certDir == "" || !strings.HasPrefix(prodCertPath, certDir+"/") {
		t.Errorf("the TLS Secret is mounted at %q; the health middleware reads %s", certDir, prodCertPath)
	}
	ms, err := Load(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Kind() != "Middleware" {
			continue
		}
		plugins, _ := dig(m.Object, "spec", "plugin").(map[string]any)
		for name := range plugins {
			if _, ok := v.Experimental.LocalPlugins[name]; !ok {
				t.Errorf("%s: Middleware %s uses plugin %q, which helm-values.yaml does not load", m.File, m.Name(), name)
			}
		}
	}
}
