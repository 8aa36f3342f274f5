package confmap

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Helpers shared by the plugins' configuration validation.

// Alnum returns the table of the ASCII letters and digits plus the bytes of extra, for byte
// checks by table lookup (Yaegi mishandles multi-expression cases, and a table is faster
// interpreted anyway).
func Alnum(extra string) [256]bool {
	var t [256]bool
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return t
}

// AllIn reports whether every byte of s is in table (true for "").
func AllIn(table [256]bool, s string) bool {
	for i := 0; i < len(s); i++ {
		if !table[s[i]] {
			return false
		}
	}
	return true
}

// tokenChars are the RFC 9110 tchar bytes.
var tokenChars = Alnum("!#$%&'*+-.^_`|~")

// IsToken reports whether s is a non-empty RFC 9110 token (a valid header or cookie name).
func IsToken(s string) bool {
	return s != "" && AllIn(tokenChars, s)
}

// HasControl reports whether s holds a control character (CR, LF, NUL, DEL…).
func HasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// CleanList trims items and drops empty ones: Traefik splits "a, b" into ["a", " b"].
func CleanList(in []string) []string {
	var out []string
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// ParseDuration parses the option key, appending an error naming it (with example as the
// suggested spelling) when value is not a duration or lies outside [lo, hi].
func ParseDuration(errs *[]error, key, value, example string, lo, hi time.Duration) time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(value))
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: invalid duration %q (use e.g. %q)", key, value, example))
		return 0
	}
	if d < lo || d > hi {
		*errs = append(*errs, fmt.Errorf("%s: %q is out of range [%s, %s]", key, value, lo, hi))
	}
	return d
}

// DurationOr is ParseDuration for an option with a default: empty (or blank) is def, and a
// value in error is reported and replaced by def, which is also the suggested spelling. For
// options that CreateConfig cannot default (list items such as health's upstreams[i].timeout)
// and sections with caller-given defaults (resp.Config).
func DurationOr(errs *[]error, key, value string, def, lo, hi time.Duration) time.Duration {
	if strings.TrimSpace(value) == "" {
		return def
	}
	n := len(*errs)
	d := ParseDuration(errs, key, value, def.String(), lo, hi)
	if len(*errs) > n {
		return def
	}
	return d
}

// IsHTTPURL reports whether s parses as an absolute http or https URL with a host.
func IsHTTPURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// Networks parses the option key, a list of CIDRs or single addresses (trusted proxies), with
// confmap's cleaning (items trimmed, empty ones dropped); each bad entry is reported as
// key[i] (i its index in the cleaned list) and left out.
func Networks(errs *[]error, key string, list []string) []*net.IPNet {
	var out []*net.IPNet
	for i, p := range CleanList(list) {
		n := parseNetwork(p)
		if n == nil {
			*errs = append(*errs, fmt.Errorf("%s[%d]: %q is not a CIDR or an IP address", key, i, p))
			continue
		}
		out = append(out, n)
	}
	return out
}

// parseNetwork parses a CIDR, or an address as the network of that address alone; nil when s
// is neither.
func parseNetwork(s string) *net.IPNet {
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil
		}
		return n
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil
	}
	if ip4 := ip.To4(); ip4 != nil {
		return &net.IPNet{IP: ip4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
}
