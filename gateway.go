// Package gateway is the gateway's plugin suite in one Traefik middleware: requestId, then
// jwt, then rateLimit, in one interpreter hop. Each section is optional: a section left out
// turns that step off; a section present gets the step's defaults for what it does not set.
//
// Within the suite's interpreter, middlewares with the same key source share one JWKS cache,
// and those with the same Redis options share one Redis pool.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"

	"github.com/pavilion-trust/gateway/plugins/confmap"
	"github.com/pavilion-trust/gateway/plugins/jwtauth"
	"github.com/pavilion-trust/gateway/plugins/ratelimit"
	"github.com/pavilion-trust/gateway/plugins/requestid"
)

// Config holds the three sections as Traefik hands them over; New decodes each one into its
// plugin's configuration (see plugins/confmap for why).
type Config struct {
	// RequestID configures the requestid step (plugins/requestid). Absent: off.
	RequestID map[string]any `json:"requestId,omitempty"`
	// JWT configures the jwtauth step (plugins/jwtauth). Absent: off.
	JWT map[string]any `json:"jwt,omitempty"`
	// RateLimit configures the ratelimit step (plugins/ratelimit). Absent: off.
	RateLimit map[string]any `json:"rateLimit,omitempty"`
}

// CreateConfig returns an empty suite: every step off until its section is given.
func CreateConfig() *Config {
	return &Config{}
}

// New builds the chain requestId → jwt → rateLimit → next from the sections present, and
// reports every configuration problem at once, each under its section's name.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil || (config.RequestID == nil && config.JWT == nil && config.RateLimit == nil) {
		return nil, fmt.Errorf("pavilion %q: no section configured (requestId, jwt, rateLimit)", name)
	}
	var errs []error
	h := next
	if config.RateLimit != nil {
		c := ratelimit.CreateConfig()
		if err := confmap.Decode(config.RateLimit, reflect.ValueOf(c)); err != nil {
			errs = append(errs, prefix("rateLimit", err))
		} else if rl, err := ratelimit.New(ctx, h, c, name); err != nil {
			errs = append(errs, prefix("rateLimit", err))
		} else {
			h = rl
		}
	}
	if config.JWT != nil {
		c := jwtauth.CreateConfig()
		if err := confmap.Decode(config.JWT, reflect.ValueOf(c)); err != nil {
			errs = append(errs, prefix("jwt", err))
		} else if j, err := jwtauth.New(ctx, h, c, name); err != nil {
			errs = append(errs, prefix("jwt", err))
		} else {
			h = j
		}
	}
	if config.RequestID != nil {
		c := requestid.CreateConfig()
		if err := confmap.Decode(config.RequestID, reflect.ValueOf(c)); err != nil {
			errs = append(errs, prefix("requestId", err))
		} else if r, err := requestid.New(ctx, h, c, name); err != nil {
			errs = append(errs, prefix("requestId", err))
		} else {
			h = r
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("pavilion %q: %w", name, errors.Join(errs...))
	}
	return h, nil
}

func prefix(section string, err error) error {
	return fmt.Errorf("%s: %w", section, err)
}
