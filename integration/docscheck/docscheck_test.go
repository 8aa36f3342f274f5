package docscheck

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	gateway "github.com/pavilion-trust/gateway"
	"github.com/pavilion-trust/gateway/plugins/health"
	"github.com/pavilion-trust/gateway/plugins/jwtauth"
	"github.com/pavilion-trust/gateway/plugins/ratelimit"
	"github.com/pavilion-trust/gateway/plugins/requestid"
)

// reference is the configuration reference, relative to this package.
var reference = filepath.Join("..", "..", "docs", "configuration.md")

// plugin is one table of the reference and the options it must document.
type plugin struct {
	name    string
	options func(t *testing.T) []Option
	// applied are the defaults New applies to an option that CreateConfig leaves empty
	// (collections, because Traefik merges user lists and maps into non-nil defaults; list
	// items, which get no CreateConfig; the suite's metrics section). Where the plugin
	// exports its default, it is used; the others name the place in the code that applies them.
	applied map[string]string
}

func plugins() []plugin {
	return []plugin{
		{name: "jwtauth", options: of(jwtauth.CreateConfig()), applied: map[string]string{
			"algorithms":   "[RS256]", // plugins/jwtauth/config.go, compile
			"claimHeaders": Format(reflect.ValueOf(jwtauth.DefaultClaimHeaders())),
			"tokenTypes":   "[Bearer]", // plugins/jwtauth/config.go, compile
		}},
		{name: "ratelimit", options: of(ratelimit.CreateConfig()), applied: map[string]string{
			"sources": Format(reflect.ValueOf(ratelimit.DefaultSources())),
		}},
		{name: "requestid", options: of(requestid.CreateConfig())},
		{name: "health", options: of(health.CreateConfig()), applied: map[string]string{
			// plugins/health/config.go: defaultMinValidity, defaultTimeout, defaultRedisTimeout
			"certificates[].minValidity": "168h",
			"upstreams[].timeout":        "2s",
			"redis.timeout":              "1s",
		}},
		{name: "pavilion", options: suiteOptions, applied: map[string]string{
			"metrics.enabled": "true", // gateway.go, newMetrics
		}},
	}
}

func of(cfg any) func(t *testing.T) []Option {
	return func(t *testing.T) []Option {
		t.Helper()
		opts, problems := Options(cfg)
		for _, p := range problems {
			t.Error(p)
		}
		return opts
	}
}

// suiteOptions are the suite's sections and the options of its metrics section (the other
// sections hold the plugins' own options, documented in their tables).
func suiteOptions(t *testing.T) []Option {
	opts := of(gateway.CreateConfig())(t)
	for _, o := range of(&gateway.MetricsConfig{})(t) {
		o.Key = "metrics." + o.Key
		o.Field = "MetricsConfig." + o.Field
		opts = append(opts, o)
	}
	return opts
}

// TestConfigurationReference checks docs/configuration.md against the Config structs: an
// option added to a plugin without a row in its table fails here, as do a row for an option
// that does not exist and a documented default that is not the plugin's.
func TestConfigurationReference(t *testing.T) {
	md, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	tables, problems := Parse(string(md))
	for _, p := range problems {
		t.Errorf("%s: %s", reference, p)
	}
	want := map[string]bool{}
	for _, p := range plugins() {
		want[p.name] = true
		rows, ok := tables[p.name]
		if !ok {
			t.Errorf("%s: no table for %s (a line <!-- options: %s --> before it)", reference, p.name, p.name)
			continue
		}
		for _, problem := range Compare(p.name, p.options(t), rows, p.applied) {
			t.Errorf("%s: %s", reference, problem)
		}
	}
	for name := range tables {
		if !want[name] {
			t.Errorf("%s: table %q is no plugin this test knows; add it to plugins()", reference, name)
		}
	}
}

// sample is a Config as a plugin declares it, for the tests of the checker itself.
type sample struct {
	Address  string   `json:"address,omitempty"`
	JWKSURL  string   `json:"jwksUrl,omitempty"`
	Timeout  string   `json:"timeout,omitempty"`
	Sources  []string `json:"sources,omitempty"`
	Enabled  bool     `json:"enabled,omitempty"`
	PoolSize int      // no tag: poolSize
	Limits   []struct {
		Window string `json:"window,omitempty"`
	} `json:"limits,omitempty"`
	Redis struct {
		DB int `json:"db,omitempty"`
	} `json:"redis,omitempty"`
	Sentinel *struct {
		MasterName string `json:"masterName,omitempty"`
	} `json:"sentinel,omitempty"`
	hidden int // unexported: not an option
}

const sampleDoc = "# Sample\n\n<!-- options: sample -->\n" +
	"| option | default | meaning |\n|---|---|---|\n" +
	"| `address` | `127.0.0.1:6379` | where, with a `a|b` pipe in code |\n" +
	"| `jwksUrl` | — | discovery |\n" +
	"| `timeout` | `100ms` | bound |\n" +
	"| `sources` | `[header:X-Auth-Client, ip]` | applied in New |\n" +
	"| `enabled` | `false` | zero spelled out |\n" +
	"| `poolSize` | `16` | pool |\n" +
	"| `limits` | — | list |\n" +
	"| `limits[].window` | — | item |\n" +
	"| `redis` | — | struct |\n" +
	"| `redis.db` | `0` | nested |\n" +
	"| `sentinel` | — | pointer |\n" +
	"| `sentinel.masterName` | — | through a pointer |\n" +
	"\nText after the table.\n| `notInTable` | — | ignored |\n"

func sampleConfig() *sample {
	return &sample{Address: "127.0.0.1:6379", Timeout: "100ms", PoolSize: 16}
}

var sampleApplied = map[string]string{"sources": "[header:X-Auth-Client, ip]"}

func TestCheckerAcceptsMatchingReference(t *testing.T) {
	tables, problems := Parse(sampleDoc)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	opts, problems := Options(sampleConfig())
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if got := Compare("sample", opts, tables["sample"], sampleApplied); len(got) > 0 {
		t.Fatalf("a reference that matches got problems:\n%s", strings.Join(got, "\n"))
	}
	if len(tables["sample"]) != 12 {
		t.Fatalf("rows %+v, want the 12 of the table only", tables["sample"])
	}
}

// TestCheckerReportsDrift proves the checker fails on each kind of drift.
func TestCheckerReportsDrift(t *testing.T) {
	tests := []struct {
		desc string
		edit func(doc string) string
		cfg  func(c *sample)
		want string
	}{
		{desc: "option without a row", edit: func(d string) string { return strings.Replace(d, "| `poolSize` | `16` | pool |\n", "", 1) },
			want: "option `poolSize` (PoolSize) is not documented"},
		{desc: "nested option without a row", edit: func(d string) string { return strings.Replace(d, "| `redis.db` | `0` | nested |\n", "", 1) },
			want: "option `redis.db` (Redis.DB) is not documented"},
		{desc: "option behind a pointer without a row", edit: func(d string) string {
			return strings.Replace(d, "| `sentinel.masterName` | — | through a pointer |\n", "", 1)
		},
			want: "option `sentinel.masterName` (Sentinel.MasterName) is not documented"},
		{desc: "list item option without a row", edit: func(d string) string { return strings.Replace(d, "| `limits[].window` | — | item |\n", "", 1) },
			want: "option `limits[].window` (Limits[].Window) is not documented"},
		{desc: "row of no option", edit: func(d string) string {
			return strings.Replace(d, "| `redis` |", "| `redis.username` | — | gone |\n| `redis` |", 1)
		}, want: "`redis.username` (line 14) is documented but is no option"},
		{desc: "wrong default", cfg: func(c *sample) { c.Timeout = "250ms" },
			want: "`timeout` (line 8): documented default `100ms`, but the plugin's is `250ms`"},
		{desc: "default documented for an option without one", cfg: func(c *sample) { c.Address = "" },
			want: "`address` (line 6): documented default `127.0.0.1:6379`, but the plugin's is — (no default)"},
		{desc: "default missing from the reference", cfg: func(c *sample) { c.JWKSURL = "https://x" },
			want: "`jwksUrl` (line 7): documented default —, but the plugin's is `https://x`"},
		{desc: "applied default differs", edit: func(d string) string { return strings.Replace(d, "`[header:X-Auth-Client, ip]`", "`[ip]`", 1) },
			want: "`sources` (line 9): documented default `[ip]`, but the plugin's is `[header:X-Auth-Client, ip]`"},
		{desc: "wrong spelling", edit: func(d string) string { return strings.Replace(d, "`jwksUrl`", "`jwksURL`", 1) },
			want: "option `jwksUrl` (JWKSURL) is not documented (documented as `jwksURL`: spell it `jwksUrl`)"},
		{desc: "row twice", edit: func(d string) string {
			return strings.Replace(d, "| `poolSize` | `16` | pool |\n", "| `poolSize` | `16` | pool |\n| `poolSize` | `16` | again |\n", 1)
		},
			want: "`poolSize` is documented twice"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			doc := sampleDoc
			if tc.edit != nil {
				doc = tc.edit(doc)
			}
			cfg := sampleConfig()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			tables, problems := Parse(doc)
			opts, oprob := Options(cfg)
			problems = append(append(problems, oprob...), Compare("sample", opts, tables["sample"], sampleApplied)...)
			joined := strings.Join(problems, "\n")
			if !strings.Contains(joined, tc.want) {
				t.Fatalf("problems:\n%s\nwant one containing %q", joined, tc.want)
			}
		})
	}
}

// TestCheckerReportsAddedField is what happens when a plugin gains an option and the
// reference does not: the new field is reported by its key.
func TestCheckerReportsAddedField(t *testing.T) {
	type grown struct {
		Address          string `json:"address,omitempty"`
		FailedAuthBudget int    `json:"failedAuthBudget,omitempty"`
	}
	tables, _ := Parse(sampleDoc)
	opts, _ := Options(&grown{Address: "127.0.0.1:6379", FailedAuthBudget: 20})
	got := strings.Join(Compare("sample", opts, tables["sample"], sampleApplied), "\n")
	if !strings.Contains(got, "option `failedAuthBudget` (FailedAuthBudget) is not documented") {
		t.Fatalf("problems:\n%s", got)
	}
}

func TestMalformedRows(t *testing.T) {
	doc := "<!-- options: x -->\n| option | default | meaning |\n|---|---|---|\n" +
		"| address | — | no backquotes |\n| `a`, `b` | — | two keys |\n| `c` | 30s | bare default |\n| `d` | — |\n"
	_, problems := Parse(doc)
	joined := strings.Join(problems, "\n")
	for _, want := range []string{
		`line 4: option cell "address" is not one key in backquotes`,
		"line 5: option cell \"`a`, `b`\" is not one key in backquotes",
		`line 6: c: default cell "30s" is neither — nor one value in backquotes`,
		"line 7: a row needs option, default and meaning",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems:\n%s\nwant %q", joined, want)
		}
	}
}

func TestKeyOf(t *testing.T) {
	type tags struct {
		JWKSURL     string `json:"jwksUrl"`
		DialTimeout string
		TLS         bool
		JWKSTimeout string
		Wrong       string `json:"other"`
	}
	want := map[string][2]string{
		"JWKSURL":     {"jwksUrl", ""},
		"DialTimeout": {"dialTimeout", ""},
		"TLS":         {"tls", ""},
		"JWKSTimeout": {"jwksTimeout", ""},
		"Wrong":       {"other", `json tag "other" does not spell the field name`},
	}
	typ := reflect.TypeOf(tags{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		key, problem := KeyOf(f)
		w := want[f.Name]
		if key != w[0] || !strings.HasPrefix(problem, w[1]) || (w[1] == "") != (problem == "") {
			t.Errorf("KeyOf(%s) = %q, %q; want %q, %q…", f.Name, key, problem, w[0], w[1])
		}
	}
}
