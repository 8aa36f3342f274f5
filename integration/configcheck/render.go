package configcheck

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"text/template"
)

// placeholder is the value the check gives an environment variable the dynamic files read
// (documented in the header of dynamic/gateway.yml and dynamic/tls.yml). Base is the
// deployment with only the required variables set ("" = unset, so the template's default
// applies); Alt sets every variable to another valid value. A decoded option that changes
// between the two is templated: the labels, which cannot template, may hold another value.
type placeholder struct {
	Name, Base, Alt string
}

var placeholders = []placeholder{
	// The issuer is a loopback address nothing listens on: jwtauth.New starts one discovery
	// fetch before it sees the cancelled context, and it must fail at once, without DNS.
	{"PAVILION_ISSUER_URL", "http://127.0.0.1:9/realms/pavilion", "http://127.0.0.1:9/realms/pavilion-alt"},
	{"PAVILION_REDIS_ADDR", "", "redis-alt.configcheck.invalid:6390"},
	{"PAVILION_BROKER_1_ADDR", "broker-1.configcheck.invalid:8181", "broker-1-alt.configcheck.invalid:9181"},
	{"PAVILION_BROKER_2_ADDR", "broker-2.configcheck.invalid:8182", "broker-2-alt.configcheck.invalid:9182"},
	{"PAVILION_RATE_REQUESTS", "", "250"},
	{"PAVILION_RATE_WINDOW", "", "2s"},
	{"PAVILION_AUTH_FAILURES", "", "30"},
	{"PAVILION_HEALTHCHECK_INTERVAL", "", "7s"},
	{"PAVILION_HEALTH_CACHE", "", "9s"},
	{"PAVILION_TLS_CERT", "/configcheck/certs/tls.crt", "/configcheck/alt/tls.crt"},
	{"PAVILION_TLS_KEY", "/configcheck/certs/tls.key", "/configcheck/alt/tls.key"},
	{"PAVILION_CORS_EXTRA_ORIGINS", "", "http://localhost:3000, http://127.0.0.1:3000"},
}

// envSet is one environment for rendering.
type envSet struct {
	label   string
	vals    map[string]string
	primary bool // the base environment: documentation notes are made once, with it
}

func baseEnv() envSet {
	e := envSet{label: "rendered with the required variables only", vals: map[string]string{}, primary: true}
	for _, p := range placeholders {
		if p.Base != "" {
			e.vals[p.Name] = p.Base
		}
	}
	return e
}

func altEnv() envSet {
	e := envSet{label: "rendered with every variable set", vals: map[string]string{}}
	for _, p := range placeholders {
		e.vals[p.Name] = p.Alt
	}
	return e
}

// variant is the base environment with one variable set to its Alt value.
func variant(name string) envSet {
	e := baseEnv()
	e.label = "rendered with " + name + " changed"
	e.primary = false
	for _, p := range placeholders {
		if p.Name == name {
			e.vals[name] = p.Alt
		}
	}
	return e
}

// funcNames are the template functions the check provides (Traefik provides all of sprig).
const funcNames = "env, default, quote, lower, upper, trim, splitList"

// render executes a dynamic file as Traefik's file provider does (text/template, sprig
// functions, data false), with env reading vals. It returns the variables the file read and
// those it read but the check has no placeholder for.
func render(name, content string, vals map[string]string) (out string, used, unknown []string, err error) {
	known := map[string]bool{}
	for _, p := range placeholders {
		known[p.Name] = true
	}
	seen := map[string]bool{}
	var unk []string
	funcs := template.FuncMap{
		"env": func(k string) string {
			if !seen[k] {
				seen[k] = true
				used = append(used, k)
				if !known[k] && strings.HasPrefix(k, "PAVILION_") {
					unk = append(unk, k)
				}
			}
			return vals[k]
		},
		// sprig's default: given when it is set and not empty, else d.
		"default": func(d any, given ...any) any {
			if len(given) == 0 || isEmpty(given[0]) {
				return d
			}
			return given[0]
		},
		"quote": func(s ...any) string {
			parts := make([]string, 0, len(s))
			for _, v := range s {
				if v != nil {
					parts = append(parts, fmt.Sprintf("%q", fmt.Sprint(v)))
				}
			}
			return strings.Join(parts, " ")
		},
		"lower": strings.ToLower,
		"upper": strings.ToUpper,
		"trim":  strings.TrimSpace,
		// sprig's splitList: strings.Split (an empty string gives one empty element).
		"splitList": func(sep, s string) []string { return strings.Split(s, sep) },
	}
	tmpl, err := template.New(name).Funcs(funcs).Parse(content)
	if err != nil {
		return "", nil, nil, fmt.Errorf("template: %w (the check provides %s; add what else the file uses to configcheck)", err, funcNames)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, false); err != nil {
		return "", nil, nil, fmt.Errorf("template: %w", err)
	}
	sort.Strings(used)
	return buf.String(), used, unk, nil
}

// isEmpty is sprig's notion of empty.
func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// headerMentions returns the PAVILION_* names in the leading comment block of a file.
func headerMentions(content string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(content, "\n") {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "#") {
			break
		}
		for _, f := range strings.FieldsFunc(t, func(r rune) bool {
			return !(r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) {
			if strings.HasPrefix(f, "PAVILION_") {
				out[f] = true
			}
		}
	}
	return out
}
