package resp

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEvalStatus(t *testing.T) {
	srv := sharedRedis(t, "plain")
	c := newClient(t, Options{Address: srv.addr()})
	ctx := context.Background()
	echo := NewScript(`return redis.status_reply(KEYS[1] .. ' ' .. KEYS[2] .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])`)
	p := echo.Prepare(2, []string{"a r g", ""})
	for _, tc := range []struct {
		desc string
		run  func() (string, error)
		want string
		err  string
	}{
		{desc: "status reply, keys and args encoded", want: "{k}:1 {k}:2 a r g ",
			run: func() (string, error) { return c.EvalStatus(ctx, p, []string{"{k}:1", "{k}:2"}) }},
		{desc: "NOSCRIPT: loaded and sent again", want: "{k}:x {k}:y a r g ",
			run: func() (string, error) {
				mustDo(t, c, "SCRIPT", "FLUSH")
				return c.EvalStatus(ctx, p, []string{"{k}:x", "{k}:y"})
			}},
		{desc: "error reply comes back as RedisError", err: "ERR",
			run: func() (string, error) {
				return c.EvalStatus(ctx, NewScript(`return redis.error_reply('ERR nope')`).Prepare(0, nil), nil)
			}},
		{desc: "a reply that is not a status is a protocol error", err: "did not answer a status reply",
			run: func() (string, error) {
				return c.EvalStatus(ctx, NewScript(`return {1, 2}`).Prepare(0, nil), nil)
			}},
		{desc: "wrong key count", err: "prepared for 2",
			run: func() (string, error) { return c.EvalStatus(ctx, p, []string{"one"}) }},
		{desc: "connection still in sync afterwards", want: "{k}:1 {k}:2 a r g ",
			run: func() (string, error) { return c.EvalStatus(ctx, p, []string{"{k}:1", "{k}:2"}) }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := tc.run()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if v := mustDo(t, c, "PING"); v.Str != "PONG" {
		t.Fatalf("PING after the cases: %+v", v)
	}
}

func TestKeyed(t *testing.T) {
	srv := sharedRedis(t, "plain")
	c := newClient(t, Options{Address: srv.addr()})
	ctx := context.Background()
	echo := NewScript(`return redis.status_reply(KEYS[1] .. ' ' .. KEYS[2] .. ' ' .. ARGV[1])`)
	if _, err := c.Keyed(echo.Prepare(2, []string{"arg"}), []string{":1"}); err == nil {
		t.Fatal("Keyed accepted 1 suffix for 2 keys")
	}
	k, err := c.Keyed(echo.Prepare(2, []string{"arg"}), []string{"}:1", "}:2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Status(ctx, "a"); err != ErrNotCached {
		t.Fatalf("uncached Status: %v, want ErrNotCached", err)
	}
	if got, err := k.StatusFor(ctx, "a", "{a"); err != nil || got != "{a}:1 {a}:2 arg" {
		t.Fatalf("StatusFor: %q, %v", got, err)
	}
	for i := 0; i < 3; i++ { // from the dial, then from the idle pool
		if got, err := k.Status(ctx, "a"); err != nil || got != "{a}:1 {a}:2 arg" {
			t.Fatalf("Status: %q, %v", got, err)
		}
	}
	mustDo(t, c, "SCRIPT", "FLUSH")
	if got, err := k.Status(ctx, "a"); err != nil || got != "{a}:1 {a}:2 arg" {
		t.Fatalf("Status after SCRIPT FLUSH: %q, %v", got, err)
	}
	// Not cached: an empty key, a long one; the cache is bounded.
	if _, err := k.StatusFor(ctx, "", "{b"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.StatusFor(ctx, strings.Repeat("x", maxCachedKey+1), "{c"); err != nil {
		t.Fatal(err)
	}
	if n := cachedCommands(k); n != 1 {
		t.Fatalf("%d commands cached, want 1", n)
	}
	for i := 0; i < maxCachedCommands; i++ {
		k.mustCache(t, strconv.Itoa(i))
	}
	if n := cachedCommands(k); n > maxCachedCommands {
		t.Fatalf("%d commands cached, bound %d", n, maxCachedCommands)
	}
	if st := c.Stats(); st.Open != 1 || st.Idle != 1 {
		t.Fatalf("stats %+v, want one connection, idle", st)
	}
	k.mustCache(t, "a")
	c.Close()
	if _, err := k.Status(ctx, "a"); err != ErrClosed {
		t.Fatalf("Status after Close: %v, want ErrClosed", err)
	}
}

// mustCache caches the command of key without sending it.
func (k *Keyed) mustCache(t testing.TB, key string) {
	t.Helper()
	k.c.mu.Lock()
	if len(k.cmds) >= maxCachedCommands {
		k.cmds = map[string][]byte{}
	}
	k.cmds[key] = []byte("x")
	k.c.mu.Unlock()
}

// cachedCommands returns the number of commands k has cached.
func cachedCommands(k *Keyed) int {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	return len(k.cmds)
}

// TestStatusRetry: a cached command whose idle connections died with a server restart is
// sent once more, on a new connection (statusReply's first retry).
func TestStatusRetry(t *testing.T) {
	s := newRedis(t, true)
	c := newClient(t, Options{Address: s.addr(), PoolSize: 4, Timeout: time.Second})
	ctx := context.Background()
	echo := NewScript(`return redis.status_reply(KEYS[1])`)
	k, err := c.Keyed(echo.Prepare(1, nil), []string{"}:1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.StatusFor(ctx, "a", "{a"); err != nil || got != "{a}:1" {
		t.Fatalf("StatusFor: %q, %v", got, err)
	}
	s.stop()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	// The restarted server has no scripts: load this one from another client, so that the
	// retry answers.
	other := newClient(t, Options{Address: s.addr()})
	if err := other.LoadScript(ctx, echo); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Status(ctx, "a"); err != nil || got != "{a}:1" {
		t.Fatalf("Status after a restart: %q, %v", got, err)
	}
	if st := c.Stats(); st.Retries != 1 || st.Open != 1 || st.Idle != 1 || st.Discarded != 1 {
		t.Fatalf("stats %+v; want one retry on a new connection, the dead one discarded", st)
	}
	checkQuiet(t, c)
}
