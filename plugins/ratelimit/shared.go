package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"

	"github.com/pavilion-trust/gateway/plugins/resp"
)

// Middlewares with the same Redis options share one connection pool within an interpreter:
// the routers × entry points that use one middleware, the instances Traefik builds on each
// configuration reload, and the suite's middlewares. A pool lives while at least one
// middleware that uses it is alive (its New context not done); the last one closes it.
var pools = struct {
	mu      sync.Mutex
	entries map[string]*sharedPool
}{entries: map[string]*sharedPool{}}

type sharedPool struct {
	client *resp.Client
	users  int
}

// poolKey identifies Redis options; the password enters only as a hash.
func poolKey(o resp.Options) string {
	sum := sha256.Sum256([]byte(o.Password + "\x00" + o.SentinelPassword))
	return o.Address + "\x00" + o.Username + "\x00" + hex.EncodeToString(sum[:8]) + "\x00" +
		strconv.Itoa(o.DB) + "\x00" + strconv.FormatBool(o.TLS) + "\x00" + o.DialTimeout.String() +
		"\x00" + o.Timeout.String() + "\x00" + strconv.Itoa(o.PoolSize) + "\x00" + o.TLSID + "\x00" +
		strings.Join(o.SentinelAddrs, ",") + "\x00" + o.MasterName + "\x00" + o.SentinelUsername + "\x00" +
		strings.Join(o.ClusterAddrs, ",")
}

// acquirePool returns the shared client for o, creating it when needed, and releases it
// when ctx ends.
func acquirePool(ctx context.Context, o resp.Options) (*resp.Client, error) {
	key := poolKey(o)
	pools.mu.Lock()
	e := pools.entries[key]
	if e == nil {
		c, err := resp.New(o)
		if err != nil {
			pools.mu.Unlock()
			return nil, err
		}
		e = &sharedPool{client: c}
		pools.entries[key] = e
	}
	e.users++
	pools.mu.Unlock()
	go releasePool(ctx, key, e)
	return e.client, nil
}

func releasePool(ctx context.Context, key string, e *sharedPool) {
	<-ctx.Done()
	pools.mu.Lock()
	e.users--
	last := e.users == 0
	if last {
		delete(pools.entries, key)
	}
	pools.mu.Unlock()
	if last {
		e.client.Close()
	}
}

// poolCount reports how many shared pools exist for address (for tests).
func poolCount(address string) int {
	pools.mu.Lock()
	defer pools.mu.Unlock()
	n := 0
	for key := range pools.entries {
		if strings.HasPrefix(key, address+"\x00") {
			n++
		}
	}
	return n
}
