package health_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pavilion-trust/gateway/plugins/health"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// TestDurationHintsAreTheDefaults: an invalid duration's error suggests the option's default,
// a value that is valid for it.
func TestDurationHintsAreTheDefaults(t *testing.T) {
	tests := []struct {
		desc string
		edit func(c *health.Config)
		want string
	}{
		{desc: "minValidity", edit: func(c *health.Config) { c.Certificates[0].MinValidity = "7d" },
			want: `certificates[0].minValidity: invalid duration "7d" (use e.g. "168h0m0s")`},
		{desc: "upstream timeout", edit: func(c *health.Config) { c.Upstreams[0].Timeout = "2" },
			want: `upstreams[0].timeout: invalid duration "2" (use e.g. "2s")`},
		{desc: "redis timeout", edit: func(c *health.Config) { c.Redis = resp.Config{Address: "127.0.0.1:6379", Timeout: "1"} },
			want: `redis.timeout: invalid duration "1" (use e.g. "1s")`},
		{desc: "cacheFor", edit: func(c *health.Config) { c.CacheFor = "5" },
			want: `cacheFor: invalid duration "5" (use e.g. "5s")`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c := health.CreateConfig()
			c.Certificates = []health.Certificate{{Path: "/etc/traefik/certs/tls.crt"}}
			c.Upstreams = []health.Upstream{{Name: "core-broker", URL: "http://core-broker:8080/health"}}
			tc.edit(c)
			_, err := health.New(context.Background(), nil, c, "health@test")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
