package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// errResolving: another goroutine was asking the sentinels and found no primary, or took
// longer than the bound.
var errResolving = errors.New("resp: asking the sentinels for the primary (in progress)")

// errNoPrimary: the primary the sentinels named last was dropped less than minAskInterval
// ago.
var errNoPrimary = errors.New("resp: no usable primary (the sentinels were asked less than 100ms ago)")

// sentinel finds the primary of a Sentinel deployment. The primary's address is asked for
// only when a connection has to be opened and none is known (at first, and after forget:
// a READONLY reply, a dial that failed, a server that says it is not the primary), so the
// command path costs nothing more than with one server.
type sentinelSet struct {
	addrs      []string
	name       string
	user, pass string
	dial       func(ctx context.Context, addr string) (net.Conn, error)
	budget     time.Duration // bound on one round of asking the sentinels
	counters   Counters
	onEvent    func(event, nodes, msg string)
	onSwitch   func(addr string) // the client's switchPrimary

	watching bool     // the +switch-master subscriber runs
	stopped  bool     // the client was closed: the subscriber stops
	sub      net.Conn // the subscriber's connection, closed by stop

	mu        sync.Mutex
	current   string // the primary to dial; "" when it must be asked for
	last      string // the primary last found, for counting switches
	resolving bool
	next      int // the sentinel asked first (the last one that answered)
	switches  int64
	asked     int64
	lastErr   string
	lastAsk   time.Time
}

// minAskInterval: the sentinels are asked at most this often.
const minAskInterval = 100 * time.Millisecond

// primary returns the primary's address, asking the sentinels when it is not known.
func (s *sentinelSet) primary(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.current != "" {
		addr := s.current
		s.mu.Unlock()
		return addr, nil
	}
	if s.resolving {
		s.mu.Unlock()
		return s.awaitPrimary()
	}
	if time.Since(s.lastAsk) < minAskInterval {
		// The primary just named was dropped (dead, demoted): the sentinels have not
		// promoted another yet. Do not ask them again at the rate of the requests.
		s.mu.Unlock()
		return "", errNoPrimary
	}
	s.lastAsk = time.Now()
	s.resolving = true
	first := s.next
	s.mu.Unlock()

	addr, idx, err := s.ask(ctx, first)

	s.mu.Lock()
	s.resolving = false
	s.asked++
	if err != nil {
		s.lastErr = err.Error()
		s.mu.Unlock()
		return "", err
	}
	s.next = idx
	s.current = addr
	watch := !s.watching
	changed := s.last != addr
	previous := s.last
	if previous != "" && changed {
		s.switches++
	}
	s.last = addr
	s.mu.Unlock()
	if watch {
		s.watch()
	}
	if changed {
		if previous != "" {
			count(s.counters.PrimarySwitches)
		}
		if s.onEvent != nil {
			f := s.onEvent
			f("redis_primary", addr, "sentinel names "+addr+" as primary "+s.name+" (before: "+previous+")")
		}
	}
	return addr, nil
}

// awaitPrimary waits for the round of asking in progress, polling (no select: see
// Client.wait), at most budget.
func (s *sentinelSet) awaitPrimary() (string, error) {
	for k := 0; k < int(s.budget/(2*time.Millisecond))+1; k++ {
		time.Sleep(2 * time.Millisecond)
		s.mu.Lock()
		addr := s.current
		busy := s.resolving
		s.mu.Unlock()
		if addr != "" {
			return addr, nil
		}
		if !busy {
			break
		}
	}
	return "", errResolving
}

// isCurrent tells whether addr is still the primary in use.
func (s *sentinelSet) isCurrent(addr string) bool {
	s.mu.Lock()
	ok := s.current == addr
	s.mu.Unlock()
	return ok
}

// forget drops addr as the primary (addr "" drops any): the next connection asks again.
func (s *sentinelSet) forget(addr string) {
	s.mu.Lock()
	if addr == "" || s.current == addr {
		s.current = ""
	}
	s.mu.Unlock()
}

// ask asks each sentinel in turn, from first, for the primary's address; idx is the index
// of the sentinel that answered. The whole round is bounded by budget.
func (s *sentinelSet) ask(ctx context.Context, first int) (string, int, error) {
	ctx2, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	var errs []string
	for k := 0; k < len(s.addrs); k++ {
		idx := (first + k) % len(s.addrs)
		addr, err := s.askOne(ctx2, s.addrs[idx])
		if err == nil {
			return addr, idx, nil
		}
		errs = append(errs, s.addrs[idx]+": "+err.Error())
		if ctx2.Err() != nil {
			break
		}
	}
	return "", 0, fmt.Errorf("resp: no sentinel named the primary %q (%s)", s.name, strings.Join(errs, "; "))
}

// askOne sends SENTINEL GET-MASTER-ADDR-BY-NAME to one sentinel, on a connection of its own.
func (s *sentinelSet) askOne(ctx context.Context, addr string) (string, error) {
	nc, err := s.dial(ctx, addr)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	var buf []byte
	if s.pass != "" {
		if s.user != "" {
			buf = appendCommand(buf, []string{"AUTH", s.user, s.pass})
		} else {
			buf = appendCommand(buf, []string{"AUTH", s.pass})
		}
	}
	buf = appendCommand(buf, []string{"SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.name})
	if _, err := nc.Write(buf); err != nil {
		return "", err
	}
	br := bufio.NewReaderSize(nc, readBufferSize)
	if s.pass != "" {
		_, err := readReply(br, 1024)
		if err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	v, err := readReply(br, 4096)
	if err != nil {
		return "", err
	}
	if v.Type == TypeError {
		return "", RedisError(v.Str)
	}
	if v.Null || v.Type != TypeArray || len(v.Array) != 2 || v.Array[0].Type != TypeBulk || v.Array[1].Type != TypeBulk {
		return "", fmt.Errorf("does not know a primary named %q", s.name)
	}
	return net.JoinHostPort(v.Array[0].Str, v.Array[1].Str), nil
}

// checkRole asks a new connection for its ROLE: it must be the primary ("master").
func (c *Client) checkRole(ctx context.Context, cn *conn) error {
	v, err := cn.roundTrip(appendCommand(nil, []string{"ROLE"}), c.deadline(ctx))
	if err != nil {
		return fmt.Errorf("resp: ROLE: %w", err)
	}
	if v.Type != TypeArray || len(v.Array) == 0 || v.Array[0].Str != "master" {
		role := "unknown"
		if v.Type == TypeArray && len(v.Array) > 0 {
			role = v.Array[0].Str
		}
		return fmt.Errorf("resp: the server the sentinels named is not the primary (role %s)", role)
	}
	return nil
}

// readOnly handles a READONLY reply (the server was demoted to a replica by a failover):
// with Sentinel, the primary is asked for again and the idle connections, all to the old
// one, are closed. It tells whether re was one.
func (c *Client) readOnly(re RedisError) bool {
	if c.sentinel == nil || !strings.HasPrefix(string(re), "READONLY") {
		return false
	}
	c.sentinel.forget("")
	c.dropIdle()
	return true
}

// SentinelState is what a Sentinel client knows about the primary, for logs and metrics.
type SentinelState struct {
	Primary  string // address of the primary in use, "" when it is being looked for
	Switches int64  // times the primary changed (failovers seen)
	Asked    int64  // rounds of asking the sentinels
	LastErr  string // the last round's error, if it failed
}

// Sentinel returns the state of a Sentinel client (ok false for another topology).
func (c *Client) Sentinel() (SentinelState, bool) {
	s := c.sentinel
	if s == nil {
		return SentinelState{}, false
	}
	s.mu.Lock()
	st := SentinelState{Primary: s.current, Switches: s.switches, Asked: s.asked, LastErr: s.lastErr}
	s.mu.Unlock()
	return st, true
}

// unregisterLocked forgets closed connections (Sentinel only); c.mu is held.
func (c *Client) unregisterLocked(cns []*conn) {
	if c.sentConns == nil {
		return
	}
	for _, cn := range cns {
		delete(c.sentConns, cn)
	}
}

// switchPrimary makes addr the primary at once (the sentinels announced +switch-master):
// every connection to another server is closed, idle or in use (a command running on one
// fails, and gets the failure policy), so that nothing is written to the old primary while
// it is still a primary in its own eyes (Sentinel demotes it later).
func (c *Client) switchPrimary(addr string) {
	c.mu.Lock()
	var stale []*conn
	for cn := range c.sentConns {
		if cn.addr != addr {
			stale = append(stale, cn)
		}
	}
	c.mu.Unlock()
	for _, cn := range stale {
		cn.nc.Close() // the holder (or the next user of an idle one) sees the error
	}
	c.dropIdle()
}

// watch starts, once, the goroutine that listens to the sentinels' +switch-master
// announcements (a failover is followed within milliseconds, not when an error shows it).
func (s *sentinelSet) watch() {
	s.mu.Lock()
	if s.watching || s.stopped {
		s.mu.Unlock()
		return
	}
	s.watching = true
	s.mu.Unlock()
	go s.listen()
}

// stop ends the subscriber (Client.Close).
func (s *sentinelSet) stop() {
	s.mu.Lock()
	s.stopped = true
	nc := s.sub
	s.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

// listen subscribes to +switch-master on one sentinel after another (the next one when a
// connection breaks, after a second), until stop.
func (s *sentinelSet) listen() {
	for i := 0; ; i++ {
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return
		}
		s.subscribe(s.addrs[i%len(s.addrs)])
		time.Sleep(time.Second)
	}
}

// subscribe listens on one sentinel until its connection fails or stop closes it.
func (s *sentinelSet) subscribe(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.budget)
	nc, err := s.dial(ctx, addr)
	cancel()
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.sub = nc
	s.mu.Unlock()
	defer nc.Close()
	var buf []byte
	if s.pass != "" {
		if s.user != "" {
			buf = appendCommand(buf, []string{"AUTH", s.user, s.pass})
		} else {
			buf = appendCommand(buf, []string{"AUTH", s.pass})
		}
	}
	buf = appendCommand(buf, []string{"SUBSCRIBE", "+switch-master"})
	nc.SetDeadline(time.Now().Add(s.budget))
	if _, err := nc.Write(buf); err != nil {
		return
	}
	br := bufio.NewReaderSize(nc, readBufferSize)
	if s.pass != "" {
		if _, err := readReply(br, 1024); err != nil {
			return
		}
	}
	if v, err := readReply(br, 1024); err != nil || v.Type != TypeArray {
		return
	}
	// Subscribed: a switch announced while nobody listened is caught by asking once.
	nc.SetDeadline(time.Time{})
	s.recheck()
	for {
		v, err := readReply(br, 4096)
		if err != nil {
			return
		}
		if v.Type != TypeArray || len(v.Array) != 3 || v.Array[0].Str != "message" {
			continue
		}
		// "<name> <old ip> <old port> <new ip> <new port>"
		f := strings.Split(v.Array[2].Str, " ")
		if len(f) == 5 && f[0] == s.name {
			s.switchTo(net.JoinHostPort(f[3], f[4]))
		}
	}
}

// recheck asks the sentinels for the primary and switches if it is not the one in use.
func (s *sentinelSet) recheck() {
	s.mu.Lock()
	current := s.current
	first := s.next
	s.mu.Unlock()
	if current == "" {
		return
	}
	addr, _, err := s.ask(context.Background(), first)
	if err == nil && addr != current {
		s.switchTo(addr)
	}
}

// switchTo makes addr the primary (announced by the sentinels).
func (s *sentinelSet) switchTo(addr string) {
	s.mu.Lock()
	previous := s.last
	if s.current == addr || s.stopped {
		s.mu.Unlock()
		return
	}
	s.current = addr
	s.last = addr
	s.switches++
	s.mu.Unlock()
	count(s.counters.PrimarySwitches)
	if s.onEvent != nil {
		f := s.onEvent
		f("redis_primary", addr, "sentinel switched primary "+s.name+" to "+addr+" (before: "+previous+")")
	}
	if s.onSwitch != nil {
		g := s.onSwitch
		g(addr)
	}
}
