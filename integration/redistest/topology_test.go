package redistest

import (
	"testing"
	"time"
)

// TestSentinelsFailover: the set starts, and SIGKILL of the primary makes the sentinels
// promote the replica.
func TestSentinelsFailover(t *testing.T) {
	s := StartSentinels(t)
	p, err := s.CurrentPrimary()
	if err != nil || p != s.Primary.Addr() {
		t.Fatalf("primary %q (%v), want %s", p, err, s.Primary.Addr())
	}
	s.Primary.Kill()
	waitFor(t, "promotion", 30*time.Second, func() error {
		r, err := Role(s.Replica.Addr())
		if err != nil || r != "master" {
			return err
		}
		return nil
	})
}

// TestClusterCreate: six nodes, three primaries.
func TestClusterCreate(t *testing.T) {
	c := StartCluster(t)
	if n := len(c.Primaries(t)); n != 3 {
		t.Fatalf("%d primaries, want 3", n)
	}
}
