package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Errors of the client itself (server errors are RedisError).
var (
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("resp: client closed")
	// ErrPoolTimeout: all PoolSize connections stayed busy for the whole Timeout.
	ErrPoolTimeout = errors.New("resp: timed out waiting for a free connection")

	errNoArgs = errors.New("resp: no command")
)

// Client is a pool of connections to one Redis server. It is safe for concurrent use and
// starts no goroutine. A connection that saw an I/O or protocol error is closed, never
// reused; error replies (RedisError) leave it in the pool.
//
// Under Yaegi every statement costs (about a microsecond), so the command path is written
// for few statements: one mutex, no select and no timer unless the pool is exhausted.
type Client struct {
	opts      Options
	dialer    *net.Dialer
	tlsDialer *tls.Dialer
	sentinel  *sentinelSet   // Sentinel: where the primary is; nil for one server
	sentConns map[*conn]bool // Sentinel: every open connection (guarded by mu), closed on a switch
	cluster   *clusterMap    // Cluster: the routing layer; this Client's own pool is unused

	mu      sync.Mutex
	slots   int          // slots taken: connections in use or being dialed, at most PoolSize
	idle    []*conn      // open and free, LIFO; they take no slot
	waiters []chan error // FIFO of callers waiting for a slot (see wait)
	closed  bool
	stats   Stats
}

// Stats are counters of a Client, for metrics and tests.
type Stats struct {
	Open         int   // connections open now, idle or in use
	Idle         int   // connections open and idle now
	Dials        int64 // connections opened (connected, authenticated, DB selected)
	DialErrors   int64 // failed attempts to open one
	Discarded    int64 // connections closed after an I/O or protocol error
	Timeouts     int64 // commands that hit their deadline (their connection is discarded)
	Waits        int64 // commands that found every connection busy and waited
	PoolTimeouts int64 // waits for a free connection that ran out of time
	Retries      int64 // commands sent again after an idle connection turned out dead
}

// New checks opts and returns a Client. It does not connect: the first command does.
// Errors name the option at fault.
func New(opts Options) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	c := &Client{
		opts:   o,
		dialer: &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second},
	}
	if o.TLS {
		c.tlsDialer = &tls.Dialer{NetDialer: c.dialer, Config: o.TLSConfig}
	}
	if len(o.SentinelAddrs) > 0 {
		c.sentinel = &sentinelSet{
			addrs:    o.SentinelAddrs,
			name:     o.MasterName,
			user:     o.SentinelUsername,
			pass:     o.SentinelPassword,
			dial:     c.dialAddr,
			budget:   o.DialTimeout + o.Timeout,
			counters: o.Counters,
			onEvent:  o.OnEvent,
		}
		c.sentConns = map[*conn]bool{}
		c.sentinel.watching = o.SentinelNoWatch // true: never started
		c.sentinel.onSwitch = c.switchPrimary
	}
	if len(o.ClusterAddrs) > 0 {
		c.cluster = newCluster(o)
	}
	return c, nil
}

// Do sends one command and reads its reply. A server error reply is returned as the Value
// (TypeError) and a RedisError. The command waits for a free connection for at most
// Options.Timeout, then its write and read have Options.Timeout, or until ctx's deadline if
// sooner; a ctx cancelled without a deadline is seen before the command is sent and while
// waiting for a connection, not while it runs.
//
// If a connection taken from the idle pool turns out to be closed by the server (no reply
// at all, not a timeout: e.g. after a Redis restart), the idle connections are dropped and
// the command is sent once more on a new connection.
func (c *Client) Do(ctx context.Context, args ...string) (Value, error) {
	if len(args) == 0 {
		return Value{}, errNoArgs
	}
	if c.cluster != nil {
		return c.cluster.do(ctx, args)
	}
	return c.send(ctx, appendCommand(make([]byte, 0, 64), args), args[0])
}

// send sends one encoded command (name is its first word, for errors) and reads its reply.
func (c *Client) send(ctx context.Context, cmd []byte, name string) (Value, error) {
	if err := ctx.Err(); err != nil {
		return Value{}, err
	}
	cn, err := c.get(ctx)
	if err != nil {
		return Value{}, err
	}
	v, err := cn.roundTrip(cmd, c.deadline(ctx))
	if err == nil {
		c.put(cn)
		return v, nil
	}
	return c.failed(ctx, cn, cmd, name, v, err)
}

// failed handles a command that got an error: an error reply, or a broken connection (then
// maybe sent again, see Do).
func (c *Client) failed(ctx context.Context, cn *conn, cmd []byte, name string, v Value, err error) (Value, error) {
	if re, ok := err.(RedisError); ok {
		if c.readOnly(re) {
			c.discard(cn, err)
			c.release()
			return v, re
		}
		c.put(cn)
		return v, re
	}
	if !deadOnArrival(cn, cn.noReply, err) {
		c.discard(cn, err)
		c.release()
		return Value{}, fmt.Errorf("resp: %s: %w", name, err)
	}
	cn2, err2 := c.redial(ctx, cn, err)
	if err2 != nil {
		return Value{}, err2
	}
	v2, err2 := cn2.roundTrip(cmd, c.deadline(ctx))
	if err2 == nil {
		c.put(cn2)
		return v2, nil
	}
	if re, ok := err2.(RedisError); ok {
		c.put(cn2)
		return v2, re
	}
	c.discard(cn2, err2)
	c.release()
	return Value{}, fmt.Errorf("resp: %s: %w", name, err2)
}

// deadOnArrival tells whether a command that failed with err on cn is worth sending again on a
// new connection: cn had been idle in the pool and no byte of the reply came, without a
// timeout (the server closed the connection meanwhile, e.g. it restarted).
func deadOnArrival(cn *conn, noReply bool, err error) bool {
	return cn.reused && noReply && !isTimeout(err)
}

// redial is the retry of a command whose idle connection cn turned out dead (deadOnArrival):
// cn and the other idle connections are closed, and a new connection is opened in cn's slot.
// If that fails the slot is freed.
func (c *Client) redial(ctx context.Context, cn *conn, err error) (*conn, error) {
	c.discard(cn, err)
	c.dropIdle()
	cn2, err2 := c.dial(ctx)
	if err2 != nil {
		c.release()
		return nil, err2
	}
	c.mu.Lock()
	c.stats.Retries++
	c.mu.Unlock()
	return cn2, nil
}

// deadline is the I/O deadline of a command starting now.
func (c *Client) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(c.opts.Timeout)
	ctxDeadline, ok := ctx.Deadline()
	if ok && ctxDeadline.Before(d) {
		return ctxDeadline
	}
	return d
}

// get returns a connection, idle or new, holding a slot.
func (c *Client) get(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	if c.slots < c.opts.PoolSize && !c.closed {
		c.slots++
		return c.takeSlot(ctx)
	}
	return c.wait(ctx)
}

// takeSlot, called with c.mu held by a caller that holds a slot, returns the most recently
// idle connection, or dials one; it unlocks c.mu.
func (c *Client) takeSlot(ctx context.Context) (*conn, error) {
	n := len(c.idle)
	if n > 0 {
		cn := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	return c.dialSlot(ctx)
}

// wait is get when no slot is free; it is called with c.mu held.
func (c *Client) wait(ctx context.Context) (*conn, error) {
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.stats.Waits++
	// Every way the wait ends is a value on one channel, no select: Yaegi v0.16.1 shares a
	// select statement's cases between the goroutines running it. nil: a slot was handed
	// over (releaseLocked); ErrClosed (Close); ErrPoolTimeout; ctx's error. Each is sent at
	// most once, so a buffer of 4 never blocks a sender.
	w := make(chan error, 4)
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()

	t := time.AfterFunc(c.opts.Timeout, func() { w <- ErrPoolTimeout })
	stop := context.AfterFunc(ctx, func() {
		w <- fmt.Errorf("resp: waiting for a free connection: %w", ctx.Err())
	})
	err := <-w
	t.Stop()
	stop()

	c.mu.Lock()
	if err == nil && c.closed {
		err = ErrClosed
	}
	if err != nil {
		if !c.removeWaiter(w) {
			// A slot was handed over to us meanwhile: pass it on.
			c.releaseLocked()
		}
		if err == ErrPoolTimeout {
			c.stats.PoolTimeouts++
		}
		c.mu.Unlock()
		return nil, err
	}
	return c.takeSlot(ctx)
}

// removeWaiter takes w out of the queue; false if it is not there (it got a slot).
func (c *Client) removeWaiter(w chan error) bool {
	// An index loop: ranging over a slice of channels panics under Yaegi v0.16.1.
	for i := 0; i < len(c.waiters); i++ {
		if c.waiters[i] == w {
			copy(c.waiters[i:], c.waiters[i+1:])
			c.waiters[len(c.waiters)-1] = nil
			c.waiters = c.waiters[:len(c.waiters)-1]
			return true
		}
	}
	return false
}

// dialSlot opens a connection in a slot already taken, and frees the slot if that fails.
func (c *Client) dialSlot(ctx context.Context) (*conn, error) {
	cn, err := c.dial(ctx)
	if err != nil {
		c.release()
		return nil, err
	}
	return cn, nil
}

// put returns a healthy connection to the idle pool and frees its slot.
func (c *Client) put(cn *conn) {
	cn.reused = true
	c.mu.Lock()
	if c.closed {
		c.stats.Open--
		c.unregisterLocked([]*conn{cn})
		c.releaseLocked()
		c.mu.Unlock()
		cn.close()
		return
	}
	c.idle = append(c.idle, cn)
	if len(c.waiters) == 0 {
		c.slots--
		c.mu.Unlock()
		return
	}
	c.releaseLocked()
	c.mu.Unlock()
}

// release frees the slot of a connection that was discarded or never opened.
func (c *Client) release() {
	c.mu.Lock()
	c.releaseLocked()
	c.mu.Unlock()
}

// releaseLocked hands the slot to the first waiter, if any, or frees it.
func (c *Client) releaseLocked() {
	if len(c.waiters) == 0 {
		c.slots--
		return
	}
	w := c.waiters[0]
	c.waiters[0] = nil
	c.waiters = c.waiters[1:]
	w <- nil
}

// discard closes a connection after err; its slot stays taken.
func (c *Client) discard(cn *conn, err error) {
	cn.close()
	c.mu.Lock()
	if c.sentConns != nil {
		delete(c.sentConns, cn)
	}
	c.stats.Open--
	c.stats.Discarded++
	if isTimeout(err) {
		c.stats.Timeouts++
	}
	c.mu.Unlock()
}

// dropIdle closes the idle connections: one was found dead, the others likely are too.
func (c *Client) dropIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.stats.Open -= len(idle)
	c.unregisterLocked(idle)
	c.mu.Unlock()
	for _, cn := range idle {
		cn.close()
	}
}

// Close closes the idle connections; the ones in use are closed when their command ends.
// Later commands, and those waiting for a connection, fail with ErrClosed. Closing twice
// is a no-op.
func (c *Client) Close() error {
	if c.cluster != nil {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		return c.cluster.close()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	// Wake the waiters (they stay queued: see wait). An index loop: ranging over a slice of
	// channels panics under Yaegi v0.16.1.
	for i := 0; i < len(c.waiters); i++ {
		c.waiters[i] <- ErrClosed
	}
	idle := c.idle
	c.idle = nil
	c.stats.Open -= len(idle)
	c.unregisterLocked(idle)
	c.mu.Unlock()
	if c.sentinel != nil {
		c.sentinel.stop()
	}

	var errs []error
	for _, cn := range idle {
		if err := cn.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	s := c.stats
	s.Idle = len(c.idle)
	c.mu.Unlock()
	return s
}

// isTimeout tells whether err is a deadline (of a connection or a dial) that passed.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}
