// Package testplugin is a tiny middleware plugin for the harness's own tests: its
// configuration has one field of each shape that plugins use, and it serves its decoded
// configuration back as JSON on /config.
package testplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// Rule is an element of a list of structs.
type Rule struct {
	Path     string   `json:"path"`
	Methods  []string `json:"methods"`
	Priority int      `json:"priority"`
}

// Config has one field of each kind a plugin configuration uses.
type Config struct {
	Greeting     string            `json:"greeting"`
	Enabled      bool              `json:"enabled"`
	Retries      int               `json:"retries"`
	MaxBodyBytes int               `json:"max_body_bytes"`
	Origins      []string          `json:"origins"`
	Headers      map[string]string `json:"headers"`
	Rules        []Rule            `json:"rules"`
}

// CreateConfig returns the defaults.
func CreateConfig() *Config {
	return &Config{
		Greeting:     "hello",
		Enabled:      true,
		Retries:      3,
		MaxBodyBytes: 1024,
		Headers:      map[string]string{},
	}
}

// built counts the calls of New in this process or interpreter, to show which middlewares
// share package state.
var (
	builtMu sync.Mutex
	built   int
)

type plugin struct {
	built  int
	next   http.Handler
	name   string
	config []byte
	header string
}

// New fails when retries is negative.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config.Retries < 0 {
		return nil, fmt.Errorf("testplugin %q: retries: must be >= 0, got %d", name, config.Retries)
	}

	builtMu.Lock()
	built++
	n := built
	builtMu.Unlock()

	body, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("testplugin %q: encoding config: %w", name, err)
	}

	return &plugin{built: n, next: next, name: name, config: body, header: config.Greeting}, nil
}

func (p *plugin) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/config" {
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("X-Plugin-Name", p.name)
		rw.Header().Set("X-Built", strconv.Itoa(p.built))
		_, _ = rw.Write(p.config)
		return
	}

	req.Header.Set("X-Greeting", p.header)
	p.next.ServeHTTP(rw, req)
}
