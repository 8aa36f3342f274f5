package resp

import (
	"strings"
	"testing"
	"time"
)

// TestKeySlot: the slots Redis Cluster gives (CLUSTER KEYSLOT on redis-server 7.0).
func TestKeySlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		slot int
	}{
		{"foo", 12182},
		{"123456789", 12739},
		{"{user1000}.following", KeySlot("user1000")},
		{"{user1000}.followers", KeySlot("user1000")},
		{"foo{}{bar}", KeySlot("foo{}{bar}")}, // empty tag: the whole key
		{"foo{{bar}}zap", KeySlot("{bar")},
		{"ptb:rl:{x-auth-client=svc}:sw:1s", KeySlot("x-auth-client=svc")},
	} {
		if got := KeySlot(tc.key); got != tc.slot {
			t.Errorf("KeySlot(%q) = %d, want %d", tc.key, got, tc.slot)
		}
	}
	if KeySlot("foo{}{bar}") == KeySlot("bar") {
		t.Error("an empty hash tag must not fall through to the next one")
	}
}

func TestRedirectAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		ok   bool
	}{
		{"MOVED 3999 127.0.0.1:6381", "127.0.0.1:6381", true},
		{"ASK 3999 [::1]:6381", "[::1]:6381", true},
		{"MOVED 3999", "", false},
		{"MOVED 3999 host", "", false},
	} {
		addr, ok := redirectAddr(tc.in)
		if addr != tc.addr || ok != tc.ok {
			t.Errorf("redirectAddr(%q) = %q, %v", tc.in, addr, ok)
		}
	}
}

func TestConfigCompile(t *testing.T) {
	d := Defaults{DialTimeout: time.Second, Timeout: time.Second, PoolSize: 1}
	tests := []struct {
		desc  string
		c     Config
		topo  string
		tls   bool
		warn  string
		wants []string
	}{
		{desc: "standalone", c: Config{Address: "r:6379"}, topo: "standalone"},
		{desc: "tls implied by a CA-less server name", c: Config{Address: "r:6379", TLSServerName: "redis.internal"}, topo: "standalone", tls: true},
		{desc: "insecure is warned about", c: Config{Address: "r:6379", TLSInsecureSkipVerify: true}, topo: "standalone", tls: true, warn: "tlsInsecureSkipVerify is on"},
		{desc: "sentinel", c: Config{Sentinel: SentinelConfig{MasterName: "m", Addresses: []string{"a:26379", " b:26379 ", ""}}}, topo: "sentinel"},
		{desc: "cluster ignores address", c: Config{Address: "x", Cluster: ClusterConfig{Addresses: []string{"a:7000"}}}, topo: "cluster"},
		{desc: "nothing", c: Config{}, wants: []string{"redis.address: required"}},
		{desc: "sentinel options without addresses", c: Config{Address: "r:1", Sentinel: SentinelConfig{MasterName: "m"}},
			wants: []string{"redis.sentinel.addresses: required when another sentinel option is set"}},
		{desc: "bad port", c: Config{Address: "r:99999"}, wants: []string{`redis.address: "r:99999" is not host:port`}},
		{desc: "key without cert", c: Config{Address: "r:1", TLSKey: "k.pem"}, wants: []string{"redis.tlsCert: tlsCert and tlsKey go together"}},
		{desc: "CA that is not PEM", c: Config{Address: "r:1", TLSCA: "topology_test.go"}, wants: []string{`redis.tlsCA: "topology_test.go" holds no PEM certificate`}},
		{desc: "CA read as jwtauth's caFile is (confmap.CAFile)", c: Config{Address: "r:1", TLSCA: "."}, wants: []string{`redis.tlsCA: "." is a directory, not a PEM file`}},
		{desc: "pool", c: Config{Address: "r:1", PoolSize: 5000}, wants: []string{"redis.poolSize: must be between 1 and 1024, got 5000"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			o, warns, errs := tc.c.Compile("redis", d)
			if len(tc.wants) > 0 {
				msg := ""
				for _, e := range errs {
					msg += e.Error() + "\n"
				}
				for _, w := range tc.wants {
					if !strings.Contains(msg, w) {
						t.Errorf("errors %q\nwant %q", msg, w)
					}
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if o.Topology() != tc.topo || o.TLS != tc.tls || (o.TLSConfig != nil) != tc.tls {
				t.Fatalf("topology %s tls %v (%v)", o.Topology(), o.TLS, o.TLSConfig)
			}
			if tc.tls && o.TLSConfig.MinVersion < 0x0303 {
				t.Fatal("TLS below 1.2 allowed")
			}
			if tc.warn == "" && len(warns) > 0 || tc.warn != "" && (len(warns) != 1 || !strings.Contains(warns[0], tc.warn)) {
				t.Fatalf("warnings %q, want %q", warns, tc.warn)
			}
			if o.Topology() == "sentinel" && strings.Join(o.SentinelAddrs, ",") != "a:26379,b:26379" {
				t.Fatalf("sentinel addresses %q", o.SentinelAddrs)
			}
			if _, err := New(o); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}
