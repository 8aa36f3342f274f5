package resptest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// counterScript counts one call on KEYS[1] and answers the count as a status reply.
const counterScript = `return redis.status_reply(tostring(redis.call('INCR', KEYS[1])))`

// TestClusterKeyedUnderReshard (compiled; run it with -race): 64 goroutines count calls of
// 256 clients through a cluster Keyed while 1,000 slots move. Every call that succeeded is
// in Redis exactly once: none lost, none doubled by a redirection; failed calls are only
// those a redirection storm or the reshard's window may cause, never wrong counts.
func TestClusterKeyedUnderReshard(t *testing.T) {
	cl := redistest.StartCluster(t)
	var moved, refreshes int64
	c, err := resp.New(resp.Options{ClusterAddrs: cl.Seeds()[:1], Timeout: time.Second, PoolSize: 8,
		Counters: resp.Counters{Moved: &moved, Refreshes: &refreshes}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, err := c.Keyed(resp.NewScript(counterScript).Prepare(1, nil), []string{"}:n"})
	if err != nil {
		t.Fatal(err)
	}
	const clients = 256
	var mu sync.Mutex
	ok := map[int]int{}
	failed := map[int]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := (w + 64*i) % clients
				_, err := k.StatusFor(context.Background(), "c"+strconv.Itoa(id), "t:{client-"+strconv.Itoa(id))
				mu.Lock()
				if err != nil {
					failed[id]++
				} else {
					ok[id]++
				}
				mu.Unlock()
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	reshardStart := time.Now()
	p := cl.Primaries(t)
	from, _ := redistest.Do(p[0].Addr(), "CLUSTER", "MYID")
	to, _ := redistest.Do(p[1].Addr(), "CLUSTER", "MYID")
	out, err := exec.Command("redis-cli", "--cluster", "reshard", p[0].Addr(), "--cluster-from", fmt.Sprint(from),
		"--cluster-to", fmt.Sprint(to), "--cluster-slots", "1000", "--cluster-yes").CombinedOutput()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	took := time.Since(reshardStart)
	if err != nil {
		t.Fatalf("reshard: %v\n%s", err, out)
	}
	cl.WaitOK(t)
	check, err := resp.New(resp.Options{ClusterAddrs: cl.Seeds()[:1], Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	get := resp.NewScript(`return redis.call('GET', KEYS[1]) or '0'`)
	total, fails := 0, 0
	for id := 0; id < clients; id++ {
		v, err := check.EvalSHA(context.Background(), get, []string{"t:{client-" + strconv.Itoa(id) + "}:n"}, nil)
		if err != nil {
			t.Fatalf("GET client %d: %v", id, err)
		}
		n, _ := strconv.Atoi(v.Str)
		if n < ok[id] || n > ok[id]+failed[id] {
			t.Fatalf("client %d: Redis counted %d, %d calls succeeded and %d failed", id, n, ok[id], failed[id])
		}
		total += ok[id]
		fails += failed[id]
	}
	st, _ := c.Cluster()
	t.Logf("%d calls counted exactly, %d failed during the reshard (%s); MOVED %d, slot map reads %d, primaries %v",
		total, fails, took.Round(time.Millisecond), moved, st.Refreshes, st.Primaries)
	// A storm of MOVED makes one map read per second at most (plus the first one).
	if moved == 0 || refreshes > int64(took/time.Second)+2 {
		t.Fatalf("MOVED %d, map reads %d in %s: the refreshes are not rate-limited", moved, refreshes, took)
	}
}

// TestSentinelClientFailover (compiled; run it with -race): concurrent commands on a
// Sentinel client while the primary is SIGKILLed: every command ends within its bounds, and
// after the promotion the client writes to the new primary without being rebuilt.
func TestSentinelClientFailover(t *testing.T) {
	set := redistest.StartSentinels(t)
	c, err := resp.New(resp.Options{SentinelAddrs: set.SentinelAddrs(), MasterName: set.MasterName,
		Timeout: 200 * time.Millisecond, DialTimeout: 200 * time.Millisecond, PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Do(context.Background(), "SET", "k", "1"); err != nil || v.Str != "OK" {
		t.Fatalf("SET: %+v %v", v, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var longest time.Duration
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				c.Do(context.Background(), "INCR", "k")
				d := time.Since(start)
				mu.Lock()
				if d > longest {
					longest = d
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	old := set.Primary.Addr()
	set.Primary.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := c.Sentinel()
		if st.Primary != "" && st.Primary != old {
			if _, err := c.Do(context.Background(), "INCR", "k"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("the client did not follow the failover: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	st, _ := c.Sentinel()
	// The sentinels are asked at most every 100ms, not at the rate of the commands (8
	// goroutines, one command per millisecond each, during a failover of a few seconds).
	if st.Switches != 1 || longest > 2*time.Second || st.Asked > 200 {
		t.Fatalf("state %+v, longest command %s", st, longest)
	}
	t.Logf("followed %s -> %s, longest command %s, sentinels asked %d times", old, st.Primary, longest, st.Asked)
}

// TestSentinelManualFailover: SENTINEL FAILOVER promotes the replica while the old primary,
// alive, still says it is the primary for seconds: the client follows the sentinels'
// +switch-master announcement at once and writes to the new primary only (what it writes is
// there, not on the old one).
func TestSentinelManualFailover(t *testing.T) {
	set := redistest.StartSentinels(t)
	c, err := resp.New(resp.Options{SentinelAddrs: set.SentinelAddrs(), MasterName: set.MasterName,
		Timeout: 200 * time.Millisecond, PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do(context.Background(), "SET", "k", "0"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the subscriber is in place
	if _, err := redistest.Do(set.Sentinels[0].Addr(), "SENTINEL", "FAILOVER", set.MasterName); err != nil {
		t.Fatal(err)
	}
	newPrimary := set.Replica.Addr()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if p, err := set.CurrentPrimary(); err == nil && p == newPrimary {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sentinels did not promote the replica")
		}
		time.Sleep(20 * time.Millisecond)
	}
	promoted := time.Now()
	var followed time.Duration
	for {
		st, _ := c.Sentinel()
		if st.Primary == newPrimary {
			followed = time.Since(promoted)
			break
		}
		if time.Since(promoted) > 10*time.Second {
			t.Fatalf("the client did not follow: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	oldRole, _ := redistest.Role(set.Primary.Addr())
	// Twenty writes, each retried on error (a SET is idempotent, so a write that timed out
	// but ran does no harm), then all twenty must be on the new primary.
	var keys []any
	for i := 0; i < 20; i++ {
		key := "after-switch-" + strconv.Itoa(i)
		keys = append(keys, key)
		var err error
		for try := 0; try < 3; try++ {
			if _, err = c.Do(context.Background(), "SET", key, "1"); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("SET %s after the switch, three tries: %v", key, err)
		}
	}
	onNew, err := redistest.Do(newPrimary, append([]any{"EXISTS"}, keys...)...)
	if err != nil || fmt.Sprint(onNew) != "20" {
		t.Fatalf("the new primary has %v of the 20 keys (%v): writes went elsewhere", onNew, err)
	}
	st, _ := c.Sentinel()
	t.Logf("SENTINEL FAILOVER: client on %s %s after the sentinels named it (the old primary's role then: %s); switches %d",
		st.Primary, followed.Round(time.Millisecond), oldRole, st.Switches)
}
