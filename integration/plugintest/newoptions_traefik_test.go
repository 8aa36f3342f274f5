package plugintest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pavilion-trust/gateway/demo/certs/devca"
	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// TestNewOptionsThroughTraefik: jwt's claimHeaderList and caFile and rateLimit's overrideList,
// in the suite, through a real Traefik: the JWKS comes from an HTTPS endpoint of a private CA
// (the development CA), a dotted claim path reaches the upstream as a header, and the
// override list gives the client its own limit. The same middleware with the CA file of
// another CA fetches no key (401).
func TestNewOptionsThroughTraefik(t *testing.T) {
	iss := suiteIssuer(t)
	srv, files := httpsJWKS(t, iss.JWKSURL())
	other, err := devca.Generate(t.TempDir(), devca.Options{Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	rd := redistest.Start(t)
	up := echo.Start(t, "core-broker-1")
	suite := func(ca string) map[string]any {
		return map[string]any{
			"jwt": map[string]any{
				"issuer": iss.IssuerURL(), "jwksUrl": srv.URL + "/certs", "caFile": ca,
				"claimHeaderList": []any{
					map[string]any{"claim": "azp", "header": "X-Auth-Client"},
					map[string]any{"claim": "realm_access.roles", "header": "X-Roles"},
				},
			},
			"rateLimit": map[string]any{
				"redis":        map[string]any{"address": rd.Addr()},
				"keyPrefix":    "newopts-" + ca[len(ca)-12:],
				"limits":       []any{map[string]any{"requests": "3", "window": "1h"}},
				"overrideList": []any{map[string]any{"client": "svc", "limits": []any{map[string]any{"requests": "1", "window": "1h"}}}},
			},
		}
	}
	dyn := "http:\n  routers:\n"
	for _, r := range []string{"good", "wrongca"} {
		dyn += fmt.Sprintf("    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`/%s/`)\n      middlewares: [%s]\n      service: upstream\n", r, r, r)
	}
	dyn += "  middlewares:\n" + traefiktest.PluginMiddleware("good", "pavilion", suite(files.CACert)) +
		traefiktest.PluginMiddleware("wrongca", "pavilion", suite(other.CACert))
	dyn += fmt.Sprintf("  services:\n    upstream:\n      loadBalancer:\n        servers:\n          - url: %q\n", up.URL)
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: map[string]string{"pavilion": suiteImport},
		WaitRouters: []string{"good@file", "wrongca@file"}, AbortOnPluginFailure: true})

	svc, _ := iss.Token("svc")
	other2, _ := iss.Token("other")
	a := rlDo(t, gw.URL+"/good/api/v1/x", "Authorization", "Bearer "+svc)
	if a.code() != 200 || a.get("X-RateLimit-Limit") != "1" {
		t.Fatalf("svc: %d limit %q %s", a.code(), a.get("X-RateLimit-Limit"), a.body)
	}
	if seen := rlUpstreamSaw(t, a, "svc"); seen.Headers.Get("X-Roles") != "broker-user" {
		t.Fatalf("upstream X-Roles %q", seen.Headers.Get("X-Roles"))
	}
	if a := rlDo(t, gw.URL+"/good/api/v1/x", "Authorization", "Bearer "+svc); a.code() != 429 {
		t.Fatalf("svc over its override: %d", a.code())
	}
	if a := rlDo(t, gw.URL+"/good/api/v1/x", "Authorization", "Bearer "+other2); a.code() != 200 || a.get("X-RateLimit-Limit") != "3" {
		t.Fatalf("other: %d limit %q", a.code(), a.get("X-RateLimit-Limit"))
	}
	if a := rlDo(t, gw.URL+"/wrongca/api/v1/x", "Authorization", "Bearer "+svc); a.code() != 401 {
		t.Fatalf("caFile of another CA: %d %s", a.code(), a.body)
	}
}

// TestHealthJWKSCAFileThroughTraefik: the health plugin's jwks check trusts jwksCaFile
// through a real Traefik; without it the same check fails (the system roots do not know the
// development CA).
func TestHealthJWKSCAFileThroughTraefik(t *testing.T) {
	iss := startIssuer(t)
	srv, files := httpsJWKS(t, iss.JWKSURL())
	dyn := "http:\n  routers:\n"
	for _, r := range []string{"withca", "noca"} {
		dyn += fmt.Sprintf("    %s:\n      entryPoints: [web]\n      rule: Path(`/%s`)\n      middlewares: [%s]\n      service: noop@internal\n", r, r, r)
	}
	dyn += "  middlewares:\n" +
		traefiktest.PluginMiddleware("withca", "health", map[string]any{"jwks": []any{srv.URL + "/certs"}, "jwksCaFile": files.CACert, "cacheFor": "0s"}) +
		traefiktest.PluginMiddleware("noca", "health", map[string]any{"jwks": []any{srv.URL + "/certs"}, "cacheFor": "0s"})
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: map[string]string{"health": healthImport},
		WaitRouters: []string{"withca@file", "noca@file"}, AbortOnPluginFailure: true})
	for _, c := range []struct {
		path, status string
		code         int
	}{{"/withca", `"status":"pass"`, 200}, {"/noca", `"status":"fail"`, 503}} {
		a := rlDo(t, gw.URL+c.path)
		if a.code() != c.code || !strings.Contains(string(a.body), c.status) {
			t.Errorf("%s: %d %s, want %d with %s", c.path, a.code(), a.body, c.code, c.status)
		}
	}
}
