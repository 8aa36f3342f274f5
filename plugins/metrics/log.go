package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// RequestIDHeader is where the operator log reads the request id (set by the requestid step,
// which runs first in the suite).
const RequestIDHeader = "X-Request-Id"

// maxRequestID bounds a request id copied into the log (a client may send anything when no
// requestid step runs before).
const maxRequestID = 128

// RequestID returns the request's id for the log, "" when there is none.
func RequestID(req *http.Request) string {
	vs := req.Header[RequestIDHeader]
	if len(vs) == 0 {
		return ""
	}
	id := vs[0]
	if len(id) > maxRequestID {
		id = id[:maxRequestID]
	}
	return id
}

// Log writes fields as one JSON line to w in the shape of Traefik's own JSON log
// (log.format: json), so that a log shipper reads both alike: the caller gives "level"
// (Traefik's names: "info", "warn", "error"; default "info"), "message" and
// "middlewareName" (as Traefik names the middleware in its lines), and Log adds "time" in
// Traefik's format (RFC 3339 in seconds, the local zone). Keys Traefik sets on its own lines
// about plugins ("plugin", "module") are never used. Never pass a token, a password or a
// client's rate-limit key.
func Log(w io.Writer, fields map[string]any) {
	if _, ok := fields["level"]; !ok {
		fields["level"] = "info"
	}
	fields["time"] = time.Now().Format(time.RFC3339)
	line, err := json.Marshal(fields)
	if err != nil {
		return
	}
	w.Write(append(line, '\n'))
}

// LogRequest is Log for an event about req: it adds the request's id, method and path, and
// "suppressed" (the lines its Sampler dropped since the last one written) when not 0.
func LogRequest(w io.Writer, req *http.Request, suppressed int64, fields map[string]any) {
	fields["request_id"] = RequestID(req)
	fields["method"] = req.Method
	fields["path"] = req.URL.Path
	if suppressed > 0 {
		fields["suppressed"] = suppressed
	}
	Log(w, fields)
}

// Sampler bounds the log lines of one kind of event of one middleware to perSecond per
// second, so that a flood of bad requests cannot flood the log: the lines past the bound are
// counted, and the count is reported by the next line written ("suppressed") and in
// pavilion_log_lines_suppressed_total.
type Sampler struct {
	perSecond  int
	mu         sync.Mutex
	second     int64
	n          int
	suppressed int64
	total      *int64
}

var samplers = struct {
	mu      sync.Mutex
	entries map[string]*Sampler
}{entries: map[string]*Sampler{}}

// NewSampler returns the sampler of event for middleware (shared by every instance of the
// middleware in the interpreter).
func NewSampler(plugin, middleware, event string, perSecond int) *Sampler {
	key := plugin + "\x00" + middleware + "\x00" + event
	samplers.mu.Lock()
	defer samplers.mu.Unlock()
	s := samplers.entries[key]
	if s == nil {
		s = &Sampler{
			perSecond: perSecond,
			total: Counter("pavilion_log_lines_suppressed_total",
				"Operator log lines not written because their middleware exceeded its lines per second.",
				[]string{"middleware", middleware, "plugin", plugin, "event", event}),
		}
		samplers.entries[key] = s
	}
	return s
}

// Allow tells whether a line may be written now; when it may, it also returns how many
// lines were suppressed since the last one written.
func (s *Sampler) Allow(now time.Time) (bool, int64) {
	sec := now.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec != s.second {
		s.second = sec
		s.n = 0
	}
	if s.n >= s.perSecond {
		s.suppressed++
		atomic.AddInt64(s.total, 1)
		return false, 0
	}
	s.n++
	dropped := s.suppressed
	s.suppressed = 0
	return true, dropped
}
