package resp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotCached is what Keyed.Status answers when it has no command for the key: the caller
// then uses StatusFor, which builds it. Nothing was sent.
var ErrNotCached = errors.New("resp: command not cached")

// Bounds of a Keyed's cache of encoded commands: at most maxCachedCommands (the cache is
// emptied when it is full), and only for keys of at most maxCachedKey bytes.
const (
	maxCachedCommands = 1024
	maxCachedKey      = 256
)

// Keyed is a Prepared EVALSHA on one Client whose keys are a per-call base followed by fixed
// suffixes (base+suffixes[0], base+suffixes[1]...), with a bounded cache of the encoded
// commands by a caller-chosen key (e.g. the client identifier the base was made from).
//
// It is the rate limiter's hot path under Yaegi, where every expression of a function costs
// an allocation on each call: a cached command for an idle pooled connection is one lock,
// one write, one line read and one lock, all in KeyedStatus; everything else (no idle
// connection, an error reply, a broken connection, the retry) is runStatus and statusReply
// (evalstatus.go).
type Keyed struct {
	c        *Client
	p        *Prepared
	suffixes []string
	cmds     map[string][]byte // guarded by c.mu; the values are never modified
	poolSize int               // c.opts.PoolSize
	timeout  time.Duration     // c.opts.Timeout

	// Cluster (c.cluster != nil): cmds stays empty, so KeyedStatus always answers
	// ErrNotCached and callers use StatusFor, which routes by slot with its own cache.
	cl    *clusterMap
	ccmds map[string]clusterCmd // guarded by c.mu
}

// clusterCmd is a cached command of a cluster Keyed and the slot of its keys.
type clusterCmd struct {
	cmd  []byte
	slot int
}

// Keyed returns the Keyed of p for keys base+suffixes[i]; p must be prepared for
// len(suffixes) keys.
func (c *Client) Keyed(p *Prepared, suffixes []string) (*Keyed, error) {
	if len(suffixes) != p.nkeys {
		return nil, fmt.Errorf("resp: EVALSHA: %d keys, prepared for %d", len(suffixes), p.nkeys)
	}
	return &Keyed{c: c, p: p, suffixes: suffixes, cmds: map[string][]byte{}, poolSize: c.opts.PoolSize, timeout: c.opts.Timeout,
		cl: c.cluster, ccmds: map[string]clusterCmd{}}, nil
}

// Status is EvalStatus with the command cached for key by an earlier StatusFor. Without one
// it sends nothing and returns ErrNotCached.
func (k *Keyed) Status(ctx context.Context, key string) (string, error) {
	return KeyedStatus(ctx, k, key, time.Now())
}

// KeyedStatus is k.Status for a caller that has just read the clock (now): the I/O deadline
// is now+Timeout. It is a function, not a method, for the interpreter: under Yaegi a method
// call costs ~20 more allocations than a function call (the receiver), and a clock read
// about ten.
func KeyedStatus(ctx context.Context, k *Keyed, key string, now time.Time) (string, error) {
	c := k.c
	mu := &c.mu
	mu.Lock()
	cmd := k.cmds[key]
	n := len(c.idle) - 1
	if cmd == nil || n < 0 || c.slots >= k.poolSize || c.closed {
		mu.Unlock()
		return k.statusSlow(ctx, cmd)
	}
	cn := c.idle[n]
	c.idle[n] = nil
	c.idle = c.idle[:n]
	c.slots++
	mu.Unlock()
	cn.nc.SetDeadline(now.Add(k.timeout))
	var line []byte
	_, err := cn.nc.Write(cmd)
	if err == nil {
		line, err = cn.br.ReadSlice('\n')
	}
	n = len(line) - 2
	if err != nil || n < 1 || line[0] != '+' || line[n] != '\r' {
		// Anything but a status line: statusReply decides, and retries once when it may.
		return c.statusReply(ctx, cn, k.p, cmd, line, err, true)
	}
	status := string(line[1:n])
	// put, for the common case: the connection came from the idle pool, nobody waits.
	mu.Lock()
	if c.closed || len(c.waiters) != 0 {
		mu.Unlock()
		c.put(cn)
		return status, nil
	}
	c.idle = append(c.idle, cn)
	c.slots--
	mu.Unlock()
	return status, nil
}

// statusSlow is Status without a cached command, or without an idle connection.
func (k *Keyed) statusSlow(ctx context.Context, cmd []byte) (string, error) {
	if cmd == nil {
		return "", ErrNotCached
	}
	return k.c.runStatus(ctx, k.p, cmd)
}

// StatusFor runs the script for the keys of base, like EvalStatus, and caches the command
// for key unless key is empty or longer than 256 bytes. key must stand for base: Status(key)
// sends that command again.
func (k *Keyed) StatusFor(ctx context.Context, key, base string) (string, error) {
	if k.cl != nil {
		return k.clusterStatus(ctx, key, base)
	}
	keys := make([]string, len(k.suffixes))
	for i, s := range k.suffixes {
		keys[i] = base + s
	}
	cmd := k.p.appendCommand(keys)
	if key != "" && len(key) <= maxCachedKey {
		c := k.c
		c.mu.Lock()
		if len(k.cmds) >= maxCachedCommands {
			k.cmds = map[string][]byte{}
		}
		k.cmds[key] = cmd
		c.mu.Unlock()
	}
	return k.c.runStatus(ctx, k.p, cmd)
}

// Forget drops the command cached for key: until the next StatusFor, Status for key sends
// nothing and answers ErrNotCached (so that the caller's slow path runs).
func (k *Keyed) Forget(key string) {
	c := k.c
	c.mu.Lock()
	delete(k.cmds, key)
	c.mu.Unlock()
}

// clusterStatus is StatusFor on a cluster: the command and its slot are cached by key.
func (k *Keyed) clusterStatus(ctx context.Context, key, base string) (string, error) {
	c := k.c
	c.mu.Lock()
	cc, ok := k.ccmds[key]
	c.mu.Unlock()
	if !ok || key == "" {
		keys := make([]string, len(k.suffixes))
		for i, s := range k.suffixes {
			keys[i] = base + s
		}
		cc = clusterCmd{cmd: k.p.appendCommand(keys), slot: KeySlot(keys[0])}
		if key != "" && len(key) <= maxCachedKey {
			c.mu.Lock()
			if len(k.ccmds) >= maxCachedCommands {
				k.ccmds = map[string]clusterCmd{}
			}
			k.ccmds[key] = cc
			c.mu.Unlock()
		}
	}
	return k.cl.status(ctx, k.p, cc.cmd, cc.slot)
}
