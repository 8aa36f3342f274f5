package ratelimit

import (
	"context"
	"github.com/pavilion-trust/gateway/plugins/resp"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// blockSlack is how much longer than Redis a block may last: the local deadline starts when
// the reply arrives (after Redis read its clock, in whole milliseconds) and the retry time is
// rounded up to a millisecond, so Redis may admit again a millisecond or two before the block
// ends; never earlier than that.
const blockSlack = 5 * time.Millisecond

// TestRefusedInMemory: once Redis refuses a client, its requests are refused without Redis
// until the retry time Redis gave, and the block never admits what Redis would refuse: asked
// directly at any moment of the block (but its last blockSlack), Redis refuses too; once it
// ends, the next request is allowed (gcra, sliding-log) and goes to Redis again.
func TestRefusedInMemory(t *testing.T) {
	rd := startRedis(t)
	for _, alg := range []string{AlgorithmGCRA, AlgorithmSlidingLog, AlgorithmSlidingWindow} {
		t.Run(alg, func(t *testing.T) {
			l, _ := redisHandler(t, rd.addr(), time.Now, func(c *Config) {
				c.Algorithm = alg
				c.KeyPrefix = "blk-" + alg
				// A slot frees every window/4: the five requests below must all land within it.
				c.Limits = []Limit{{Requests: 4, Window: "2s"}}
			})
			for i := 0; i < 4; i++ {
				if w := hit(l, "a"); w.Code != 200 {
					t.Fatalf("request %d: %d", i, w.Code)
				}
			}
			start := *l.counters.fromMemory // counters are per middleware name, kept across subtests
			if w := hit(l, "a"); w.Code != 429 {
				t.Fatalf("fifth request: %d, want 429 from Redis", w.Code)
			}
			if *l.counters.fromMemory != start {
				t.Fatal("Redis' own refusal counted as refused in memory")
			}
			base, _ := l.client(hitRequest("a"))
			asked, inMemory := 0, int64(0)
			consumed := false
			for {
				_, blocked := l.blocks.check(base, time.Now())
				if !blocked {
					break
				}
				before := *l.counters.fromMemory
				w := hit(l, "a")
				if *l.counters.fromMemory == before {
					// The block ended between check and hit: Redis decided, and if it
					// admitted, this request took the slot the last check below expects.
					if w.Code == 200 {
						consumed = true
					}
					break
				}
				if w.Code != 429 || w.Header().Get("Retry-After") == "" || w.Header().Get("X-RateLimit-Remaining") != "0" {
					t.Fatalf("blocked request: %d, Retry-After %q, remaining %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("X-RateLimit-Remaining"))
				}
				inMemory++
				// Exactness: Redis, asked now, refuses as well (refused requests count for nothing).
				status, err := l.set.store.StatusFor(context.Background(), "", base)
				if err != nil {
					t.Fatal(err)
				}
				l.blocks.mu.Lock()
				until := l.blocks.clients[base].until
				l.blocks.mu.Unlock()
				if strings.HasPrefix(status, "1 ") {
					consumed = true // admitted by the direct check: it took the next slot
				}
				if time.Duration(until-time.Now().UnixNano()) < blockSlack {
					break // the answer may be from the block's last milliseconds (see blockSlack)
				}
				if !strings.HasPrefix(status, "0 ") {
					t.Fatalf("Redis allowed a request %s while the client was refused in memory (reply %q)", alg, status)
				}
				asked++
				time.Sleep(20 * time.Millisecond)
			}
			if inMemory == 0 || asked == 0 {
				t.Fatalf("no request was refused in memory (%d) or checked against Redis (%d)", inMemory, asked)
			}
			for {
				if _, blocked := l.blocks.check(base, time.Now()); !blocked {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if alg != AlgorithmSlidingWindow && !consumed {
				if w := hit(l, "a"); w.Code != 200 {
					t.Fatalf("first request after the retry time: %d, want 200", w.Code)
				}
			}
			t.Logf("%s: %d requests refused in memory, Redis refused all %d direct checks during the block", alg, inMemory, asked)
		})
	}
}

func TestBlockListBounded(t *testing.T) {
	b := newBlockList()
	now := time.Now()
	for i := 0; i < maxBlocked+10; i++ {
		b.add("client-"+strconv.Itoa(i), decision{}, 60000, now)
	}
	if n := blockedClients(b); n > maxBlocked {
		t.Fatalf("block list holds %d clients, bound %d", n, maxBlocked)
	}
	b.add("expired", decision{}, 1, now)
	if _, ok := b.check("expired", now.Add(2*time.Millisecond)); ok {
		t.Fatal("a block outlived its retry time")
	}
	b.add("probe", decision{reset: 90}, 59001, now)
	if d, ok := b.check("probe", now); !ok || d.retry != 60 || d.reset != 90 {
		t.Fatalf("blocked %v, retry %d, reset %d; want 60 and 90 seconds (rounded up)", ok, d.retry, d.reset)
	}
}

// blockedClients is the number of clients b holds.
func blockedClients(b *blockList) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.clients)
}

func hitRequest(client string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Auth-Client", client)
	return r
}

// TestPoolTimeoutIsNotAnOutage: a request that found every pooled connection busy for the
// whole timeout is refused as overload (503) under local and closed — never admitted from the
// local fallback's budget, which is this instance's own — passes under open, and does not mark
// Redis down.
func TestPoolTimeoutIsNotAnOutage(t *testing.T) {
	rd := startRedis(t)
	for _, tc := range []struct {
		policy string
		want   int
	}{{PolicyLocal, 503}, {PolicyClosed, 503}, {PolicyOpen, 200}} {
		t.Run(tc.policy, func(t *testing.T) {
			l, _ := redisHandler(t, rd.addr(), time.Now, func(c *Config) {
				c.FailurePolicy = tc.policy
				c.KeyPrefix = "pool-" + tc.policy
			})
			for i := 0; i < 5; i++ {
				w := httptest.NewRecorder()
				req := hitRequest("a")
				base, _ := l.client(req)
				l.redisFailed(w, req, base, l.set, resp.ErrPoolTimeout, false)
				if w.Code != tc.want {
					t.Fatalf("pool timeout %d under %s: %d, want %d", i, tc.policy, w.Code, tc.want)
				}
			}
			if l.redisBreaker.isDown() {
				t.Fatal("a busy pool marked Redis down")
			}
			if l.local != nil && localClients(l.local) != 0 {
				t.Fatal("a busy pool spent the local fallback's budget")
			}
		})
	}
}
