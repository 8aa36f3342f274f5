package plugintest

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// TestSuiteEmptySectionsThroughTraefik: a suite section written as an empty map
// (`requestId: {}`, an empty TOML table) or as true turns the step on with its defaults,
// through a real Traefik's file provider, YAML and TOML. Traefik hands such a section over as
// "" (it used to fail with "'RequestID' expected a map, got 'string'").
func TestSuiteEmptySectionsThroughTraefik(t *testing.T) {
	iss := startIssuer(t)
	up := echo.Start(t, "core-broker-1")
	yaml := fmt.Sprintf(`http:
  routers:
    empty:
      entryPoints: [web]
      rule: PathPrefix(`+"`/empty/`"+`)
      middlewares: [empty]
      service: upstream
    on:
      entryPoints: [web]
      rule: PathPrefix(`+"`/on/`"+`)
      middlewares: [on]
      service: upstream
    auth:
      entryPoints: [web]
      rule: PathPrefix(`+"`/auth/`"+`)
      middlewares: [auth]
      service: upstream
  middlewares:
    empty:
      plugin:
        pavilion:
          requestId: {}
    on:
      plugin:
        pavilion:
          requestId: "true"
    auth:
      plugin:
        pavilion:
          requestId: {}
          jwt: {issuer: %q}
  services:
    upstream:
      loadBalancer:
        servers:
          - url: %q
`, iss.IssuerURL(), up.URL)
	toml := fmt.Sprintf(`[http.routers.empty]
  entryPoints = ["web"]
  rule = "PathPrefix(`+"`/empty/`"+`)"
  middlewares = ["empty"]
  service = "upstream"
[http.routers.on]
  entryPoints = ["web"]
  rule = "PathPrefix(`+"`/on/`"+`)"
  middlewares = ["on"]
  service = "upstream"
[http.routers.auth]
  entryPoints = ["web"]
  rule = "PathPrefix(`+"`/auth/`"+`)"
  middlewares = ["auth"]
  service = "upstream"
[http.middlewares.empty.plugin.pavilion.requestId]
[http.middlewares.on.plugin.pavilion]
  requestId = "true"
[http.middlewares.auth.plugin.pavilion.requestId]
[http.middlewares.auth.plugin.pavilion.jwt]
  issuer = %q
[[http.services.upstream.loadBalancer.servers]]
  url = %q
`, iss.IssuerURL(), up.URL)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, f := range []struct {
		name string
		toml bool
		dyn  string
	}{{"yaml", false, yaml}, {"toml", true, toml}} {
		t.Run(f.name, func(t *testing.T) {
			gw := traefiktest.Start(t, traefiktest.Options{
				Dynamic: f.dyn, DynamicTOML: f.toml, AbortOnPluginFailure: true,
				Plugins:     map[string]string{"pavilion": suiteImport},
				WaitRouters: []string{"empty@file", "on@file", "auth@file"},
			})
			client := &http.Client{Timeout: 10 * time.Second}
			for _, c := range []struct {
				path   string
				status int
			}{{"/empty/x", 200}, {"/on/x", 200}, {"/auth/x", 401}} {
				res, err := client.Get(gw.URL + c.path)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != c.status || !generated.MatchString(res.Header.Get("X-Request-Id")) {
					t.Errorf("%s: %d X-Request-Id %q, want %d with a generated id", c.path, res.StatusCode, res.Header.Get("X-Request-Id"), c.status)
				}
			}
		})
	}
}
