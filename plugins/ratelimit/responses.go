package ratelimit

import (
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
	script   *resp.Script
	prepared *resp.Prepared // EVALSHA with args encoded once
	keyed    *resp.Keyed    // prepared on the handler's client (bind)
	suffixes []string       // key ends: "}:sw:1s", one per limit
	args     []string       // the script's ARGV: two values per limit (the window names follow)
	// Response header values: RateLimit-Policy (constant per set), X-RateLimit-Limit and the
	// start of the RateLimit item (`"1s";r=`) per limit.
	policy   []string
	limitHdr [][]string
	rlPrefix []string
}

// newLimitSet prepares limits for algorithm.
//
// Headers (draft-ietf-httpapi-ratelimit-headers-10): RateLimit-Policy (section 3) lists one
// Quota Policy Item per limit, a String naming the window with q (quota, 3.1.1) and w (window
// in seconds, 3.1.3): `"1s";q=100;w=1, "1h";q=5000;w=3600`. RateLimit (section 4) has one
// Service Limit Item for the most restrictive limit, with r (remaining, 4.1.1) and t (seconds
// until the quota is fully back, 4.1.2): `"1s";r=42;t=1`.
func newLimitSet(limits []limitSpec, algorithm string, script *resp.Script) *limitSet {
	s := &limitSet{limits: limits, script: script}
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

// hdrValues are the constant header values of one limit of a set.
type hdrValues struct {
	limit  []string // X-RateLimit-Limit
	policy []string // RateLimit-Policy (the set's)
}

// byDigit returns the header values by the reply's limit index as a byte ('1' is the first
// limit); any other byte gets the first limit's, as writeHeaderStrings does.
func (s *limitSet) byDigit() []*hdrValues {
	t := make([]*hdrValues, 256)
	for b := 0; b < 256; b++ {
		i := b - '1'
		if i < 0 || i >= len(s.rlPrefix) {
			i = 0
		}
		t[b] = &hdrValues{limit: s.limitHdr[i], policy: s.policy}
	}
	return t
}

// bind prepares the set's commands on the client rdb.
func (s *limitSet) bind(rdb *resp.Client) error {
	k, err := rdb.Keyed(s.prepared, s.suffixes)
	if err != nil {
		return err
	}
	s.keyed = k
	return nil
}

// keys returns the Redis keys of a client key base.
func (s *limitSet) keys(base string) []string {
	keys := make([]string, len(s.suffixes))
	for i := 0; i < len(keys); i++ {
		keys[i] = base + s.suffixes[i]
	}
	return keys
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

var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
	retryOne        = []string{"1"}
	unavailableBody = []byte(`{"error":"rate_limiter_unavailable","error_description":"the rate limiter cannot reach its store; retry shortly"}` + "\n")
)

// refuse answers 429 with Retry-After (whole seconds, at least 1), the rate-limit fields when
// enabled, and a JSON body.
func refuse(rw http.ResponseWriter, s *limitSet, headers bool, d decision) {
	h := rw.Header()
	if headers {
		s.writeHeaders(h, d.index, d.remaining, d.reset)
	}
	retry := d.retry
	if retry < 1 {
		retry = 1
	}
	ra := strconv.FormatInt(retry, 10)
	h["Retry-After"] = []string{ra}
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	rw.WriteHeader(http.StatusTooManyRequests)
	rw.Write([]byte(`{"error":"rate_limited","error_description":"too many requests; retry after ` + ra +
		` seconds","retry_after":` + ra + "}\n"))
}

// unavailable answers 503 (failurePolicy closed while Redis is unreachable).
func unavailable(rw http.ResponseWriter) {
	h := rw.Header()
	h["Retry-After"] = retryOne
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	rw.WriteHeader(http.StatusServiceUnavailable)
	rw.Write(unavailableBody)
}
