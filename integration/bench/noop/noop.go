// Package noop is the floor of any interpreted middleware, for the benchmarks: a Traefik
// plugin whose ServeHTTP only calls the next handler. What it costs is what Yaegi charges
// for one interpreted hop, whatever the plugin does.
package noop

import (
	"context"
	"net/http"
)

// Config is empty.
type Config struct{}

// CreateConfig returns the empty configuration.
func CreateConfig() *Config { return &Config{} }

type noop struct{ next http.Handler }

// New returns the middleware.
func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	return &noop{next: next}, nil
}

func (n *noop) ServeHTTP(rw http.ResponseWriter, req *http.Request) { n.next.ServeHTTP(rw, req) }
