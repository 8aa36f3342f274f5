package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Key layout: <keyPrefix>:{<source>=<client>}:<algorithm>:<window>, e.g.
// ptb:rl:{x-auth-client=svc}:sw:1s or ptb:rl:{ip=203.0.113.7}:gcra:1h. The braces are a
// Redis Cluster hash tag: every key of one client is in one slot, so one script may touch
// them all. The source name keeps a header value from posing as another client's IP. A client
// value longer than maxRawClient, or holding a brace, or starting with '#', is replaced by
// '#' and the hex SHA-256 of it. Requests with no source value share <keyPrefix>:{anon}.

// maxRawClient is the longest client value used as is in a key.
const maxRawClient = 64

// algorithmTags are the algorithm parts of the keys.
var algorithmTags = map[string]string{
	AlgorithmSlidingWindow: "sw",
	AlgorithmSlidingLog:    "sl",
	AlgorithmGCRA:          "gcra",
}

// hashClient is the key form of a client value that cannot be used as is.
func hashClient(value string) string {
	sum := sha256.Sum256([]byte(value))
	return "#" + hex.EncodeToString(sum[:])
}

// windowName names a window for keys and the RateLimit-Policy item: 1s, 90s, 1m, 2h, 1d.
func windowName(w time.Duration) string {
	s := int64(w / time.Second)
	if s%86400 == 0 {
		return strconv.FormatInt(s/86400, 10) + "d"
	}
	if s%3600 == 0 {
		return strconv.FormatInt(s/3600, 10) + "h"
	}
	if s%60 == 0 {
		return strconv.FormatInt(s/60, 10) + "m"
	}
	return strconv.FormatInt(s, 10) + "s"
}

func canonicalHeader(h string) string {
	return http.CanonicalHeaderKey(h)
}

// peerIP is the address part of req.RemoteAddr.
func peerIP(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// trustedPeer tells whether the address ip (a string) is in one of nets.
func trustedPeer(nets []*net.IPNet, ip string) bool {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return false
	}
	for _, n := range nets {
		if n.Contains(parsed) {
			return true
		}
	}
	return false
}

// forwardedClient is the "ip" source behind trusted proxies: the peer itself unless it is
// trusted, then the right-most X-Forwarded-For address that is not trusted (or, if all are,
// the left-most one). Traefik removes X-Forwarded-For from peers its entry point does not
// trust before any plugin runs.
func forwardedClient(req *http.Request, nets []*net.IPNet) string {
	peer := peerIP(req)
	if !trustedPeer(nets, peer) {
		return peer
	}
	values := req.Header["X-Forwarded-For"]
	last := ""
	for i := len(values) - 1; i >= 0; i-- {
		parts := strings.Split(values[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			p := strings.TrimSpace(parts[j])
			if p == "" {
				continue
			}
			ip := parseForwarded(p)
			if ip == nil {
				// Not an address (a port, garbage...): it was appended by a trusted proxy
				// as the peer it saw, so it is the client, as written.
				return p
			}
			last = ip.String()
			if !trustedPeer(nets, last) {
				return last
			}
		}
	}
	if last != "" {
		return last
	}
	return peer
}

// parseForwarded parses one X-Forwarded-For entry: an address, or an address with a port.
func parseForwarded(p string) net.IP {
	ip := net.ParseIP(p)
	if ip != nil {
		return ip
	}
	host, _, err := net.SplitHostPort(p)
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}
