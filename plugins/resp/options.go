package resp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultDialTimeout   = 250 * time.Millisecond
	DefaultTimeout       = 100 * time.Millisecond
	DefaultPoolSize      = 16
	DefaultMaxReplyBytes = 1 << 20
)

// Limits of the reply parser that are not options.
const (
	// MaxDepth is the deepest nesting of arrays accepted in a reply (a flat array is depth 1).
	MaxDepth = 16
	// MaxLineBytes bounds a simple string, an error message or a length line, CRLF included.
	MaxLineBytes = readBufferSize

	maxPoolSize      = 1024
	minMaxReplyBytes = 64
	readBufferSize   = 4096
)

// Options configures a Client. Zero values take the defaults above.
type Options struct {
	// Address is the server's host:port. Required unless SentinelAddrs or ClusterAddrs is
	// set (then unused).
	Address string
	// SentinelAddrs are Redis Sentinel host:port: the client dials the primary that the
	// sentinels name for MasterName, asks it for its ROLE on every new connection (never
	// writing to a replica), and asks the sentinels again after a failover (a READONLY
	// reply, a connection refused, a server that is no longer the primary).
	SentinelAddrs []string
	// MasterName is the name the sentinels know the primary by. Required with SentinelAddrs.
	MasterName string
	// SentinelUsername and SentinelPassword authenticate to the sentinels (AUTH), separately
	// from the data nodes' Username and Password.
	SentinelUsername string
	SentinelPassword string
	// SentinelNoWatch: do not listen to the sentinels' +switch-master announcements (for a
	// short-lived client, such as the health check's: it asks the sentinels anyway).
	SentinelNoWatch bool
	// ClusterAddrs are Redis Cluster seed nodes: the slot map is read from the first that
	// answers. Address is not used then.
	ClusterAddrs []string
	// Counters, when set, are counted into (redirections, map refreshes, primary switches).
	Counters Counters
	// OnEvent, when set, is told about topology events worth an operator log line:
	// "redis_primary" (Sentinel named a new primary; nodes is its address),
	// "redis_cluster_map" (the slot map changed; nodes are the primaries, comma-separated),
	// "redis_cluster_map_error" (nodes empty). It must not block.
	OnEvent func(event, nodes, msg string)
	// TLSID identifies TLSConfig's settings (files, server name...) for comparing Options:
	// two Options with the same fields and TLSID are interchangeable. Config.Compile sets it.
	TLSID string
	// Username is the ACL user: AUTH username password. Empty: AUTH password, and only when
	// Password is set. Requires Password.
	Username string
	// Password authenticates every new connection (AUTH). Never logged nor put in errors.
	Password string
	// DB is selected on every new connection (SELECT) when not 0.
	DB int
	// TLS connects with TLS (Redis' tls-port).
	TLS bool
	// TLSConfig is used with TLS (RootCAs, client Certificates, ServerName...). Nil: system
	// roots and TLS 1.2 at least. An empty ServerName is taken from Address. Setting it
	// without TLS is an error.
	TLSConfig *tls.Config
	// DialTimeout bounds a new connection: TCP connect and TLS handshake. Default 250ms. The
	// AUTH/SELECT round trip that follows has Timeout.
	DialTimeout time.Duration
	// Timeout bounds one command: the wait for a free connection, and then its write and read
	// (a deadline on the connection). A ctx deadline that comes sooner wins. Default 100ms.
	Timeout time.Duration
	// PoolSize is the maximum number of open connections. Callers beyond it wait for a free
	// one until their Timeout or ctx ends. Default 16, at most 1024.
	PoolSize int
	// MaxReplyBytes bounds one reply, all of it: a longer bulk string or a reply that would
	// exceed it is a protocol error and the connection is closed. Default 1 MiB, at least 64.
	MaxReplyBytes int
}

// withDefaults returns o with the defaults filled in and its TLS config ready to dial.
func (o Options) withDefaults() Options {
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.MaxReplyBytes == 0 {
		o.MaxReplyBytes = DefaultMaxReplyBytes
	}
	if o.TLS {
		var cfg *tls.Config
		if o.TLSConfig == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" && o.Address != "" {
			host, _, err := net.SplitHostPort(o.Address)
			if err == nil {
				cfg.ServerName = host
			}
		}
		o.TLSConfig = cfg
	}
	return o
}

// validate reports every problem of o, each naming the option, once the zero values took
// their defaults (New's rules are check's, with the options' own names).
func (o Options) validate() error {
	var errs []error
	o.withDefaults().check("", func(opt, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", opt, fmt.Sprintf(format, args...)))
	})
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("resp: %w", errors.Join(errs...))
}

// check reports every problem of o through bad, naming each option as the redis section of
// the configuration names it ("address", "sentinel.masterName", "poolSize"), and key before
// the names of other options it mentions ("set without redis.password"; key "" for none).
// It is the one place of these rules: Config.Compile runs it on the options it built, New
// (validate) on the options it is given, once their zero values took the defaults.
func (o Options) check(key string, bad func(opt, format string, args ...any)) {
	other := func(opt string) string {
		if key == "" {
			return opt
		}
		return key + "." + opt
	}
	checkAddresses(bad, "cluster.addresses", o.ClusterAddrs)
	checkAddresses(bad, "sentinel.addresses", o.SentinelAddrs)
	switch {
	case len(o.ClusterAddrs) > 0 && len(o.SentinelAddrs) > 0:
		bad("cluster.addresses", "set together with sentinel.addresses: choose one topology")
	case len(o.ClusterAddrs) > 0:
		if o.DB != 0 {
			bad("db", "Redis Cluster has db 0 only, got %d", o.DB)
		}
	case len(o.SentinelAddrs) > 0:
		if o.MasterName == "" {
			bad("sentinel.masterName", "required with sentinel.addresses (the name the sentinels monitor, e.g. mymaster)")
		}
	case o.Address == "":
		bad("address", "required (host:port), or sentinel.addresses, or cluster.addresses")
	case !isHostPort(o.Address):
		bad("address", "%q is not host:port", o.Address)
	}
	if len(o.SentinelAddrs) == 0 && (o.MasterName != "" || o.SentinelUsername != "" || o.SentinelPassword != "") {
		bad("sentinel.addresses", "required when another sentinel option is set")
	}
	if o.Username != "" && o.Password == "" {
		bad("username", "set without %s", other("password"))
	}
	if o.SentinelUsername != "" && o.SentinelPassword == "" {
		bad("sentinel.username", "set without %s", other("sentinel.password"))
	}
	if o.DB < 0 {
		bad("db", "must be 0 or more, got %d", o.DB)
	}
	if o.TLSConfig != nil && !o.TLS {
		bad("tlsConfig", "set while tls is false")
	}
	if o.DialTimeout <= 0 {
		bad("dialTimeout", "must be positive, got %s", o.DialTimeout)
	}
	if o.Timeout <= 0 {
		bad("timeout", "must be positive, got %s", o.Timeout)
	}
	if o.PoolSize < 1 || o.PoolSize > maxPoolSize {
		bad("poolSize", "must be between 1 and %d, got %d", maxPoolSize, o.PoolSize)
	}
	if o.MaxReplyBytes < minMaxReplyBytes {
		bad("maxReplyBytes", "must be at least %d, got %d", minMaxReplyBytes, o.MaxReplyBytes)
	}
}

// checkAddresses checks a list of host:port named opt.
func checkAddresses(bad func(opt, format string, args ...any), opt string, list []string) {
	if len(list) > maxAddresses {
		bad(opt, "at most %d addresses, got %d", maxAddresses, len(list))
	}
	for i, a := range list {
		if !isHostPort(a) {
			bad(fmt.Sprintf("%s[%d]", opt, i), "%q is not host:port", a)
		}
	}
}

// isHostPort reports whether s is host:port with a host and a port from 1 to 65535.
func isHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return false
	}
	p, err := strconv.Atoi(port)
	return err == nil && p >= 1 && p <= 65535
}
