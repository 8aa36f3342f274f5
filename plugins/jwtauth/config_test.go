package jwtauth

import (
	"strings"
	"testing"
)

// TestConfigSharedRules: the URL and trusted-proxy options follow confmap's rules, as the
// other plugins' options of the same kind do.
func TestConfigSharedRules(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		edit    func(c *Config)
		wants   []string // substrings of the error; none: valid
		trusted int      // valid: the failedAuth.trustedProxies networks
	}{
		{desc: "https issuer", edit: func(c *Config) {}},
		{desc: "issuer not a URL", edit: func(c *Config) { c.Issuer = "pavilion" }, wants: []string{`issuer: must be an http(s) URL, got "pavilion"`}},
		{desc: "issuer without host", edit: func(c *Config) { c.Issuer = "https:///realms/x" }, wants: []string{`issuer: must be an http(s) URL`}},
		{desc: "jwksUrl of another scheme", edit: func(c *Config) { c.JWKSURL = "ftp://kc/certs" }, wants: []string{`jwksUrl: must be an http(s) URL, got "ftp://kc/certs"`}},
		{desc: "trusted proxies: CIDRs and single addresses", edit: func(c *Config) {
			c.FailedAuth.TrustedProxies = []string{"10.0.0.0/8", " 192.0.2.7", "::1"}
		}, trusted: 3},
		{desc: "trusted proxies: each bad entry named", edit: func(c *Config) {
			c.FailedAuth.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33", "proxy.local"}
		}, wants: []string{`failedAuth.trustedProxies[1]: "10.0.0.0/33" is not a CIDR or an IP address`, `failedAuth.trustedProxies[2]: "proxy.local"`}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := CreateConfig()
			c.Issuer = "https://kc.example/realms/pavilion"
			tc.edit(c)
			s, err := c.compile()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if len(s.failTrusted) != tc.trusted {
					t.Fatalf("trusted proxies %v, want %d", s.failTrusted, tc.trusted)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant %q", err, w)
				}
			}
		})
	}
}
