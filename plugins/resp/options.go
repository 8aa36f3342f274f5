package resp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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
	// ClusterAddrs are Redis Cluster seed nodes: use NewCluster, not New.
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

// validate reports every problem of o (before defaults), each naming the option.
func (o Options) validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(o.Address)
	switch {
	case len(o.SentinelAddrs) > 0:
		if o.MasterName == "" {
			errs = append(errs, errors.New("masterName: required with sentinel addresses"))
		}
	case len(o.ClusterAddrs) > 0:
	case o.Address == "":
		errs = append(errs, errors.New("address: required (host:port)"))
	case err != nil || host == "" || port == "":
		errs = append(errs, fmt.Errorf("address: %q is not host:port", o.Address))
	}
	if o.Username != "" && o.Password == "" {
		errs = append(errs, errors.New("username: set without password"))
	}
	if o.DB < 0 {
		errs = append(errs, fmt.Errorf("db: must be 0 or more, got %d", o.DB))
	}
	if o.TLSConfig != nil && !o.TLS {
		errs = append(errs, errors.New("tlsConfig: set while tls is false"))
	}
	if o.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dialTimeout: must be positive, got %s", o.DialTimeout))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", o.Timeout))
	}
	if o.PoolSize < 0 || o.PoolSize > maxPoolSize {
		errs = append(errs, fmt.Errorf("poolSize: must be between 1 and %d, got %d", maxPoolSize, o.PoolSize))
	}
	if o.MaxReplyBytes < 0 || (o.MaxReplyBytes > 0 && o.MaxReplyBytes < minMaxReplyBytes) {
		errs = append(errs, fmt.Errorf("maxReplyBytes: must be at least %d, got %d", minMaxReplyBytes, o.MaxReplyBytes))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("resp: %w", errors.Join(errs...))
}
