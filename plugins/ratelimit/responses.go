package ratelimit

import (
	"net/http"
	"strconv"
)

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
