package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Do sends one command to addr (plain TCP) and returns its reply.
func Do(addr string, args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}

// waitFor polls cond every 100ms until it returns nil or timeout passes.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: %s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sentinels is a primary, a replica and three sentinels on loopback, the primary monitored
// as MasterName with a down-after of 1s (failover within a few seconds).
type Sentinels struct {
	MasterName string
	Primary    *Server
	Replica    *Server
	Sentinels  []*Server
}

// SentinelAddrs are the sentinels' host:port.
func (s *Sentinels) SentinelAddrs() []string {
	var out []string
	for _, x := range s.Sentinels {
		out = append(out, x.Addr())
	}
	return out
}

// StartSentinels starts the set (data node arguments in args, e.g. ACL options) and waits
// until every sentinel knows the replica.
func StartSentinels(tb testing.TB, args ...string) *Sentinels {
	tb.Helper()
	s := &Sentinels{MasterName: "pavilion"}
	s.Primary = Start(tb, args...)
	s.Replica = Start(tb, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Primary.Port)}, args...)...)
	waitFor(tb, "replica in sync", 20*time.Second, func() error {
		v, err := Do(s.Replica.Addr(), "INFO", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(fmt.Sprint(v), "master_link_status:up") {
			return fmt.Errorf("replica not linked")
		}
		return nil
	})
	for i := 0; i < 3; i++ {
		s.Sentinels = append(s.Sentinels, startSentinel(tb, s.MasterName, s.Primary.Port))
	}
	for _, x := range s.Sentinels {
		waitFor(tb, "sentinel knows the replica and the other sentinels", 30*time.Second, func() error {
			v, err := Do(x.Addr(), "SENTINEL", "MASTER", s.MasterName)
			if err != nil {
				return err
			}
			m := pairs(v)
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("master state %v", m)
			}
			return nil
		})
	}
	return s
}

// pairs turns a flat [k1, v1, k2, v2...] reply (or a RESP3 map) into a map.
func pairs(v any) map[string]string {
	out := map[string]string{}
	switch t := v.(type) {
	case []any:
		for i := 0; i+1 < len(t); i += 2 {
			out[fmt.Sprint(t[i])] = fmt.Sprint(t[i+1])
		}
	case map[any]any:
		for k, x := range t {
			out[fmt.Sprint(k)] = fmt.Sprint(x)
		}
	}
	return out
}

// CurrentPrimary asks the first sentinel that answers for the primary's host:port.
func (s *Sentinels) CurrentPrimary() (string, error) {
	var last error
	for _, x := range s.Sentinels {
		v, err := Do(x.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
		if err != nil {
			last = err
			continue
		}
		a, ok := v.([]any)
		if !ok || len(a) != 2 {
			return "", fmt.Errorf("unexpected reply %v", v)
		}
		return fmt.Sprint(a[0]) + ":" + fmt.Sprint(a[1]), nil
	}
	return "", last
}

func startSentinel(tb testing.TB, name string, primaryPort int) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		tb.Fatalf("redistest: redis-sentinel is required (apt-get install redis-sentinel): %v", err)
	}
	_ = bin
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s := &Server{Port: freePort(tb), tb: tb, dir: tb.TempDir()}
		s.conf = filepath.Join(s.dir, "sentinel.conf")
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
			s.Port, s.dir, name, primaryPort, name, name, name)
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			tb.Fatal(err)
		}
		if lastErr = s.start(); lastErr == nil {
			tb.Cleanup(func() {
				s.Stop()
				if tb.Failed() {
					tb.Logf("redis-sentinel on port %d:\n%s", s.Port, s.Log())
				}
			})
			return s
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	tb.Fatalf("redistest: starting redis-sentinel: %v", lastErr)
	return nil
}

// Cluster is a Redis Cluster of three primaries and three replicas on loopback, created with
// redis-cli --cluster create.
type Cluster struct {
	Nodes []*Server
}

// Seeds are every node's host:port.
func (c *Cluster) Seeds() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// StartCluster starts six nodes (cluster-node-timeout 1s), creates the cluster and waits
// until every node reports cluster_state:ok.
func StartCluster(tb testing.TB, args ...string) *Cluster {
	tb.Helper()
	c := &Cluster{}
	for i := 0; i < 6; i++ {
		// The bus port is set explicitly: the default (port + 10000) may be taken or above
		// 65535 for an ephemeral port.
		a := append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-port", strconv.Itoa(freePort(tb))}, args...)
		c.Nodes = append(c.Nodes, Start(tb, a...))
	}
	cli := append([]string{"--cluster", "create"}, c.Seeds()...)
	cli = append(cli, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", cli...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(tb)
	return c
}

// WaitOK waits until every running node reports cluster_state:ok and agrees on the slots.
func (c *Cluster) WaitOK(tb testing.TB) {
	tb.Helper()
	waitFor(tb, "cluster_state:ok on every node", 30*time.Second, func() error {
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			v, err := Do(n.Addr(), "CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if !strings.Contains(fmt.Sprint(v), "cluster_state:ok") || !strings.Contains(fmt.Sprint(v), "cluster_slots_ok:16384") {
				return fmt.Errorf("%s: %s", n.Addr(), v)
			}
		}
		return nil
	})
}

// Role is the node's role ("master" or "slave"), from ROLE.
func Role(addr string) (string, error) {
	v, err := Do(addr, "ROLE")
	if err != nil {
		return "", err
	}
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return "", fmt.Errorf("ROLE: %v", v)
	}
	return fmt.Sprint(a[0]), nil
}

// Primaries are the running nodes whose role is master.
func (c *Cluster) Primaries(tb testing.TB) []*Server {
	tb.Helper()
	var out []*Server
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		r, err := Role(n.Addr())
		if err != nil {
			tb.Fatalf("ROLE %s: %v", n.Addr(), err)
		}
		if r == "master" {
			out = append(out, n)
		}
	}
	return out
}

// ReplicaOf returns the running replica of the primary p.
func (c *Cluster) ReplicaOf(tb testing.TB, p *Server) *Server {
	tb.Helper()
	for _, n := range c.Nodes {
		if !n.Running() || n == p {
			continue
		}
		v, err := Do(n.Addr(), "ROLE")
		if err != nil {
			continue
		}
		a, ok := v.([]any)
		if ok && len(a) >= 3 && fmt.Sprint(a[0]) == "slave" && fmt.Sprint(a[2]) == strconv.Itoa(p.Port) {
			return n
		}
	}
	tb.Fatalf("redistest: no replica of %s", p.Addr())
	return nil
}
