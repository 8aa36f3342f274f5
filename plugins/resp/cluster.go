package resp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Redis Cluster: 16384 hash slots, each served by one primary. A key's slot is the CRC16 of
// its hash tag (the part between the first '{' and the next '}', when not empty), so keys
// that share a tag share a slot: the rate limiter's keys of one client do, and one script
// touches them all on one node in one round trip.
const (
	clusterSlots = 16384
	// maxClusterNodes bounds the pools a cluster client opens (one per primary).
	maxClusterNodes = 1024
	// minRefreshInterval: a storm of MOVED replies (a reshard) makes one map refresh at most
	// this often; the redirected slot is patched at once in between.
	minRefreshInterval = time.Second
	noNode             = 0xFFFF
)

// Errors of a cluster client.
var (
	errNoNode = errors.New("resp: no cluster node serves this slot (slot map being read)")
)

// Counters are counted into by a client when set in Options (for the plugins' metrics):
// each pointer may be nil.
type Counters struct {
	Moved, Ask, Refreshes, RefreshErrors, TryAgain, ClusterDown, PrimarySwitches *int64
}

func count(p *int64) {
	if p != nil {
		atomic.AddInt64(p, 1)
	}
}

// cluster is the routing layer of a Client made from Options.ClusterAddrs: a slot map, a
// Client (pool) per primary, MOVED/ASK handling and rate-limited map refreshes. All of its
// fields are guarded by mu; the map is patched in place on MOVED and replaced on refresh.
type clusterMap struct {
	opts  Options // template of the node clients (Address set per node)
	seeds []string

	mu         sync.Mutex
	owner      []uint16 // slot -> index in nodes, noNode when unknown
	nodes      []any    // *Client of the primaries of the map, then of nodes met by redirection (any: Yaegi v0.16.1 cannot compile the type cycle Client → clusterMap → []*Client)
	byAddr     map[string]int
	refreshing bool
	lastTry    time.Time
	closed     bool
	refreshes  int64
	lastErr    string
}

func newCluster(o Options) *clusterMap {
	cl := &clusterMap{opts: o, seeds: o.ClusterAddrs, byAddr: map[string]int{}}
	cl.owner = make([]uint16, clusterSlots)
	for i := 0; i < clusterSlots; i++ {
		cl.owner[i] = noNode
	}
	return cl
}

// nodeFor returns the client of slot's node. When the slot has no node (the map was never
// read, or has a hole), the map is read now, within ctx and the command timeout; a caller
// that finds a read in progress waits for it, polling, as long (no select: see wait).
func (cl *clusterMap) nodeFor(ctx context.Context, slot int) *Client {
	cl.mu.Lock()
	i := cl.owner[slot]
	if i != noNode {
		n := cl.nodes[i].(*Client)
		cl.mu.Unlock()
		return n
	}
	if cl.closed {
		cl.mu.Unlock()
		return nil
	}
	busy := cl.refreshing
	if !busy {
		cl.refreshing = true
		cl.lastTry = time.Now()
	}
	cl.mu.Unlock()
	if busy {
		for k := 0; k < int(cl.opts.Timeout/(5*time.Millisecond))+1; k++ {
			time.Sleep(5 * time.Millisecond)
			cl.mu.Lock()
			busy = cl.refreshing
			cl.mu.Unlock()
			if !busy {
				break
			}
		}
	} else {
		ctx2, cancel := context.WithTimeout(ctx, cl.opts.DialTimeout+cl.opts.Timeout)
		cl.finishRefresh(cl.load(ctx2))
		cancel()
	}
	cl.mu.Lock()
	var n *Client
	if cl.owner[slot] != noNode {
		n = cl.nodes[cl.owner[slot]].(*Client)
	}
	cl.mu.Unlock()
	return n
}

// nodeAt returns the client of the node at addr, creating its pool (within bounds); called
// with cl.mu held. -1 when there are too many nodes or the client is closed.
func (cl *clusterMap) nodeAtLocked(addr string) int {
	if i, ok := cl.byAddr[addr]; ok {
		return i
	}
	if cl.closed || len(cl.nodes) >= maxClusterNodes {
		return -1
	}
	o := cl.opts
	o.Address = addr
	o.ClusterAddrs = nil
	c, err := New(o)
	if err != nil {
		return -1
	}
	cl.nodes = append(cl.nodes, c)
	cl.byAddr[addr] = len(cl.nodes) - 1
	return len(cl.nodes) - 1
}

// status runs a prepared command for a key of slot: one round trip in the steady state;
// MOVED patches the map (and schedules a refresh) and is followed once, ASK is followed once
// with ASKING; TRYAGAIN, CLUSTERDOWN and I/O errors are returned (the caller's failure
// policy).
func (cl *clusterMap) status(ctx context.Context, p *Prepared, cmd []byte, slot int) (string, error) {
	node := cl.nodeFor(ctx, slot)
	if node == nil {
		return "", cl.noNode()
	}
	status, err := node.runStatus(ctx, p, cmd)
	if err == nil {
		return status, nil
	}
	return cl.redirect(ctx, p, cmd, slot, err)
}

// noNode is the error of a slot without a node: ErrClosed once closed.
func (cl *clusterMap) noNode() error {
	cl.mu.Lock()
	closed := cl.closed
	cl.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return errNoNode
}

// evalSHA is EvalSHA on the node of keys[0]'s slot (no redirection followed: for tools and
// tests; the rate limiter uses Keyed).
func (cl *clusterMap) evalSHA(ctx context.Context, s *Script, keys, args []string) (Value, error) {
	if len(keys) == 0 {
		return cl.do(ctx, append([]string{"EVALSHA", s.sha, "0"}, args...))
	}
	node := cl.nodeFor(ctx, KeySlot(keys[0]))
	if node == nil {
		return Value{}, cl.noNode()
	}
	return node.EvalSHA(ctx, s, keys, args)
}

// redirect handles a command that did not get its answer from the slot's node.
func (cl *clusterMap) redirect(ctx context.Context, p *Prepared, cmd []byte, slot int, err error) (string, error) {
	re, ok := err.(RedisError)
	if !ok {
		if err != ErrPoolTimeout && err != ErrClosed {
			// The node may be gone (a failover): read the map again, soon.
			cl.refreshSoon()
		}
		return "", err
	}
	code := re.Prefix()
	if code == "TRYAGAIN" {
		count(cl.opts.Counters.TryAgain)
		return "", re
	}
	if code == "CLUSTERDOWN" {
		count(cl.opts.Counters.ClusterDown)
		cl.refreshSoon()
		return "", re
	}
	if code != "MOVED" && code != "ASK" {
		return "", re
	}
	addr, ok := redirectAddr(string(re))
	if !ok {
		return "", fmt.Errorf("%w: malformed %s reply", ErrProtocol, code)
	}
	cl.mu.Lock()
	i := cl.nodeAtLocked(addr)
	var node *Client
	if i >= 0 {
		node = cl.nodes[i].(*Client)
		if code == "MOVED" {
			cl.owner[slot] = uint16(i)
		}
	}
	cl.mu.Unlock()
	if node == nil {
		return "", fmt.Errorf("resp: %s to %s: no pool for the node", code, addr)
	}
	if code == "MOVED" {
		count(cl.opts.Counters.Moved)
		cl.refreshSoon()
		status, err2 := node.runStatus(ctx, p, cmd)
		return status, redirected(err2)
	}
	count(cl.opts.Counters.Ask)
	status, err2 := node.askingStatus(ctx, p, cmd)
	return status, redirected(err2)
}

// redirected is the error of a command sent after a redirection: a second redirection is not
// followed (the map is changing; the caller's failure policy answers).
func redirected(err error) error {
	if re, ok := err.(RedisError); ok {
		code := re.Prefix()
		if code == "MOVED" || code == "ASK" {
			return fmt.Errorf("resp: redirected twice (%s): the slot is moving", code)
		}
	}
	return err
}

// redirectAddr is the host:port of "MOVED 3999 127.0.0.1:6381" (or ASK).
func redirectAddr(s string) (string, bool) {
	f := strings.Split(s, " ")
	if len(f) != 3 || !isHostPort(f[2]) {
		return "", false
	}
	return f[2], true
}

// askingStatus sends ASKING and the command in one write and reads both replies; NOSCRIPT
// loads the script on this node and sends both once more.
func (c *Client) askingStatus(ctx context.Context, p *Prepared, cmd []byte) (string, error) {
	buf := append(appendCommand(nil, []string{"ASKING"}), cmd...)
	for attempt := 0; attempt < 2; attempt++ {
		cn, err := c.get(ctx)
		if err != nil {
			return "", err
		}
		_, err0 := cn.roundTrip(buf, c.deadline(ctx))
		_, asking := err0.(RedisError)
		if err0 != nil && !asking {
			c.discard(cn, err0)
			c.release()
			return "", fmt.Errorf("resp: ASKING: %w", err0)
		}
		v, err := cn.readReply()
		re, isRedis := err.(RedisError)
		if err != nil && !isRedis {
			c.discard(cn, err)
			c.release()
			return "", fmt.Errorf("resp: ASKING: %w", err)
		}
		if err0 != nil {
			c.put(cn)
			return "", err0
		}
		c.put(cn)
		if err == nil {
			if v.Type != TypeSimple {
				return "", fmt.Errorf("%w: EVALSHA: the script did not answer a status reply", ErrProtocol)
			}
			return v.Str, nil
		}
		if !strings.HasPrefix(string(re), "NOSCRIPT") || attempt > 0 {
			return "", re
		}
		if err := c.LoadScript(ctx, p.script); err != nil {
			return "", err
		}
	}
	return "", errors.New("resp: ASKING: unreachable")
}

// refreshSoon reads the slot map again in the background, unless a refresh runs or one
// started less than minRefreshInterval ago.
func (cl *clusterMap) refreshSoon() {
	cl.mu.Lock()
	if cl.closed || cl.refreshing || time.Since(cl.lastTry) < minRefreshInterval {
		cl.mu.Unlock()
		return
	}
	cl.refreshing = true
	cl.lastTry = time.Now()
	cl.mu.Unlock()
	go cl.refresh()
}

// refresh reads CLUSTER SLOTS from a known node (or a seed) and installs the new map.
func (cl *clusterMap) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), 4*(cl.opts.DialTimeout+cl.opts.Timeout))
	cl.finishRefresh(cl.load(ctx))
	cancel()
}

// finishRefresh ends a refresh that returned err.
func (cl *clusterMap) finishRefresh(err error) {
	cl.mu.Lock()
	cl.refreshing = false
	if err != nil {
		cl.lastErr = err.Error()
	}
	cl.mu.Unlock()
	if err != nil {
		count(cl.opts.Counters.RefreshErrors)
		cl.event("redis_cluster_map_error", "", err.Error())
	}
}

// load reads and installs the map; the first answer wins.
func (cl *clusterMap) load(ctx context.Context) error {
	cl.mu.Lock()
	var candidates []*Client
	for i := 0; i < len(cl.nodes); i++ {
		candidates = append(candidates, cl.nodes[i].(*Client))
	}
	cl.mu.Unlock()
	var errs []string
	for i := 0; i < len(candidates)+len(cl.seeds); i++ {
		var c *Client
		if i < len(candidates) {
			c = candidates[i]
		} else {
			cl.mu.Lock()
			k := cl.nodeAtLocked(cl.seeds[i-len(candidates)])
			if k >= 0 {
				c = cl.nodes[k].(*Client)
			}
			cl.mu.Unlock()
		}
		if c == nil {
			continue
		}
		v, err := c.Do(ctx, "CLUSTER", "SLOTS")
		if err == nil {
			err = cl.install(v)
		}
		if err == nil {
			return nil
		}
		errs = append(errs, c.opts.Address+": "+err.Error())
	}
	return fmt.Errorf("resp: reading the cluster's slot map: %s", strings.Join(errs, "; "))
}

// install replaces the map with the reply of CLUSTER SLOTS: [[start, end, [host, port,
// id...], replicas...]...]. Pools of nodes no longer in the map are closed.
func (cl *clusterMap) install(v Value) error {
	if v.Type != TypeArray || len(v.Array) == 0 {
		return errors.New("CLUSTER SLOTS: no slot is served")
	}
	type rng struct {
		start, end int
		addr       string
	}
	var ranges []rng
	for _, e := range v.Array {
		if e.Type != TypeArray || len(e.Array) < 3 || e.Array[2].Type != TypeArray || len(e.Array[2].Array) < 2 {
			return fmt.Errorf("%w: CLUSTER SLOTS: malformed entry", ErrProtocol)
		}
		start := int(e.Array[0].Int)
		end := int(e.Array[1].Int)
		host := e.Array[2].Array[0].Str
		port := e.Array[2].Array[1].Int
		if start < 0 || end >= clusterSlots || start > end || host == "" || port < 1 {
			return fmt.Errorf("%w: CLUSTER SLOTS: bad range or node", ErrProtocol)
		}
		ranges = append(ranges, rng{start: start, end: end, addr: joinHostPort(host, port)})
	}
	owner := make([]uint16, clusterSlots)
	for i := 0; i < clusterSlots; i++ {
		owner[i] = noNode
	}
	var nodes []any
	byAddr := map[string]int{}
	var stale []*Client
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return ErrClosed
	}
	for _, r := range ranges {
		idx, ok := byAddr[r.addr]
		if !ok {
			var c *Client
			if old, known := cl.byAddr[r.addr]; known {
				c = cl.nodes[old].(*Client)
			} else {
				o := cl.opts
				o.Address = r.addr
				o.ClusterAddrs = nil
				nc, err := New(o)
				if err != nil {
					cl.mu.Unlock()
					return err
				}
				c = nc
			}
			nodes = append(nodes, c)
			idx = len(nodes) - 1
			byAddr[r.addr] = idx
		}
		for s := r.start; s <= r.end; s++ {
			owner[s] = uint16(idx)
		}
	}
	for addr, i := range cl.byAddr {
		if _, keep := byAddr[addr]; !keep {
			stale = append(stale, cl.nodes[i].(*Client))
		}
	}
	changed := len(nodes) != len(cl.nodes) || !sameOwners(owner, cl.owner)
	cl.owner = owner
	cl.nodes = nodes
	cl.byAddr = byAddr
	cl.refreshes++
	cl.lastErr = ""
	cl.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
	count(cl.opts.Counters.Refreshes)
	if changed {
		var addrs []string
		for _, c := range nodes {
			addrs = append(addrs, c.(*Client).opts.Address)
		}
		cl.event("redis_cluster_map", strings.Join(addrs, ","), fmt.Sprintf("slot map read: %d primaries (%s)", len(nodes), strings.Join(addrs, ", ")))
	}
	return nil
}

func sameOwners(a, b []uint16) bool {
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func joinHostPort(host string, port int64) string {
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + strconv.FormatInt(port, 10)
	}
	return host + ":" + strconv.FormatInt(port, 10)
}

// event reports an operator event through Options.OnEvent.
func (cl *clusterMap) event(name, nodes, msg string) {
	if cl.opts.OnEvent != nil {
		f := cl.opts.OnEvent
		f(name, nodes, msg)
	}
}

// do sends a command without keys (PING...) to a node of the map, the seeds at first.
func (cl *clusterMap) do(ctx context.Context, args []string) (Value, error) {
	cl.mu.Lock()
	var node *Client
	if len(cl.nodes) > 0 {
		node = cl.nodes[0].(*Client)
	}
	cl.mu.Unlock()
	if node == nil {
		if err := cl.load(ctx); err != nil {
			return Value{}, err
		}
		cl.mu.Lock()
		if len(cl.nodes) > 0 {
			node = cl.nodes[0].(*Client)
		}
		cl.mu.Unlock()
	}
	if node == nil {
		return Value{}, errNoNode
	}
	return node.Do(ctx, args...)
}

func (cl *clusterMap) close() error {
	cl.mu.Lock()
	cl.closed = true
	nodes := cl.nodes
	cl.nodes = nil
	cl.byAddr = map[string]int{}
	for i := 0; i < clusterSlots; i++ {
		cl.owner[i] = noNode
	}
	cl.mu.Unlock()
	var errs []error
	for _, c := range nodes {
		if err := c.(*Client).Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ClusterState is what a cluster client knows, for logs, metrics and tests.
type ClusterState struct {
	Primaries []string // node addresses of the map, in the map's order
	Refreshes int64    // slot maps read
	LastErr   string   // the last refresh's error, if it failed
}

// Cluster returns the state of a cluster client (ok false for another topology).
func (c *Client) Cluster() (ClusterState, bool) {
	cl := c.cluster
	if cl == nil {
		return ClusterState{}, false
	}
	cl.mu.Lock()
	st := ClusterState{Refreshes: cl.refreshes, LastErr: cl.lastErr}
	for _, n := range cl.nodes {
		st.Primaries = append(st.Primaries, n.(*Client).opts.Address)
	}
	cl.mu.Unlock()
	return st, true
}

// KeySlot is the cluster slot of key: CRC16 (XMODEM) of its hash tag, modulo 16384.
func KeySlot(key string) int {
	s := 0
	e := len(key)
	open := strings.IndexByte(key, '{')
	if open >= 0 {
		end := strings.IndexByte(key[open+1:], '}')
		if end > 0 {
			s = open + 1
			e = open + 1 + end
		}
	}
	crc := uint16(0)
	for i := s; i < e; i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^key[i]]
	}
	return int(crc) & (clusterSlots - 1)
}

// crcTable is CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster uses.
var crcTable = makeCRCTable()

func makeCRCTable() []uint16 {
	t := make([]uint16, 256)
	for i := 0; i < 256; i++ {
		crc := uint16(i) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}
