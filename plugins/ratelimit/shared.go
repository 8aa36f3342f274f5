package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/pavilion-trust/gateway/plugins/refcount"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// Middlewares with the same Redis options share one connection pool within an interpreter:
// the routers × entry points that use one middleware, the instances Traefik builds on each
// configuration reload, and the suite's middlewares. A pool lives while at least one
// middleware that uses it is alive (its New context not done); the last one closes it.
var pools = refcount.New(closePool)

func closePool(v any) {
	v.(*resp.Client).Close()
}

// poolKey identifies Redis options; the password enters only as a hash. It starts with the
// address and "\x00" (tests count the pools of an address by that prefix).
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
	v, err := pools.Acquire(ctx, poolKey(o), func() (any, error) { return newPool(o) })
	if err != nil {
		return nil, err
	}
	return v.(*resp.Client), nil
}

// newPool is resp.New with its result as any, for pools.Acquire.
func newPool(o resp.Options) (any, error) {
	c, err := resp.New(o)
	if err != nil {
		return nil, err
	}
	return c, nil
}
