package ratelimit

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestConfigValidation(t *testing.T) {
	ok := func(c *Config) { c.Limits = []Limit{{Requests: 10, Window: "1s"}} }
	tests := []struct {
		desc  string
		edit  func(c *Config)
		wants []string // substrings of the error; none: valid
	}{
		{desc: "defaults plus one limit are valid", edit: ok},
		{desc: "limits are required", edit: func(c *Config) {}, wants: []string{`ratelimit "api": limits: required`}},
		{desc: "window without unit", edit: func(c *Config) { c.Limits = []Limit{{Requests: 1, Window: "1s"}, {Requests: 5, Window: "1"}} },
			wants: []string{`limits[1].window: invalid duration "1"`}},
		{desc: "sub-second window", edit: func(c *Config) { c.Limits = []Limit{{Requests: 1, Window: "500ms"}} },
			wants: []string{`limits[0].window: "500ms" is out of range`}},
		{desc: "fractional seconds", edit: func(c *Config) { c.Limits = []Limit{{Requests: 1, Window: "1500ms"}} },
			wants: []string{`limits[0].window: "1500ms" is not a whole number of seconds`}},
		{desc: "zero requests", edit: func(c *Config) { c.Limits = []Limit{{Requests: 0, Window: "1s"}} },
			wants: []string{`limits[0].requests: must be between 1 and`}},
		{desc: "repeated window", edit: func(c *Config) { c.Limits = []Limit{{Requests: 1, Window: "60s"}, {Requests: 2, Window: "1m"}} },
			wants: []string{`limits[1].window: "1m" repeats the window of limits[0]`}},
		{desc: "too many for sliding-log", edit: func(c *Config) {
			c.Algorithm = "sliding-log"
			c.Limits = []Limit{{Requests: 200000, Window: "1h"}}
		}, wants: []string{`limits[0].requests: sliding-log keeps one entry per request`}},
		{desc: "unknown algorithm", edit: func(c *Config) { ok(c); c.Algorithm = "token-bucket" },
			wants: []string{`algorithm: "token-bucket" is not one of`}},
		{desc: "algorithm case-insensitive", edit: func(c *Config) { ok(c); c.Algorithm = "GCRA" }},
		{desc: "bad source", edit: func(c *Config) { ok(c); c.Sources = []string{"ip", "cookie:session", "header:"} },
			wants: []string{`sources[1]: "cookie:session" is neither`, `sources[2]: "header:"`}},
		{desc: "sources as Traefik splits a comma list", edit: func(c *Config) { ok(c); c.Sources = []string{"header:X-Api-Key", " ip"} }},
		{desc: "bad CIDR", edit: func(c *Config) { ok(c); c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33", "proxy.local"} },
			wants: []string{`trustedProxies[1]: "10.0.0.0/33"`, `trustedProxies[2]: "proxy.local"`}},
		{desc: "single addresses are CIDRs", edit: func(c *Config) { ok(c); c.TrustedProxies = []string{"10.0.0.1", "::1"} }},
		{desc: "bad failure policy", edit: func(c *Config) { ok(c); c.FailurePolicy = "fail-open" },
			wants: []string{`failurePolicy: "fail-open" is not one of local, open, closed`}},
		{desc: "bad key prefix", edit: func(c *Config) { ok(c); c.KeyPrefix = "rl:{x}" }, wants: []string{`keyPrefix: must be`}},
		{desc: "bad address", edit: func(c *Config) { ok(c); c.Redis.Address = "redis" }, wants: []string{`redis.address: "redis" is not host:port`}},
		{desc: "bad timeouts and pool", edit: func(c *Config) {
			ok(c)
			c.Redis.Timeout = "100"
			c.Redis.DialTimeout = "2m"
			c.Redis.PoolSize = 0
		}, wants: []string{`redis.timeout: invalid duration "100"`, `redis.dialTimeout: "2m" is out of range`, `redis.poolSize: must be between 1 and 1024, got 0`}},
		{desc: "username without password", edit: func(c *Config) { ok(c); c.Redis.Username = "gw" }, wants: []string{`redis.username: set without redis.password`}},
		{desc: "bad override", edit: func(c *Config) {
			ok(c)
			c.Overrides = map[string][]Limit{"partner-a": {{Requests: 1000, Window: "1x"}}, "partner-b": nil}
		}, wants: []string{`overrides["partner-a"][0].window: invalid duration "1x"`, `overrides["partner-b"]: needs at least one`}},
		{desc: "overrideList merged with overrides", edit: func(c *Config) {
			ok(c)
			c.Overrides = map[string][]Limit{"partner-a": {{Requests: 1000, Window: "1s"}}}
			c.OverrideList = []Override{{Client: "10.0.0.7", Limits: []Limit{{Requests: 5, Window: "1s"}}}}
		}},
		{desc: "a client in both forms", edit: func(c *Config) {
			ok(c)
			c.Overrides = map[string][]Limit{"10.0.0.7": {{Requests: 1000, Window: "1s"}}}
			c.OverrideList = []Override{{Client: "10.0.0.7", Limits: []Limit{{Requests: 5, Window: "1s"}}}, {Limits: []Limit{{Requests: 5, Window: "1s"}}}}
		}, wants: []string{`overrideList[0].client: "10.0.0.7" is also given by overrides["10.0.0.7"]`, `overrideList[1].client: required`}},
		{desc: "all problems at once", edit: func(c *Config) {
			c.Algorithm = "x"
			c.FailurePolicy = "y"
		}, wants: []string{"limits: required", "algorithm:", "failurePolicy:"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c := CreateConfig()
			tc.edit(c)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h, err := New(ctx, http.NotFoundHandler(), c, "api")
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || h != nil {
				t.Fatalf("New succeeded, want an error with %q", tc.wants)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := CreateConfig()
	c.Limits = []Limit{{Requests: 100, Window: "1s"}, {Requests: 5000, Window: "1h"}}
	s, err := c.compile()
	if err != nil {
		t.Fatal(err)
	}
	if s.redis.Address != "127.0.0.1:6379" || s.redis.DialTimeout.String() != "250ms" || s.redis.Timeout.String() != "100ms" ||
		s.redis.PoolSize != 16 || s.algorithm != "sliding-window" || s.keyPrefix != "ptb:rl" ||
		s.failurePolicy != "local" || !s.headers || len(s.sources) != 2 ||
		s.sources[0].header != "X-Auth-Client" || !s.sources[1].ip {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestOverrideListCompiled(t *testing.T) {
	c := CreateConfig()
	c.Limits = []Limit{{Requests: 100, Window: "1s"}}
	c.Overrides = map[string][]Limit{"partner-a": {{Requests: 1000, Window: "1s"}}}
	c.OverrideList = []Override{{Client: "partner.example", Limits: []Limit{{Requests: 7, Window: "1m"}}}}
	s, err := c.compile()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.overrides) != 2 || s.overrides["partner-a"][0].requests != 1000 ||
		s.overrides["partner.example"][0].requests != 7 || s.overrides["partner.example"][0].window.String() != "1m0s" {
		t.Fatalf("overrides %+v", s.overrides)
	}
}
