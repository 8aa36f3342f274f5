package configcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the repository (integration/configcheck is two levels below it).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tempCopy copies the configuration the check reads into a temporary tree, applying edits
// (path relative to the root -> old string -> new string; old must occur exactly once).
func tempCopy(t *testing.T, edits map[string][][2]string) string {
	t.Helper()
	src, dst := repoRoot(t), t.TempDir()
	files := []string{"static/traefik.yml", "demo/docker-compose.yml", ".ci/keycloak"}
	entries, err := os.ReadDir(filepath.Join(src, "dynamic"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		files = append(files, "dynamic/"+e.Name())
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, ed := range edits[f] {
			if n := strings.Count(s, ed[0]); n != 1 {
				t.Fatalf("%s: %q occurs %d times, want 1 (the real file changed: adapt the test)", f, ed[0], n)
			}
			s = strings.Replace(s, ed[0], ed[1], 1)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for f, eds := range edits {
		if _, err := os.Stat(filepath.Join(src, f)); os.IsNotExist(err) { // a new file
			if err := os.WriteFile(filepath.Join(dst, f), []byte(eds[0][1]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

// wantProblem asserts that the check fails with one problem holding every fragment.
func wantProblem(t *testing.T, r *Report, fragments ...string) {
	t.Helper()
	if len(r.Problems) == 0 {
		t.Fatalf("the check passed, want a problem with %q; notes:\n%s", fragments, strings.Join(r.Notes, "\n"))
	}
	for _, p := range r.Problems {
		ok := true
		for _, f := range fragments {
			if !strings.Contains(p, f) {
				ok = false
			}
		}
		if ok {
			t.Logf("reported: %s", p)
			return
		}
	}
	t.Fatalf("no problem holds all of %q; problems:\n%s", fragments, strings.Join(r.Problems, "\n"))
}

func TestRealConfig(t *testing.T) {
	r := Check(Paths{Root: repoRoot(t)})
	for _, n := range r.Notes {
		t.Log("note:", n)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("the gateway's configuration fails the check:\n%v", err)
	}
	joined := strings.Join(r.Notes, "\n")
	for _, want := range []string{"local plugins pavilion", "middlewares from labels compared", "pavilion"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes lack %q", want)
		}
	}
	// One interpreter: the suite serves /health and /plugin-metrics too.
	for _, n := range r.Notes {
		if strings.Contains(n, ": local plugins ") && !strings.HasSuffix(n, ": local plugins pavilion") {
			t.Errorf("static/traefik.yml declares more than the suite: %s", n)
		}
	}
}

const gatewayYML = "dynamic/gateway.yml"
const composeYML = "demo/docker-compose.yml"

func TestMisspelledKeyInFile(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{gatewayYML: {
		{`            issuer: '{{ env "PAVILION_ISSUER_URL" }}'`, `            isuer: '{{ env "PAVILION_ISSUER_URL" }}'`},
	}})
	wantProblem(t, Check(Paths{Root: root}), gatewayYML, "isuer", "unknown option")
}

// TestMisspelledKeyInHealthSection: the suite's health section is decoded strictly into the
// health plugin's Config, and validated by its New.
func TestMisspelledKeyInHealthSection(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{gatewayYML: {
		{`            cacheFor: '{{ env "PAVILION_HEALTH_CACHE" | default "5s" }}'`, `            cacheFr: '{{ env "PAVILION_HEALTH_CACHE" | default "5s" }}'`},
	}})
	wantProblem(t, Check(Paths{Root: root}), gatewayYML, "health: cacheFr: unknown option")
	root = tempCopy(t, map[string][][2]string{gatewayYML: {
		{"                minValidity: 168h\n", "                minValidity: 7d\n"},
	}})
	wantProblem(t, Check(Paths{Root: root}), gatewayYML, `health: health "health@file": certificates[0].minValidity: invalid duration "7d"`)
}

func TestUnknownSuiteSectionInFile(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{gatewayYML: {
		{"          requestId:\n            header: X-Request-Id", "          requestID:\n            header: X-Request-Id\n          rateLimits:\n            algorithm: gcra"},
	}})
	wantProblem(t, Check(Paths{Root: root}), gatewayYML, "rateLimits", "unknown option")
}

func TestMisspelledKeyStandalonePlugin(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{"static/traefik.yml": {{"  localPlugins:\n", `  localPlugins:
    jwtauth:
      moduleName: github.com/pavilion-trust/gateway/plugins/jwtauth
    ratelimit:
      moduleName: github.com/pavilion-trust/gateway/plugins/ratelimit
`}}, "dynamic/extra.yml": {{"", `
http:
  middlewares:
    standalone-auth:
      plugin:
        jwtauth:
          issuer: '{{ env "PAVILION_ISSUER_URL" }}'
          requiredRole: [broker-user]
    standalone-limit:
      plugin:
        ratelimit:
          limits: [{requests: 10, window: 1s}]
          redis: {adress: 127.0.0.1:6379}
`}}})
	r := Check(Paths{Root: root})
	wantProblem(t, r, "dynamic/extra.yml", "standalone-auth", "requiredRole: unknown option")
	wantProblem(t, r, "dynamic/extra.yml", "standalone-limit", "redis.adress: unknown option")
}

func TestUnknownLabelKey(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"  traefik.http.middlewares.pavilion.plugin.pavilion.jwt.requiredRoles: broker-user\n",
			"  traefik.http.middlewares.pavilion.plugin.pavilion.jwt.requiredRoles: broker-user\n  traefik.http.middlewares.pavilion.plugin.pavilion.jwt.audiance: core-broker\n"},
	}})
	wantProblem(t, Check(Paths{Root: root}), composeYML, "audiance", "unknown option")
}

func TestInvalidLeewayInFile(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{gatewayYML: {
		{"            requiredRoles: [broker-user]\n", "            requiredRoles: [broker-user]\n            leeway: \"30\"\n"},
	}})
	// Decoding accepts the string; jwtauth's own validation (New) refuses it.
	wantProblem(t, Check(Paths{Root: root}), gatewayYML, `leeway: invalid duration "30"`)
}

func TestInvalidLeewayInLabels(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"  traefik.http.middlewares.pavilion.plugin.pavilion.jwt.requiredRoles: broker-user\n",
			"  traefik.http.middlewares.pavilion.plugin.pavilion.jwt.requiredRoles: broker-user\n  traefik.http.middlewares.pavilion.plugin.pavilion.jwt.leeway: \"30\"\n"},
	}})
	wantProblem(t, Check(Paths{Root: root}), composeYML, `leeway: invalid duration "30"`)
}

func TestLabelsDifferFromYAML(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"rateLimit.failurePolicy: local", "rateLimit.failurePolicy: open"},
		{"cors.headers.accessControlMaxAge: \"600\"", "cors.headers.accessControlMaxAge: \"60\""},
	}})
	r := Check(Paths{Root: root})
	wantProblem(t, r, `middleware "pavilion" differs`, `plugin.pavilion.rateLimit.failurePolicy: dynamic/ "local", labels "open"`)
	wantProblem(t, r, `middleware "cors" differs`, `headers.accessControlMaxAge: dynamic/ "600", labels "60"`)
}

func TestLabelsOnlyMiddleware(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"  traefik.http.middlewares.compress.compress.encodings: zstd,br,gzip\n",
			"  traefik.http.middlewares.compress.compress.encodings: zstd,br,gzip\n  traefik.http.middlewares.extra.plugin.requestid.header: X-Correlation-Id\n"},
	}})
	wantProblem(t, Check(Paths{Root: root}), `middleware "extra" is defined by the labels but by no file`)
}

func TestContainersDisagree(t *testing.T) {
	// One broker container with its own label set: Traefik would drop the conflicting middleware.
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"    command: go run ./demo/corebroker -addr 0.0.0.0:8181 -name core-broker-2\n    labels:\n      <<: *broker-labels\n",
			"    command: go run ./demo/corebroker -addr 0.0.0.0:8181 -name core-broker-2\n    labels:\n      <<: *broker-labels\n      traefik.http.middlewares.compress.compress.minResponseBodyBytes: \"2048\"\n"},
	}})
	wantProblem(t, Check(Paths{Root: root}), "labels of service core-broker-2", `middleware "compress" differs from its definition`)
}

func TestUnknownEnvironmentVariable(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{gatewayYML: {
		{"            failurePolicy: local", `            failurePolicy: '{{ env "PAVILION_FAILURE_POLICY" | default "local" }}'`},
	}})
	wantProblem(t, Check(Paths{Root: root}), gatewayYML, "PAVILION_FAILURE_POLICY", "no placeholder")
}

func TestLabelsUseAnotherPlugin(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"  traefik.http.middlewares.pavilion.plugin.pavilion.requestId.header: X-Request-Id\n",
			"  traefik.http.middlewares.pavilion.plugin.pavilion.requestId.header: X-Request-Id\n  traefik.http.middlewares.pavilion.plugin.requestid.header: X-Request-Id\n"},
	}})
	wantProblem(t, Check(Paths{Root: root}), `middleware "pavilion" differs`, "plugin: dynamic/ uses pavilion, labels use pavilion,requestid")
}

// withKubernetes copies deploy/kubernetes into root, applying edits to middlewares.yaml (old
// must occur exactly once).
func withKubernetes(t *testing.T, root string, edits ...[2]string) {
	t.Helper()
	src := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	dst := filepath.Join(root, "deploy", "kubernetes")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if e.Name() == "middlewares.yaml" {
			for _, ed := range edits {
				if n := strings.Count(s, ed[0]); n != 1 {
					t.Fatalf("middlewares.yaml: %q occurs %d times, want 1", ed[0], n)
				}
				s = strings.Replace(s, ed[0], ed[1], 1)
			}
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKubernetesManifestsChecked(t *testing.T) {
	root := tempCopy(t, nil)
	withKubernetes(t, root)
	r := Check(Paths{Root: root})
	if err := r.Err(); err != nil {
		t.Fatalf("deploy/kubernetes fails the check:\n%v", err)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "plugin options of Middleware pavilion, health, pavilion-metrics checked") {
		t.Errorf("notes do not show the Kubernetes middlewares checked:\n%s", strings.Join(r.Notes, "\n"))
	}
}

func TestMisspelledKeyInManifest(t *testing.T) {
	root := tempCopy(t, nil)
	withKubernetes(t, root, [2]string{"        requiredRoles: [broker-user]", "        requiredRole: [broker-user]"})
	wantProblem(t, Check(Paths{Root: root}), "deploy/kubernetes/middlewares.yaml", "Middleware pavilion", "requiredRole", "unknown option")
}

func TestMalformedSecretURNInManifest(t *testing.T) {
	root := tempCopy(t, nil)
	withKubernetes(t, root, [2]string{"          password: urn:k8s:secret:pavilion-redis:password\n        limits:", "          password: urn:k8s:secret:pavilion-redis\n        limits:"})
	wantProblem(t, Check(Paths{Root: root}), "deploy/kubernetes/middlewares.yaml", "rateLimit.redis.password", "urn:k8s:secret:<secret>:<key>")
}

func TestComposeInsecureAPI(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"      - --api.insecure=false", "      - --api.insecure=true"},
	}})
	wantProblem(t, Check(Paths{Root: root}), composeYML, "api.insecure", `"true", static "false"`)
}

func TestComposeRefusedByLoader(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"    profiles: [keycloak]", "    profiles: [keycloak]\n    healthcheks: {}"},
	}})
	wantProblem(t, Check(Paths{Root: root}), composeYML, "Compose loader refuses it", "healthcheks")
}

func TestComposeKeycloakVersion(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{composeYML: {
		{"quay.io/keycloak/keycloak:26.5.6", "quay.io/keycloak/keycloak:latest"},
	}})
	wantProblem(t, Check(Paths{Root: root}), composeYML, "keycloak image", ".ci/keycloak")
}

// TestRedisTopologyOptions: the Redis options (Sentinel with its own credentials, Cluster
// seeds, TLS) written in a dynamic file and as Docker labels (lists with [0]) decode strictly
// to the same configuration and pass the plugin's validation.
func TestRedisTopologyOptions(t *testing.T) {
	labels := []string{
		"sentinel-limit.plugin.pavilion.rateLimit.limits[0].requests: \"10\"",
		"sentinel-limit.plugin.pavilion.rateLimit.limits[0].window: 1s",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.sentinel.masterName: pavilion",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.sentinel.addresses[0]: 10.0.0.1:26379",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.sentinel.addresses[1]: 10.0.0.2:26379",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.sentinel.username: sentinel-user",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.sentinel.password: sentinel-pw",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.username: gw",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.password: gw-pw",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.tls: \"true\"",
		"sentinel-limit.plugin.pavilion.rateLimit.redis.tlsServerName: redis.internal",
		"cluster-limit.plugin.pavilion.rateLimit.limits[0].requests: \"10\"",
		"cluster-limit.plugin.pavilion.rateLimit.limits[0].window: 1s",
		"cluster-limit.plugin.pavilion.rateLimit.redis.cluster.addresses[0]: 10.0.1.1:6379",
		"cluster-limit.plugin.pavilion.rateLimit.redis.cluster.addresses[1]: 10.0.1.2:6379",
		"cluster-limit.plugin.pavilion.rateLimit.redis.poolSize: \"8\"",
	}
	var extra strings.Builder
	for _, l := range labels {
		extra.WriteString("  traefik.http.middlewares." + l + "\n")
	}
	anchor := "  traefik.http.middlewares.compress.compress.encodings: zstd,br,gzip\n"
	root := tempCopy(t, map[string][][2]string{
		composeYML: {{anchor, anchor + extra.String()}},
		"dynamic/extra.yml": {{"", `
http:
  middlewares:
    sentinel-limit:
      plugin:
        pavilion:
          rateLimit:
            limits: [{requests: 10, window: 1s}]
            redis:
              sentinel: {masterName: pavilion, addresses: [10.0.0.1:26379, 10.0.0.2:26379], username: sentinel-user, password: sentinel-pw}
              username: gw
              password: gw-pw
              tls: true
              tlsServerName: redis.internal
    cluster-limit:
      plugin:
        pavilion:
          rateLimit:
            limits: [{requests: 10, window: 1s}]
            redis: {cluster: {addresses: [10.0.1.1:6379, 10.0.1.2:6379]}, poolSize: 8}
`}}})
	r := Check(Paths{Root: root})
	if len(r.Problems) > 0 {
		t.Fatalf("problems:\n%s", strings.Join(r.Problems, "\n"))
	}
}

// TestRedisOptionErrors: a misspelled Redis option and an unreadable CA file are reported
// with the option's name.
func TestRedisOptionErrors(t *testing.T) {
	root := tempCopy(t, map[string][][2]string{"dynamic/extra.yml": {{"", `
http:
  middlewares:
    bad-limit:
      plugin:
        pavilion:
          rateLimit:
            limits: [{requests: 10, window: 1s}]
            redis: {sentinel: {mastername: x, adresses: [a:1]}, tlsCA: /nonexistent/ca.pem}
`}}})
	r := Check(Paths{Root: root})
	wantProblem(t, r, "bad-limit", "redis.sentinel.adresses: unknown option")
}
