package resp

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestOneRuleSet: Config.Compile and New apply the same rules (Options.check), so a problem
// written in the redis section and the same problem in Options given to New are reported
// alike: the section's message is "redis." + New's (whose messages all follow "resp: ").
func TestOneRuleSet(t *testing.T) {
	many := make([]string, maxAddresses+1)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.0.%d:7000", i)
	}
	for _, tc := range []struct {
		desc string
		c    Config
		o    Options
		want string // New's message
	}{
		{"address without port", Config{Address: "nohost"}, Options{Address: "nohost"},
			`address: "nohost" is not host:port`},
		{"port out of range", Config{Address: "r:99999"}, Options{Address: "r:99999"},
			`address: "r:99999" is not host:port`},
		{"no address", Config{}, Options{},
			"address: required (host:port), or sentinel.addresses, or cluster.addresses"},
		{"two topologies", Config{Sentinel: SentinelConfig{MasterName: "m", Addresses: []string{"s:26379"}}, Cluster: ClusterConfig{Addresses: []string{"c:7000"}}},
			Options{MasterName: "m", SentinelAddrs: []string{"s:26379"}, ClusterAddrs: []string{"c:7000"}},
			"cluster.addresses: set together with sentinel.addresses: choose one topology"},
		{"cluster with a db", Config{DB: 2, Cluster: ClusterConfig{Addresses: []string{"c:7000"}}}, Options{DB: 2, ClusterAddrs: []string{"c:7000"}},
			"db: Redis Cluster has db 0 only, got 2"},
		{"bad seed", Config{Cluster: ClusterConfig{Addresses: []string{"c:7000", "c"}}}, Options{ClusterAddrs: []string{"c:7000", "c"}},
			`cluster.addresses[1]: "c" is not host:port`},
		{"too many seeds", Config{Cluster: ClusterConfig{Addresses: many}}, Options{ClusterAddrs: many},
			"cluster.addresses: at most 64 addresses, got 65"},
		{"sentinel without master name", Config{Sentinel: SentinelConfig{Addresses: []string{"s:26379"}}}, Options{SentinelAddrs: []string{"s:26379"}},
			"sentinel.masterName: required with sentinel.addresses (the name the sentinels monitor, e.g. mymaster)"},
		{"sentinel options without sentinels", Config{Address: "r:6379", Sentinel: SentinelConfig{MasterName: "m"}}, Options{Address: "r:6379", MasterName: "m"},
			"sentinel.addresses: required when another sentinel option is set"},
		{"sentinel user without password", Config{Sentinel: SentinelConfig{MasterName: "m", Addresses: []string{"s:26379"}, Username: "u"}},
			Options{MasterName: "m", SentinelAddrs: []string{"s:26379"}, SentinelUsername: "u"},
			"sentinel.username: set without sentinel.password"},
		{"negative db", Config{Address: "r:6379", DB: -1}, Options{Address: "r:6379", DB: -1},
			"db: must be 0 or more, got -1"},
		{"pool too large", Config{Address: "r:6379", PoolSize: 2000}, Options{Address: "r:6379", PoolSize: 2000},
			"poolSize: must be between 1 and 1024, got 2000"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := New(tc.o)
			if err == nil {
				t.Fatal("New accepted the options")
			}
			if got := strings.TrimPrefix(err.Error(), "resp: "); got != tc.want {
				t.Errorf("New: %q\nwant %q", got, tc.want)
			}
			_, _, errs := tc.c.Compile("redis", Defaults{PoolSize: 1})
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			want := "redis." + strings.Replace(tc.want, "set without ", "set without redis.", 1)
			if len(msgs) != 1 || msgs[0] != want {
				t.Errorf("Compile: %q\nwant [%q]", msgs, want)
			}
		})
	}
}

// TestCompileDefaults: Compile fills what the section leaves empty with the caller's
// defaults, else New's, and its Options pass New unchanged.
func TestCompileDefaults(t *testing.T) {
	o, _, errs := (&Config{Address: "r:6379"}).Compile("redis", Defaults{PoolSize: 3})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if o.DialTimeout != DefaultDialTimeout || o.Timeout != DefaultTimeout || o.PoolSize != 3 || o.MaxReplyBytes != DefaultMaxReplyBytes {
		t.Fatalf("options %+v", o)
	}
	o, _, errs = (&Config{Address: "r:6379", Timeout: "x"}).Compile("redis", Defaults{DialTimeout: time.Second, Timeout: 2 * time.Second, PoolSize: 1})
	if len(errs) != 1 || errs[0].Error() != `redis.timeout: invalid duration "x" (use e.g. "2s")` {
		t.Fatalf("errors %v", errs)
	}
	if o.DialTimeout != time.Second || o.Timeout != 2*time.Second {
		t.Fatalf("options %+v", o)
	}
	if _, _, errs := (&Config{Address: "r:6379", PoolSize: 0}).Compile("redis", Defaults{}); len(errs) != 1 ||
		errs[0].Error() != "redis.poolSize: must be between 1 and 1024, got 0" {
		t.Fatalf("poolSize 0 without a default: %v", errs)
	}
}
