package configcheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"

	gateway "github.com/pavilion-trust/gateway"
	"github.com/pavilion-trust/gateway/plugins/confmap"
	"github.com/pavilion-trust/gateway/plugins/health"
	"github.com/pavilion-trust/gateway/plugins/jwtauth"
	"github.com/pavilion-trust/gateway/plugins/ratelimit"
	"github.com/pavilion-trust/gateway/plugins/requestid"
)

// pluginKind decodes one plugin's options strictly and runs the plugin's own validation.
type pluginKind struct {
	// decode returns the options decoded into the plugin's Config (the suite: a map of
	// section name to that section's decoded Config), for comparisons.
	decode func(opts map[string]any) (any, error)
	// validate builds the middleware as Traefik would (New, cancelled context, no-op next).
	validate func(opts map[string]any, name string) error
}

// modules maps a local plugin's moduleName (static experimental.localPlugins) to its checker.
var modules = map[string]pluginKind{
	"github.com/pavilion-trust/gateway":                   {decodeSuite, validateSuite},
	"github.com/pavilion-trust/gateway/plugins/jwtauth":   simple(jwtauth.CreateConfig, jwtauth.New),
	"github.com/pavilion-trust/gateway/plugins/ratelimit": simple(ratelimit.CreateConfig, ratelimit.New),
	"github.com/pavilion-trust/gateway/plugins/requestid": simple(requestid.CreateConfig, requestid.New),
	"github.com/pavilion-trust/gateway/plugins/health":    simple(health.CreateConfig, health.New),
}

var noop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// cancelled is the context New gets: background work a plugin starts (JWKS refresh, Redis
// pool) stops at once.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// simple is the checker of a plugin whose options decode with confmap into *C.
func simple[C any](create func() *C, newFn func(context.Context, http.Handler, *C, string) (http.Handler, error)) pluginKind {
	dec := func(opts map[string]any) (*C, error) {
		c := create()
		if err := confmap.Decode(opts, reflect.ValueOf(c)); err != nil {
			return nil, err
		}
		return c, nil
	}
	return pluginKind{
		decode: func(opts map[string]any) (any, error) { return dec(opts) },
		validate: func(opts map[string]any, name string) error {
			c, err := dec(opts)
			if err != nil {
				return err
			}
			_, err = newFn(cancelled(), noop, c, name)
			return err
		},
	}
}

// suiteSections maps the suite's section names (lower case: Traefik matches keys
// case-insensitively) to their Config constructors.
var suiteSections = map[string]func() any{
	"requestid": func() any { return requestid.CreateConfig() },
	"jwt":       func() any { return jwtauth.CreateConfig() },
	"ratelimit": func() any { return ratelimit.CreateConfig() },
	"metrics":   func() any { return &gateway.MetricsConfig{Enabled: true} },
	"health":    func() any { return health.CreateConfig() },
}

// sectionNames are the sections as the README spells them, for messages.
var sectionNames = map[string]string{"requestid": "requestId", "jwt": "jwt", "ratelimit": "rateLimit", "metrics": "metrics", "health": "health"}

// suiteConfig fills gateway.Config from the options, strictly at the top level (the sections
// themselves are decoded strictly by gateway.New).
func suiteConfig(opts map[string]any) (*gateway.Config, map[string]map[string]any, error) {
	cfg := gateway.CreateConfig()
	sections := map[string]map[string]any{}
	var errs []error
	for _, k := range sortedKeys(opts) {
		lk := strings.ToLower(k)
		if _, known := suiteSections[lk]; !known {
			errs = append(errs, fmt.Errorf("%s: unknown option (sections: requestId, jwt, rateLimit, metrics, health)", k))
			continue
		}
		// As gateway.New reads it: a map, or an empty map handed over as "" (or true).
		m, on, err := gateway.Section(opts[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		if !on {
			continue
		}
		sections[lk] = m
		switch lk {
		case "requestid":
			cfg.RequestID = m
		case "jwt":
			cfg.JWT = m
		case "ratelimit":
			cfg.RateLimit = m
		case "metrics":
			cfg.Metrics = m
		case "health":
			cfg.Health = m
		}
	}
	return cfg, sections, errors.Join(errs...)
}

func decodeSuite(opts map[string]any) (any, error) {
	_, sections, err := suiteConfig(opts)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	var errs []error
	for _, name := range sortedKeys(sections) {
		c := suiteSections[name]()
		if err := confmap.Decode(sections[name], reflect.ValueOf(c)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sectionNames[name], err))
			continue
		}
		out[sectionNames[name]] = c
	}
	return out, errors.Join(errs...)
}

func validateSuite(opts map[string]any, name string) error {
	cfg, _, err := suiteConfig(opts)
	if err != nil {
		return err
	}
	_, err = gateway.New(cancelled(), noop, cfg, name)
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
