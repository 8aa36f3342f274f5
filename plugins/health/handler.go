package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/pavilion-trust/gateway/plugins/metrics"
)

// ContentType is the media type of the answer.
const ContentType = "application/health+json"

// health is the middleware.
type health struct {
	name     string
	checks   []check
	cacheFor time.Duration
	prober   *prober

	mu       sync.Mutex
	last     *answer       // of the last round; nil before the first
	inflight chan struct{} // closed when the running round has stored its answer; nil: none
	rounds   int64         // rounds started, for tests
}

// answer is one round's rendered document.
type answer struct {
	code    int
	body    []byte
	expires time.Time
}

// New validates the configuration and builds the middleware. It starts no goroutine and opens
// no connection: the first health call runs the first round. next is never called.
func New(_ context.Context, _ http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil {
		return nil, fmt.Errorf("health %q: no configuration", name)
	}
	s, err := config.compile()
	if err != nil {
		return nil, fmt.Errorf("health %q: %w", name, err)
	}
	for _, w := range s.warnings {
		metrics.Log(os.Stdout, map[string]any{"level": "warn", "component": "health", "middlewareName": name, "event": "redis_insecure", "message": w})
	}
	return &health{name: name, checks: s.checks, cacheFor: s.cacheFor, prober: newProber(s.jwksCA)}, nil
}

// ServeHTTP answers the health document for GET and HEAD, whatever the path.
func (m *health) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		rw.Header().Set("Allow", "GET, HEAD")
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := m.current(req.Context())
	if a == nil {
		// The caller left while waiting for the round; nobody reads this.
		rw.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h := rw.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	rw.WriteHeader(a.code)
	if req.Method != http.MethodHead {
		_, _ = rw.Write(a.body)
	}
}

// current returns the cached answer while it is fresh; else it waits for the running round,
// starting one if none runs. The round is not tied to ctx: a caller that leaves does not
// cancel the round others wait for; it waits for the round (bounded by the checks' timeouts).
func (m *health) current(ctx context.Context) *answer {
	m.mu.Lock()
	a := m.last
	if a != nil && m.prober.now().Before(a.expires) {
		m.mu.Unlock()
		return a
	}
	ch := m.inflight
	if ch == nil {
		ch = make(chan struct{})
		m.inflight = ch
		m.rounds++
		go m.round(ch)
	}
	m.mu.Unlock()
	// No select on ctx: Yaegi v0.16.1 shares a select statement's cases between the goroutines
	// that run it at the same time. The round is bounded by the checks' timeouts.
	<-ch
	m.mu.Lock()
	a = m.last
	m.mu.Unlock()
	return a
}

// round runs every check concurrently, stores the rendered answer and closes done.
func (m *health) round(done chan struct{}) {
	results := make([]result, len(m.checks))
	var wg sync.WaitGroup
	for i := 0; i < len(m.checks); i++ {
		wg.Add(1)
		go runCheck(m, i, results, &wg)
	}
	wg.Wait()
	a := render(m.checks, results)
	a.expires = m.prober.now().Add(m.cacheFor)
	m.mu.Lock()
	m.last = a
	m.inflight = nil
	m.mu.Unlock()
	close(done)
}

// runCheck runs check i of m into results[i]. It is a plain function with arguments, not a
// closure: Yaegi shares loop variables between closures.
func runCheck(m *health, i int, results []result, wg *sync.WaitGroup) {
	defer wg.Done()
	results[i] = m.prober.run(&m.checks[i])
}

// document is the IETF health-check draft shape.
type document struct {
	Status string                  `json:"status"`
	Checks map[string][]checkEntry `json:"checks"`
}

type checkEntry struct {
	ComponentID   string `json:"componentId,omitempty"`
	ComponentType string `json:"componentType,omitempty"`
	ObservedValue any    `json:"observedValue,omitempty"`
	ObservedUnit  string `json:"observedUnit,omitempty"`
	Status        string `json:"status"`
	Time          string `json:"time"`
	Output        string `json:"output,omitempty"`
}

// componentTypes are the draft's componentType of each check kind.
var componentTypes = map[int]string{
	kindCertificate: "system",
	kindUpstream:    "component",
	kindRedis:       "datastore",
	kindJWKS:        "component",
}

// render builds the answer: the worst status wins (fail, then warn); 503 for fail, else 200.
func render(checks []check, results []result) *answer {
	doc := document{Status: statusPass, Checks: map[string][]checkEntry{}}
	for i := 0; i < len(checks); i++ {
		c := &checks[i]
		r := results[i]
		e := checkEntry{
			ComponentID:   c.componentID,
			ComponentType: componentTypes[c.kind],
			ObservedValue: r.value,
			ObservedUnit:  r.unit,
			Status:        r.status,
			Time:          r.time.UTC().Format(time.RFC3339),
			Output:        r.output,
		}
		if r.value == nil {
			e.ObservedUnit = ""
		}
		doc.Checks[c.key] = append(doc.Checks[c.key], e)
		if r.status == statusFail {
			doc.Status = statusFail
		} else if r.status == statusWarn && doc.Status == statusPass {
			doc.Status = statusWarn
		}
	}
	code := http.StatusOK
	if doc.Status == statusFail {
		code = http.StatusServiceUnavailable
	}
	body, err := json.Marshal(doc)
	if err != nil {
		// Not expected (plain strings and numbers); still answer in the draft's shape.
		body = []byte(`{"status":"fail","output":"health document could not be encoded"}`)
		code = http.StatusServiceUnavailable
	}
	return &answer{code: code, body: body}
}
