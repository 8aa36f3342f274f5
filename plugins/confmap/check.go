package confmap

import (
	"fmt"
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
