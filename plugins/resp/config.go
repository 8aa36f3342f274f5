package resp

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pavilion-trust/gateway/plugins/confmap"
)

// Config is the Redis section as users write it, in dynamic YAML or Docker labels: the
// ratelimit plugin's redis, the suite's rateLimit.redis and the health plugin's redis take
// exactly these options, validated by Config.Compile. Field names are the YAML keys (Traefik
// matches them case-insensitively); durations are strings.
//
// Topology: Cluster.Addresses set → Redis Cluster; Sentinel.Addresses set → Sentinel;
// otherwise the one server at Address. Address is not used with Cluster or Sentinel.
type Config struct {
	// Address is a standalone server's host:port.
	Address string `json:"address,omitempty"`
	// Username is the data nodes' ACL user (AUTH username password); needs Password.
	Username string `json:"username,omitempty"`
	// Password authenticates every new connection to a data node. Never logged.
	Password string `json:"password,omitempty"`
	// DB is selected on every new connection when not 0 (not with Cluster, which has db 0
	// only).
	DB int `json:"db,omitempty"`
	// TLS connects with TLS, verified against the system roots unless TLSCA is set. Setting
	// any TLS* option below turns TLS on as well.
	TLS bool `json:"tls,omitempty"`
	// TLSCA is a PEM file of the CA certificate(s) that signed the servers' certificates (a
	// private CA); they replace the system roots.
	TLSCA string `json:"tlsCA,omitempty"`
	// TLSCert and TLSKey are a PEM client certificate (chain) and its key, for servers with
	// tls-auth-clients yes (mutual TLS). Both or neither.
	TLSCert string `json:"tlsCert,omitempty"`
	TLSKey  string `json:"tlsKey,omitempty"`
	// TLSServerName is the name checked in the servers' certificates. Default: the host of
	// the address dialled.
	TLSServerName string `json:"tlsServerName,omitempty"`
	// TLSInsecureSkipVerify accepts any server certificate (no chain, no name check): for
	// tests only. Off by default; warned about in the log when on.
	TLSInsecureSkipVerify bool `json:"tlsInsecureSkipVerify,omitempty"`
	// DialTimeout bounds a new connection (TCP and TLS).
	DialTimeout string `json:"dialTimeout,omitempty"`
	// Timeout bounds one command, including the wait for a free connection.
	Timeout string `json:"timeout,omitempty"`
	// PoolSize is the maximum number of open connections per server.
	PoolSize int `json:"poolSize,omitempty"`
	// Sentinel: the primary is found through Redis Sentinel.
	Sentinel SentinelConfig `json:"sentinel,omitempty"`
	// Cluster: the servers are a Redis Cluster.
	Cluster ClusterConfig `json:"cluster,omitempty"`
}

// SentinelConfig is the redis.sentinel section.
type SentinelConfig struct {
	// MasterName is the name the sentinels monitor the primary under. Required with
	// Addresses.
	MasterName string `json:"masterName,omitempty"`
	// Addresses are sentinels' host:port; any one that answers is enough.
	Addresses []string `json:"addresses,omitempty"`
	// Username and Password authenticate to the sentinels (their own ACL, separate from
	// the data nodes'). Never logged.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// ClusterConfig is the redis.cluster section.
type ClusterConfig struct {
	// Addresses are seed nodes' host:port: the slot map is read from the first that
	// answers, and followed from then on (MOVED, ASK, failovers, nodes added or removed).
	Addresses []string `json:"addresses,omitempty"`
}

// Defaults are what Compile uses for options left empty (or 0).
type Defaults struct {
	// DialTimeout and Timeout for empty dialTimeout and timeout; when 0, resp's
	// DefaultDialTimeout and DefaultTimeout.
	DialTimeout, Timeout time.Duration
	// PoolSize for PoolSize 0; when this is 0 too, poolSize 0 is an error.
	PoolSize int
}

// Bounds of the configuration.
const (
	maxCommandTimeout = 10 * time.Second
	maxDialTimeout    = time.Minute
	minDuration       = time.Millisecond
	maxAddresses      = 64 // per list
)

// IsSet tells whether any option is set (health's redis check is on when one is).
func (c *Config) IsSet() bool {
	return c.Address != "" || c.Username != "" || c.Password != "" || c.DB != 0 || c.TLS || c.TLSCA != "" ||
		c.TLSCert != "" || c.TLSKey != "" || c.TLSServerName != "" || c.TLSInsecureSkipVerify ||
		c.DialTimeout != "" || c.Timeout != "" || c.PoolSize != 0 || len(c.Sentinel.Addresses) > 0 ||
		c.Sentinel.MasterName != "" || c.Sentinel.Username != "" || c.Sentinel.Password != "" ||
		len(c.Cluster.Addresses) > 0
}

// Compile validates the section and returns the client Options, with every problem at
// once, each naming the option under key (e.g. "redis.tlsCA: ..."), and warnings for
// risky settings (to log). Files (TLSCA, TLSCert, TLSKey) are read here, once; nothing is
// dialled. Compile reads the section; the rules on the values are Options.check's, the same
// that New applies.
func (c *Config) Compile(key string, d Defaults) (Options, []string, []error) {
	var errs []error
	var warns []string
	bad := func(opt, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, opt, fmt.Sprintf(format, args...)))
	}
	o := Options{
		Username:         c.Username,
		Password:         c.Password,
		DB:               c.DB,
		PoolSize:         c.PoolSize,
		MasterName:       strings.TrimSpace(c.Sentinel.MasterName),
		SentinelUsername: c.Sentinel.Username,
		SentinelPassword: c.Sentinel.Password,
		ClusterAddrs:     confmap.CleanList(c.Cluster.Addresses),
		SentinelAddrs:    confmap.CleanList(c.Sentinel.Addresses),
		MaxReplyBytes:    DefaultMaxReplyBytes,
	}
	if len(o.ClusterAddrs) == 0 && len(o.SentinelAddrs) == 0 {
		o.Address = strings.TrimSpace(c.Address)
	}
	o.DialTimeout = confmap.DurationOr(&errs, key+".dialTimeout", c.DialTimeout, orDefault(d.DialTimeout, DefaultDialTimeout), minDuration, maxDialTimeout)
	o.Timeout = confmap.DurationOr(&errs, key+".timeout", c.Timeout, orDefault(d.Timeout, DefaultTimeout), minDuration, maxCommandTimeout)
	if o.PoolSize == 0 && d.PoolSize > 0 {
		o.PoolSize = d.PoolSize
	}

	o.TLS = c.TLS || c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != "" || c.TLSServerName != "" || c.TLSInsecureSkipVerify
	if o.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: strings.TrimSpace(c.TLSServerName)}
		if c.TLSCA != "" {
			pool, _, err := confmap.CAFile(c.TLSCA)
			if err != nil {
				bad("tlsCA", "%v", err)
			}
			cfg.RootCAs = pool
		}
		if (c.TLSCert == "") != (c.TLSKey == "") {
			bad("tlsCert", "tlsCert and tlsKey go together (got only one)")
		} else if c.TLSCert != "" {
			pair, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				bad("tlsCert", "loading %q with key %q: %v", c.TLSCert, c.TLSKey, err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		if c.TLSInsecureSkipVerify {
			cfg.InsecureSkipVerify = true
			warns = append(warns, key+".tlsInsecureSkipVerify is on: Redis server certificates are NOT verified; anyone on the path can read and change the limiter's traffic")
		}
		o.TLSConfig = cfg
		o.TLSID = c.TLSCA + "\x00" + c.TLSCert + "\x00" + c.TLSKey + "\x00" + cfg.ServerName + "\x00" + strconv.FormatBool(cfg.InsecureSkipVerify)
	}
	o.check(key, bad)
	return o, warns, errs
}

// orDefault is d, or def when d is 0.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Topology names the topology of o: "standalone", "sentinel" or "cluster".
func (o Options) Topology() string {
	if len(o.ClusterAddrs) > 0 {
		return "cluster"
	}
	if len(o.SentinelAddrs) > 0 {
		return "sentinel"
	}
	return "standalone"
}
