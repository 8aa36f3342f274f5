package attacktest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisKeys lists the rate limiter's keys (keyPrefix ptb:rl, the default).
func redisKeys(t *testing.T, s *stack) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.redis.Addr()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var keys []string
	iter := c.Scan(ctx, 0, "ptb:rl:*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return keys
}

// checkTTLs: at least min keys, and every key expires within two windows and a second (the
// sliding window's PEXPIRE), so many distinct clients cost Redis memory for that long only.
func checkTTLs(t *testing.T, s *stack, min int) {
	t.Helper()
	keys := redisKeys(t, s)
	if len(keys) < min {
		t.Fatalf("%d rate-limit keys in Redis, want at least %d", len(keys), min)
	}
	c := redis.NewClient(&redis.Options{Addr: s.redis.Addr()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	limit := 2*rateWindow + time.Second
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", k, err)
		}
		if ttl <= 0 || ttl > limit {
			t.Fatalf("key %s: TTL %v, want in (0, %v]", k, ttl, limit)
		}
	}
	t.Logf("%d rate-limit keys, every one expiring within %v", len(keys), limit)
}
