package ratelimit

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pavilion-trust/gateway/plugins/resp"
)

// limitSet is one list of limits (limits, or one client's override) with everything the
// request path needs, prepared in New.
type limitSet struct {
	limits   []limitSpec
	prepared *resp.Prepared // EVALSHA with args encoded once
	suffixes []string       // key ends: "}:sw:1s", one per limit
	args     []string       // the script's ARGV: two values per limit (the window names follow)
	// Redis, set by bind: store runs the script; keyed is the same *resp.Keyed for the cached
	// commands of ServeHTTP and decide (resp.KeyedStatus), nil under a test double.
	store limitStore
	keyed *resp.Keyed
	// Response header values: RateLimit-Policy (constant per set), X-RateLimit-Limit and the
	// start of the RateLimit item (`"1s";r=`) per limit.
	policy   []string
	limitHdr [][]string
	rlPrefix []string
}

// limitStore is what a decision needs of Redis for one limit set, as Traefik's rate limiter
// puts its backends behind a small interface: *resp.Keyed (bind), or a double in unit tests.
//
// ServeHTTP does not call it: it calls resp.KeyedStatus with the concrete *resp.Keyed
// (limitSet.keyed). Under Yaegi a method call through an interface costs a frame and its
// arguments on every request: BenchmarkRateLimitAllowed (integration/plugintest, interpreted)
// measured 274 allocs/op with resp.KeyedStatus and 311 with Keyed.Status through an interface.
type limitStore interface {
	// StatusFor runs the set's script for the client key base (its keys are base + each
	// limit's key suffix) and returns the script's status reply (scripts.go). Unless key is
	// "", the command is cached under key for resp.KeyedStatus.
	StatusFor(ctx context.Context, key, base string) (string, error)
	// Forget drops the command cached under key: the next request of that client takes the
	// uncached path (decideUncached), which checks the block list first.
	Forget(key string)
}

// newLimitSet prepares limits for algorithm.
//
// Headers (draft-ietf-httpapi-ratelimit-headers-10): RateLimit-Policy (section 3) lists one
// Quota Policy Item per limit, a String naming the window with q (quota, 3.1.1) and w (window
// in seconds, 3.1.3): `"1s";q=100;w=1, "1h";q=5000;w=3600`. RateLimit (section 4) has one
// Service Limit Item for the most restrictive limit, with r (remaining, 4.1.1) and t (seconds
// until the quota is fully back, 4.1.2): `"1s";r=42;t=1`.
func newLimitSet(limits []limitSpec, algorithm string, script *resp.Script) *limitSet {
	s := &limitSet{limits: limits}
	tag := algorithmTags[algorithm]
	var policy []string
	for _, l := range limits {
		name := windowName(l.window)
		seconds := strconv.FormatInt(int64(l.window/time.Second), 10)
		requests := strconv.Itoa(l.requests)
		s.suffixes = append(s.suffixes, "}:"+tag+":"+name)
		if algorithm == AlgorithmGCRA {
			s.args = append(s.args, requests, seconds)
		} else {
			s.args = append(s.args, requests, strconv.FormatInt(int64(l.window/time.Millisecond), 10))
		}
		policy = append(policy, `"`+name+`";q=`+requests+";w="+seconds)
		s.limitHdr = append(s.limitHdr, []string{requests})
		s.rlPrefix = append(s.rlPrefix, `"`+name+`";r=`)
	}
	s.policy = []string{strings.Join(policy, ", ")}
	if script != nil {
		// After the script's two values per limit, the window names for its RateLimit item.
		argv := append([]string{}, s.args...)
		for _, l := range limits {
			argv = append(argv, windowName(l.window))
		}
		s.prepared = script.Prepare(len(limits), argv)
	}
	return s
}

// bind prepares the set's commands on the client rdb.
func (s *limitSet) bind(rdb *resp.Client) error {
	k, err := rdb.Keyed(s.prepared, s.suffixes)
	if err != nil {
		return err
	}
	s.keyed = k
	s.store = k
	return nil
}

// limitHeaders are the constant header values of one limit of a set.
type limitHeaders struct {
	limit  []string // X-RateLimit-Limit
	policy []string // RateLimit-Policy (the set's)
}

// headersByDigit returns the constant header values by the reply's limit index as a byte ('1'
// is the first limit); any other byte gets the first limit's, as writeHeaderStrings does.
func (s *limitSet) headersByDigit() []*limitHeaders {
	t := make([]*limitHeaders, 256)
	for b := 0; b < 256; b++ {
		i := b - '1'
		if i < 0 || i >= len(s.rlPrefix) {
			i = 0
		}
		t[b] = &limitHeaders{limit: s.limitHdr[i], policy: s.policy}
	}
	return t
}

// writeHeaders sets the rate-limit fields for limit i (0-based).
func (s *limitSet) writeHeaders(h http.Header, i int, remaining, reset int64) {
	s.writeHeaderStrings(h, i, strconv.FormatInt(remaining, 10), strconv.FormatInt(reset, 10))
}

// writeHeaderStrings sets the rate-limit fields for limit i (0-based) from the decimal
// strings of the script's reply, without converting them.
func (s *limitSet) writeHeaderStrings(h http.Header, i int, r, t string) {
	if i < 0 || i >= len(s.rlPrefix) {
		i = 0
	}
	h["X-Ratelimit-Limit"] = s.limitHdr[i]
	h["X-Ratelimit-Remaining"] = []string{r}
	h["X-Ratelimit-Reset"] = []string{t}
	h["Ratelimit-Policy"] = s.policy
	h["Ratelimit"] = []string{s.rlPrefix[i] + r + ";t=" + t}
}
