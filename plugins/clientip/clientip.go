// Package clientip finds the address of the client of a request, behind trusted proxies, for
// the plugins that count or limit per client address.
package clientip

import (
	"net"
	"net/http"
	"strings"
)

// Peer is the address part of req.RemoteAddr (the TCP peer Traefik saw).
func Peer(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// Trusted tells whether the address ip (a string) is in one of nets.
func Trusted(nets []*net.IPNet, ip string) bool {
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

// Forwarded is the client behind trusted proxies: the peer itself unless it is in nets,
// then the right-most X-Forwarded-For address that is not (or, if all are, the left-most
// one). Traefik removes X-Forwarded-For from peers its entry point does not trust before any
// plugin runs, so nets must be trusted by the entry point too (forwardedHeaders.trustedIPs).
func Forwarded(req *http.Request, nets []*net.IPNet) string {
	peer := Peer(req)
	if !Trusted(nets, peer) {
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
			if !Trusted(nets, last) {
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

// Network is the budget key of an address: an IPv4 address (also written as an IPv4-mapped
// IPv6 address) as itself, an IPv6 address as its /64 network (one host usually holds a whole
// /64, so counting its addresses one by one would count nothing), anything else as written.
func Network(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil {
		return addr
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
