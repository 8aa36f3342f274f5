// Package gateway is the gateway's plugin suite in one Traefik middleware: requestId, then
// jwt, then rateLimit, in one interpreter hop. Each section is optional: a section left out
// turns that step off; a section present gets the step's defaults for what it does not set.
//
// Within the suite's interpreter, middlewares with the same key source share one JWKS cache,
// and those with the same Redis options share one Redis pool.
//
// A middleware with the metrics section instead answers every request with the counters of
// all the suite's middlewares of the interpreter (Prometheus text format): route it on the
// internal entry point only.
//
// A middleware with the health section instead answers every request with the health
// document of its checks (plugins/health, with the same options). It serves the gateway's
// /health from the suite's interpreter: Traefik gives every declared plugin an interpreter
// with its own copy of the code, and declaring plugins/health beside the suite would load
// a second copy of the packages they share. The standalone health plugin remains.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/pavilion-trust/gateway/plugins/confmap"
	"github.com/pavilion-trust/gateway/plugins/health"
	"github.com/pavilion-trust/gateway/plugins/jwtauth"
	"github.com/pavilion-trust/gateway/plugins/metrics"
	"github.com/pavilion-trust/gateway/plugins/ratelimit"
	"github.com/pavilion-trust/gateway/plugins/requestid"
)

// Config holds the sections as Traefik hands them over; New decodes each one into its
// plugin's configuration (see plugins/confmap for why). A section is an any, not a map:
// Traefik hands a section written as an empty map (`requestId: {}` in YAML, an empty TOML
// table, an empty label value) over as the empty string, which a map field would refuse
// before New runs. See Section for the values a section may hold.
type Config struct {
	// RequestID configures the requestid step (plugins/requestid). Absent: off.
	RequestID any `json:"requestId,omitempty"`
	// JWT configures the jwtauth step (plugins/jwtauth). Absent: off.
	JWT any `json:"jwt,omitempty"`
	// RateLimit configures the ratelimit step (plugins/ratelimit). Absent: off.
	RateLimit any `json:"rateLimit,omitempty"`
	// Metrics makes this middleware the metrics endpoint: it answers GET and HEAD with the
	// counters of every suite middleware of the interpreter in the Prometheus text format
	// (version 0.0.4), and never calls the next handler. Absent: off. It cannot be combined
	// with the other sections. Options: enabled (default true; give it, as Traefik may drop
	// an empty section). Route it on the internal entry point only: it tells who is refused
	// and why.
	Metrics any `json:"metrics,omitempty"`
	// Health makes this middleware the health endpoint (plugins/health): it answers GET and
	// HEAD with the health document of its checks (application/health+json), and never calls
	// the next handler. Absent: off. It cannot be combined with the other sections. Options:
	// exactly those of the health plugin (plugins/health Config); at least one check.
	Health any `json:"health,omitempty"`
}

// MetricsConfig is the metrics section.
type MetricsConfig struct {
	// Enabled serves the metrics (default true); false makes the section absent.
	Enabled bool `json:"enabled,omitempty"`
}

// CreateConfig returns an empty suite: every step off until its section is given.
func CreateConfig() *Config {
	return &Config{}
}

// New builds the chain requestId → jwt → rateLimit → next from the sections present, and
// reports every configuration problem at once, each under its section's name.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config != nil && config.Health != nil {
		return newHealth(ctx, next, config, name)
	}
	if config != nil && config.Metrics != nil {
		return newMetrics(config, name)
	}
	if config == nil || (config.RequestID == nil && config.JWT == nil && config.RateLimit == nil) {
		return nil, fmt.Errorf("pavilion %q: no section configured (requestId, jwt, rateLimit, metrics, health)", name)
	}
	var errs []error
	h := next
	// step decodes a section present into cfg (a reflect.Value: an interpreted *Config passed
	// as any loses its type under Yaegi) and wraps h with build's middleware; a problem
	// is reported under the section's name.
	step := func(section string, value any, cfg reflect.Value, build func(next http.Handler) (http.Handler, error)) {
		raw, on, err := Section(value)
		if err != nil {
			errs = append(errs, prefix(section, err))
			return
		}
		if !on {
			return
		}
		if err := confmap.Decode(raw, cfg); err != nil {
			errs = append(errs, prefix(section, err))
			return
		}
		m, err := build(h)
		if err != nil {
			errs = append(errs, prefix(section, err))
			return
		}
		h = m
	}
	rl := ratelimit.CreateConfig()
	step("rateLimit", config.RateLimit, reflect.ValueOf(rl), func(next http.Handler) (http.Handler, error) { return ratelimit.New(ctx, next, rl, name) })
	jc := jwtauth.CreateConfig()
	step("jwt", config.JWT, reflect.ValueOf(jc), func(next http.Handler) (http.Handler, error) { return jwtauth.New(ctx, next, jc, name) })
	rc := requestid.CreateConfig()
	step("requestId", config.RequestID, reflect.ValueOf(rc), func(next http.Handler) (http.Handler, error) { return requestid.New(ctx, next, rc, name) })
	if len(errs) > 0 {
		return nil, fmt.Errorf("pavilion %q: %w", name, errors.Join(errs...))
	}
	return h, nil
}

// Section reads one section's value as Traefik hands it over: absent (nil) is off; a map
// holds the section's options; an empty map (which Traefik turns into "" for YAML, TOML and
// labels, and keeps as an empty map for Kubernetes CRDs) and the value true (a label such as
// `…plugin.pavilion.requestId=true`, as Traefik's own option-less middlewares are written in
// labels) mean on, with the step's defaults. Anything else is an error naming the value.
func Section(value any) (map[string]any, bool, error) {
	if value == nil {
		return nil, false, nil
	}
	if m, ok := value.(map[string]any); ok {
		return m, true, nil
	}
	if b, ok := value.(bool); ok && b {
		return map[string]any{}, true, nil
	}
	if s, ok := value.(string); ok {
		t := strings.TrimSpace(s)
		if t == "" || t == "{}" || strings.EqualFold(t, "true") {
			return map[string]any{}, true, nil
		}
		return nil, false, fmt.Errorf("expected a map of options, {} or true (on with defaults), got %q", s)
	}
	return nil, false, fmt.Errorf("expected a map of options, {} or true (on with defaults), got %T", value)
}

func prefix(section string, err error) error {
	return fmt.Errorf("%s: %w", section, err)
}

// newMetrics builds the metrics endpoint of a configuration with the metrics section.
func newMetrics(config *Config, name string) (http.Handler, error) {
	if config.RequestID != nil || config.JWT != nil || config.RateLimit != nil {
		return nil, fmt.Errorf("pavilion %q: metrics: cannot be combined with requestId, jwt or rateLimit (it answers every request itself)", name)
	}
	raw, _, err := Section(config.Metrics)
	if err != nil {
		return nil, fmt.Errorf("pavilion %q: %w", name, prefix("metrics", err))
	}
	c := &MetricsConfig{Enabled: true}
	if err := confmap.Decode(raw, reflect.ValueOf(c)); err != nil {
		return nil, fmt.Errorf("pavilion %q: %w", name, prefix("metrics", err))
	}
	if !c.Enabled {
		return nil, fmt.Errorf("pavilion %q: metrics: enabled is false and no other section is configured", name)
	}
	return metrics.Handler(), nil
}

// newHealth builds the health endpoint of a configuration with the health section: the
// section is decoded into the health plugin's Config and built by its New (next is never
// called).
func newHealth(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config.RequestID != nil || config.JWT != nil || config.RateLimit != nil || config.Metrics != nil {
		return nil, fmt.Errorf("pavilion %q: health: cannot be combined with requestId, jwt, rateLimit or metrics (it answers every request itself)", name)
	}
	raw, _, err := Section(config.Health)
	if err != nil {
		return nil, fmt.Errorf("pavilion %q: %w", name, prefix("health", err))
	}
	hc := health.CreateConfig()
	if err := confmap.Decode(raw, reflect.ValueOf(hc)); err != nil {
		return nil, fmt.Errorf("pavilion %q: %w", name, prefix("health", err))
	}
	h, err := health.New(ctx, next, hc, name)
	if err != nil {
		return nil, fmt.Errorf("pavilion %q: %w", name, prefix("health", err))
	}
	return h, nil
}
