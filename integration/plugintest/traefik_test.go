package plugintest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

var jwtPlugins = map[string]string{"jwtauth": jwtImport}

// pluginMiddleware renders one middleware using a local plugin (see traefiktest).
func pluginMiddleware(name, plugin string, cfg map[string]any) string {
	return traefiktest.PluginMiddleware(name, plugin, cfg)
}

// TestJWTAuthThroughTraefik runs the same case table through a real Traefik that loads
// jwtauth as a local plugin from the working tree: one router and middleware per case.
func TestJWTAuthThroughTraefik(t *testing.T) {
	iss := startIssuer(t)
	up := echo.Start(t, "core-broker-1")
	cases := jwtCases()
	var dyn bytes.Buffer
	dyn.WriteString("http:\n  routers:\n")
	var routers []string
	for i := range cases {
		fmt.Fprintf(&dyn, "    case%d:\n      entryPoints: [web]\n      rule: PathPrefix(`/c%d/`)\n      middlewares: [auth%d]\n      service: upstream\n", i, i, i)
		routers = append(routers, fmt.Sprintf("case%d@file", i))
	}
	dyn.WriteString("  middlewares:\n")
	for i, tc := range cases {
		dyn.WriteString(pluginMiddleware(fmt.Sprintf("auth%d", i), "jwtauth", merge(baseConfig(iss), tc.config)))
	}
	fmt.Fprintf(&dyn, "  services:\n    upstream:\n      loadBalancer:\n        servers:\n          - url: %q\n", up.URL)

	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn.String(), Plugins: jwtPlugins, WaitRouters: routers})
	// The cases' time claims are relative to when the table is made (an exp 10 s ago passes
	// within the 30 s leeway), and Traefik's start may take that long on a slow machine: the
	// table again, now. Its configurations do not depend on the time.
	cases = jwtCases()
	client := &http.Client{Timeout: 10 * time.Second}
	for i, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/c%d/api/v1/things", gw.URL, i), nil)
			if tc.request != nil {
				tc.request(t, iss, req)
			}
			auth := req.Header.Get("Authorization")
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", res.StatusCode, tc.status, body)
			}
			if tc.challenge != "" {
				if got := res.Header.Get("WWW-Authenticate"); !matchStar(got, tc.challenge) {
					t.Fatalf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
			}
			if tc.status != 200 {
				checkErrorBody(t, res, body, tc.errorCode, tc.why, auth)
				return
			}
			seen := echo.Decode(t, body)
			if seen.Instance != "core-broker-1" {
				t.Fatalf("answer did not come from the upstream: %s", body)
			}
			for name, want := range tc.upstream {
				got := seen.Headers.Values(name)
				if want == "" {
					if len(got) != 0 {
						t.Fatalf("upstream saw %s = %q, want it absent", name, got)
					}
					continue
				}
				if len(got) != 1 || !matchStar(got[0], want) {
					t.Fatalf("upstream saw %s = %q, want exactly %q", name, got, want)
				}
			}
		})
	}
}

// TestJWTAuthTraefikRotationOutageAndBrokenConfig: key rotation and an IdP outage with a
// running Traefik, and a configuration without issuer that must not serve its route.
func TestJWTAuthTraefikRotationOutageAndBrokenConfig(t *testing.T) {
	iss := startIssuer(t)
	up := echo.Start(t, "core-broker-1")
	dyn := "http:\n  routers:\n" +
		"    api:\n      entryPoints: [web]\n      rule: PathPrefix(`/api/`)\n      middlewares: [auth]\n      service: upstream\n" +
		"    broken:\n      entryPoints: [web]\n      rule: PathPrefix(`/broken/`)\n      middlewares: [noissuer]\n      service: upstream\n" +
		"  middlewares:\n" +
		pluginMiddleware("auth", "jwtauth", map[string]any{"issuer": iss.IssuerURL(), "audiences": []any{"core-broker"}, "minRefreshInterval": "1s"}) +
		pluginMiddleware("noissuer", "jwtauth", map[string]any{"audiences": []any{"core-broker"}}) +
		fmt.Sprintf("  services:\n    upstream:\n      loadBalancer:\n        servers:\n          - url: %q\n", up.URL)
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: jwtPlugins, WaitRouters: []string{"api@file"}})
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gw.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	first := token(t, iss, nil)
	if c, body := get("/api/v1/x", first); c != 200 {
		t.Fatalf("valid token: %d %s", c, body)
	}

	t.Run("key rotated at the issuer: accepted without restarting Traefik", func(t *testing.T) {
		oldKID := iss.CurrentKID()
		kid, err := iss.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		if kid == oldKID {
			t.Fatal("rotation kept the kid")
		}
		if c, body := get("/api/v1/x", token(t, iss, nil)); c != 200 {
			t.Fatalf("token signed with the new key: %d %s", c, body)
		}
		if c, _ := get("/api/v1/x", first); c != 200 {
			t.Fatalf("token of the old, still published key: %d", c)
		}
	})

	t.Run("issuer stopped: known keys still verify", func(t *testing.T) {
		if err := iss.Stop(); err != nil {
			t.Fatal(err)
		}
		defer iss.Start(iss.Addr())
		if c, body := get("/api/v1/x", token(t, iss, nil)); c != 200 {
			t.Fatalf("fresh token, known key, issuer down: %d %s", c, body)
		}
	})

	t.Run("config without issuer: error logged naming it, route not served", func(t *testing.T) {
		c, body := get("/broken/api/v1/x", token(t, iss, nil))
		if c == 200 || strings.Contains(body, "core-broker-1") {
			t.Fatalf("route with a broken jwtauth config was served: %d %s", c, body)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(gw.Logs(), "issuer: required") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(gw.Logs(), `jwtauth \"noissuer@file\": issuer: required`) && !strings.Contains(gw.Logs(), `jwtauth "noissuer@file": issuer: required`) {
			t.Fatalf("Traefik's log does not name the missing issuer option")
		}
	})
}

var _ = issuer.DefaultRealm
