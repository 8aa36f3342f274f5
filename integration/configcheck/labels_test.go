package configcheck

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	gateway "github.com/pavilion-trust/gateway"
	"github.com/pavilion-trust/gateway/demo/certs/devca"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/plugins/health"
	"github.com/pavilion-trust/gateway/plugins/jwtauth"
	"github.com/pavilion-trust/gateway/plugins/ratelimit"
	"github.com/pavilion-trust/gateway/plugins/requestid"
	"github.com/pavilion-trust/gateway/plugins/resp"
	"github.com/traefik/paerser/file"
	"github.com/traefik/paerser/parser"
	"gopkg.in/yaml.v3"
)

const docMarker = "<!-- checked: labels example -->"

// docLabels returns the labels of the example in docs/docker-labels.md (the yaml block after
// docMarker), with the certificate file paths replaced by ca's files.
func docLabels(t *testing.T, ca devca.Files) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "docker-labels.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), docMarker)
	if !ok {
		t.Fatalf("docs/docker-labels.md: no %q", docMarker)
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal("docs/docker-labels.md: no yaml block after the marker")
	}
	block = strings.NewReplacer("/etc/traefik/certs/keycloak-ca.crt", ca.CACert, "/etc/traefik/certs/redis-ca.crt", ca.CACert,
		"/etc/traefik/certs/redis-client.crt", ca.Cert, "/etc/traefik/certs/redis-client.key", ca.Key).Replace(block)
	var cf composeFile
	if err := yaml.Unmarshal([]byte(block), &cf); err != nil {
		t.Fatal(err)
	}
	if len(cf.Services) != 1 {
		t.Fatalf("the example has %d services, want 1", len(cf.Services))
	}
	for _, svc := range cf.Services {
		lbls, err := labelMap(svc.Labels)
		if err != nil {
			t.Fatal(err)
		}
		return lbls
	}
	return nil
}

// labelPlugins decodes labels as Traefik's Docker provider does and returns each
// middleware's plugin options (middleware -> plugin name -> options).
func labelPlugins(t *testing.T, lbls map[string]string) map[string]map[string]map[string]any {
	t.Helper()
	var conf dynamicConfig
	conf.HTTP = &httpConfig{}
	if err := parser.Decode(lbls, &conf, parser.DefaultRootName, "traefik.http", "traefik.tcp", "traefik.udp", "traefik.tls.stores.default"); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]map[string]any{}
	for name, mw := range conf.HTTP.Middlewares {
		for p, opts := range mw.Plugin {
			if out[name] == nil {
				out[name] = map[string]map[string]any{}
			}
			out[name][p] = opts
		}
	}
	return out
}

// staticModules maps the local plugin names of static/traefik.yml to their module names.
func staticModules(t *testing.T) map[string]string {
	t.Helper()
	var static staticConfig
	if err := file.Decode(filepath.Join(repoRoot(t), "static", "traefik.yml"), &static); err != nil {
		t.Fatal(err)
	}
	// The standalone plugins under the names the static file's comment gives them: a user
	// declares them to use one alone.
	const root = "github.com/pavilion-trust/gateway"
	out := map[string]string{"jwtauth": root + "/plugins/jwtauth", "ratelimit": root + "/plugins/ratelimit", "requestid": root + "/plugins/requestid",
		"health": root + "/plugins/health"}
	for name, lp := range static.Experimental.LocalPlugins {
		out[name] = lp.ModuleName
	}
	return out
}

// traefikBuilders build each plugin as Traefik does (mapstructure, then New), compiled and
// under Yaegi.
func traefikBuilders(t *testing.T) map[string][]pluginharness.Builder {
	const root = "github.com/pavilion-trust/gateway"
	return map[string][]pluginharness.Builder{
		root:                        pluginharness.Both(t, root, gateway.CreateConfig, gateway.New),
		root + "/plugins/jwtauth":   pluginharness.Both(t, root+"/plugins/jwtauth", jwtauth.CreateConfig, jwtauth.New),
		root + "/plugins/ratelimit": pluginharness.Both(t, root+"/plugins/ratelimit", ratelimit.CreateConfig, ratelimit.New),
		root + "/plugins/requestid": pluginharness.Both(t, root+"/plugins/requestid", requestid.CreateConfig, requestid.New),
		root + "/plugins/health":    pluginharness.Both(t, root+"/plugins/health", health.CreateConfig, health.New),
	}
}

// buildAll decodes every plugin middleware of mws strictly (configcheck) and builds it as
// Traefik would, compiled and under Yaegi; it returns the strict decodings.
func buildAll(t *testing.T, mws map[string]map[string]map[string]any) map[string]any {
	t.Helper()
	modules := staticModules(t)
	builders := traefikBuilders(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing fetched, no Redis connection
	decoded := map[string]any{}
	for name, plugins := range mws {
		for p, opts := range plugins {
			mod := modules[p]
			if mod == "" {
				t.Fatalf("middleware %s: plugin %q is not in static/traefik.yml", name, p)
			}
			d, err := modulesCheck(mod).decode(opts)
			if err != nil {
				t.Errorf("middleware %s (plugin %s): strict decoding: %v", name, p, err)
				continue
			}
			decoded[name] = d
			if err := modulesCheck(mod).validate(opts, name+"@docker"); err != nil {
				t.Errorf("middleware %s (plugin %s): New: %v", name, p, err)
			}
			for _, b := range builders[mod] {
				if _, err := b.New(ctx, http.NotFoundHandler(), opts, name+"@docker"); err != nil {
					t.Errorf("middleware %s (plugin %s), %s as Traefik builds it: %v", name, p, b.Name, err)
				}
			}
		}
	}
	return decoded
}

func modulesCheck(mod string) pluginKind { return modules[mod] }

// TestLabelsDocExample: the complete labels example of docs/docker-labels.md decodes, as
// Traefik reads labels, into every plugin option it sets (strictly: no unknown key), and each
// middleware builds, compiled and under Yaegi; it sets every option of every plugin except
// the Redis credentials.
func TestLabelsDocExample(t *testing.T) {
	ca, err := devca.Generate(t.TempDir(), devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lbls := docLabels(t, ca)
	decoded := buildAll(t, labelPlugins(t, lbls))

	suite, _ := decoded["gateway"].(map[string]any)
	jc, _ := suite["jwt"].(*jwtauth.Config)
	rc, _ := suite["rateLimit"].(*ratelimit.Config)
	if jc == nil || rc == nil || suite["requestId"] == nil {
		t.Fatalf("gateway: sections %v", suite)
	}
	if want := []jwtauth.ClaimHeader{{Claim: "realm_access.roles", Header: "X-Auth-Roles"}, {Claim: "resource_access.core-broker.roles", Header: "X-Auth-Client-Roles"}}; !reflect.DeepEqual(jc.ClaimHeaderList, want) {
		t.Errorf("jwt.claimHeaderList %+v, want %+v", jc.ClaimHeaderList, want)
	}
	if jc.ClaimHeaders["preferred_username"] != "X-Auth-Username" || jc.CAFile != ca.CACert {
		t.Errorf("jwt: claimHeaders %v, caFile %q", jc.ClaimHeaders, jc.CAFile)
	}
	if len(rc.OverrideList) != 2 || rc.OverrideList[1].Client != "10.0.0.7" || rc.OverrideList[1].Limits[0] != (ratelimit.Limit{Requests: 10, Window: "1s"}) ||
		rc.OverrideList[0].Client != "partner.example" || len(rc.Overrides["partner-a"]) != 1 {
		t.Errorf("rateLimit: overrideList %+v, overrides %+v", rc.OverrideList, rc.Overrides)
	}
	hs, _ := decoded["health"].(map[string]any)
	if hc, _ := hs["health"].(*health.Config); hc == nil || len(hs) != 1 || hc.JWKSCAFile != ca.CACert || len(hc.Certificates) != 1 {
		t.Errorf("health (the suite's health section alone): %+v", decoded["health"])
	}
	if rid, _ := decoded["request-id"].(map[string]any); rid == nil || rid["requestId"] == nil {
		t.Errorf("request-id (requestId=true): %v", decoded["request-id"])
	}

	// Every option is written at least once (the Redis credentials are left to a secret).
	keys := map[string]bool{}
	for k := range lbls {
		for _, seg := range strings.Split(strings.ToLower(k), ".") {
			keys[strings.SplitN(seg, "[", 2)[0]] = true
		}
	}
	skip := map[string]bool{"username": true, "password": true}
	for section, v := range map[string]any{"jwt": jwtauth.Config{}, "rateLimit": ratelimit.Config{}, "rateLimit.redis": resp.Config{},
		"requestId": requestid.Config{}, "health": health.Config{}, "health.redis": resp.Config{}} {
		rt := reflect.TypeOf(v)
		for i := 0; i < rt.NumField(); i++ {
			if name := strings.ToLower(rt.Field(i).Name); !keys[name] && !skip[name] {
				t.Errorf("%s option %s is not in the labels example", section, rt.Field(i).Name)
			}
		}
	}
}

// TestLabelsDottedKeys: why the list forms exist. A claim path or a client key with dots
// written as a map key in labels is split by Traefik's parser: the configuration is refused
// (never silently applied otherwise), by the strict check and as Traefik builds it; the list
// forms of the same configuration are accepted. An empty label value turns a suite section on.
func TestLabelsDottedKeys(t *testing.T) {
	const (
		jwt = "traefik.http.middlewares.auth.plugin.jwtauth."
		rl  = "traefik.http.middlewares.rl.plugin.ratelimit."
		rid = "traefik.http.middlewares.rid.plugin.pavilion."
	)
	base := map[string]string{
		jwt + "issuer":            "https://kc.example/realms/pavilion",
		rl + "limits[0].requests": "5",
		rl + "limits[0].window":   "1s",
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	modules := staticModules(t)
	builders := traefikBuilders(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	// Map keys with dots: refused everywhere.
	broken := labelPlugins(t, with(map[string]string{
		jwt + "claimHeaders.realm_access.roles": "X-Auth-Roles",
		rl + "overrides.10.0.0.7[0].requests":   "50",
		rl + "overrides.10.0.0.7[0].window":     "1s",
	}))
	for name, plugins := range broken {
		for p, opts := range plugins {
			mod := modules[p]
			if _, err := modulesCheck(mod).decode(opts); err == nil {
				t.Errorf("%s: the strict check accepted %v", name, opts)
			}
			for _, b := range builders[mod] {
				if _, err := b.New(ctx, http.NotFoundHandler(), opts, name); err == nil {
					t.Errorf("%s (%s): Traefik's decoding and New accepted %v", name, b.Name, opts)
				}
			}
		}
	}

	// The list forms, and an empty suite section: accepted.
	decoded := buildAll(t, labelPlugins(t, with(map[string]string{
		jwt + "claimHeaderList[0].claim":                          "realm_access.roles",
		jwt + "claimHeaderList[0].header":                         "X-Auth-Roles",
		rl + "overrideList[0].client":                             "10.0.0.7",
		rl + "overrideList[0].limits[0].requests":                 "50",
		rl + "overrideList[0].limits[0].window":                   "1s",
		rid + "requestId":                                         "",
		"traefik.http.middlewares.rid2.plugin.pavilion.requestId": "true",
	})))
	if c, _ := decoded["auth"].(*jwtauth.Config); c == nil || len(c.ClaimHeaderList) != 1 || c.ClaimHeaderList[0].Claim != "realm_access.roles" {
		t.Errorf("auth: %+v", decoded["auth"])
	}
	if c, _ := decoded["rl"].(*ratelimit.Config); c == nil || len(c.OverrideList) != 1 || c.OverrideList[0].Client != "10.0.0.7" {
		t.Errorf("rl: %+v", decoded["rl"])
	}
	for _, name := range []string{"rid", "rid2"} {
		if s, _ := decoded[name].(map[string]any); s == nil || s["requestId"] == nil {
			t.Errorf("%s: %v", name, decoded[name])
		}
	}
}
