package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
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
