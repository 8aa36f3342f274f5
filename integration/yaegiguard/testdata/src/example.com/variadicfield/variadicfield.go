// Package variadicfield calls a struct field of variadic function type with two variadic
// arguments: Yaegi v0.16.1 panics (index out of range) compiling it, so importing this package
// panics in the interpreter. It also has a .traefik.yml, to see what Traefik does then.
package variadicfield

import (
	"context"
	"fmt"
	"net/http"
)

type logger struct{ logf func(string, ...any) }

// Log returns what the field logged: "1 2".
func Log() string {
	var out string
	l := logger{logf: func(format string, args ...any) { out = fmt.Sprintf(format, args...) }}
	l.logf("%d %v", 1, 2)
	return out
}

// Config is empty.
type Config struct{}

// CreateConfig returns an empty configuration.
func CreateConfig() *Config { return &Config{} }

// New returns next unchanged.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	return next, nil
}
