package gatewaytest

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// TestPluginMetricsAndLogs runs the real static/ and dynamic/: the suite's metrics answer on
// the internal entry point only, count the requests made, and one request's id is in both the
// access log and the plugin's log line about it.
func TestPluginMetricsAndLogs(t *testing.T) {
	s := startStack(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.gw.routersEnabled([]string{"plugin-metrics@file"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const mw = "pavilion@file"

	t.Run("not on the public entry point", func(t *testing.T) {
		if a := s.do(t, "GET", "/plugin-metrics"); a.status != http.StatusNotFound {
			t.Fatalf("websecure /plugin-metrics: %d", a.status)
		}
	})

	// With api.insecure (static/traefik.yml), Traefik adds dashboard@internal, PathPrefix(`/`)
	// on the internal entry point with a priority above any user router's, so /plugin-metrics
	// is only reachable there once the API is served by a router of dynamic/ instead (see
	// /tmp/issue6-static.patch).
	reachable := s.pluginMetricsStatus(t) == http.StatusOK
	var before map[string]*dto.MetricFamily
	if reachable {
		before = s.pluginMetrics(t)
	}

	id := "metrics-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	badToken := "not-a-jwt-" + id
	tok := s.token(t, "metrics")
	for i := 0; i < 2; i++ {
		if a := s.do(t, "GET", "/api/v1/accounts", "Authorization", "Bearer "+tok); a.status != 200 {
			t.Fatalf("valid token: %d", a.status)
		}
	}
	if a := s.do(t, "GET", "/api/v1/accounts", "Authorization", "Bearer "+badToken, "X-Request-Id", id); a.status != 401 {
		t.Fatalf("bad token: %d", a.status)
	}
	if a := s.do(t, "GET", "/api/v1/accounts"); a.status != 401 {
		t.Fatalf("no token: %d", a.status)
	}
	limited := s.token(t, "metrics-limited")
	codes := map[int]int{}
	for i := 0; i <= rateRequests; i++ {
		codes[s.do(t, "GET", "/api/v1/accounts", "Authorization", "Bearer "+limited).status]++
	}
	if codes[200] != rateRequests || codes[429] != 1 {
		t.Fatalf("rate limit codes %v", codes)
	}

	t.Run("internal entry point: valid exposition, counters move", func(t *testing.T) {
		if !reachable {
			t.Fatal("/plugin-metrics is not served on the internal entry point (api.insecure's dashboard@internal router, PathPrefix(`/`), would shadow it: keep api.insecure off)")
		}
		after := s.pluginMetrics(t)
		for _, c := range []struct {
			name, result string
			delta        float64
		}{
			{"pavilion_jwt_validations_total", "ok", 2 + rateRequests + 1},
			{"pavilion_jwt_validations_total", "malformed", 1},
			{"pavilion_jwt_validations_total", "missing_token", 1},
			{"pavilion_ratelimit_decisions_total", "allowed", 2 + rateRequests},
			{"pavilion_ratelimit_decisions_total", "limited", 1},
		} {
			got := metricValue(after, c.name, mw, c.result) - metricValue(before, c.name, mw, c.result)
			if got != c.delta {
				t.Errorf("%s{result=%q} moved by %v, want %v", c.name, c.result, got, c.delta)
			}
		}
		if metricValue(after, "pavilion_jwks_keys", mw, "") < 1 || metricValue(after, "pavilion_jwks_fetches_total", mw, "ok") < 1 {
			t.Errorf("JWKS: keys %v, fetches ok %v", metricValue(after, "pavilion_jwks_keys", mw, ""),
				metricValue(after, "pavilion_jwks_fetches_total", mw, "ok"))
		}
		if metricValue(after, "pavilion_ratelimit_fallback_active", mw, "") != 0 {
			t.Error("fallback active with Redis up")
		}
	})

	t.Run("one request id in the access log and the plugin log", func(t *testing.T) {
		var access, plugin map[string]any
		deadline := time.Now().Add(5 * time.Second)
		for (access == nil || plugin == nil) && time.Now().Before(deadline) {
			access, plugin = nil, nil
			sc := bufio.NewScanner(strings.NewReader(s.gw.Output()))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if !strings.Contains(sc.Text(), id) {
					continue
				}
				var m map[string]any
				if json.Unmarshal(sc.Bytes(), &m) != nil {
					continue
				}
				if m["request_X-Request-Id"] == id {
					access = m
				}
				if m["request_id"] == id {
					plugin = m
				}
			}
			if access == nil || plugin == nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if access == nil || access["DownstreamStatus"] != float64(401) {
			t.Errorf("access log line for %s: %v", id, access)
		}
		if plugin == nil || plugin["component"] != "jwtauth" || plugin["event"] != "auth_failure" ||
			plugin["reason"] != "malformed" || plugin["middlewareName"] != mw || plugin["message"] != "request refused: malformed" {
			t.Errorf("plugin log line for %s: %v", id, plugin)
		}
		for _, k := range []string{"plugin", "module"} { // Traefik's own keys for plugins
			if _, ok := plugin[k]; ok {
				t.Errorf("plugin log line has Traefik's key %q: %v", k, plugin)
			}
		}
		// A log shipper reads the stream as one shape: level and time (Traefik's RFC 3339 in
		// seconds) on every line, Traefik's own log, its access log and the plugins' alike; a
		// level filter then selects across all three.
		info := map[string]map[string]any{} // request id -> line, of the lines a level=info filter keeps
		var traefikLines, pluginLines int
		lines := bufio.NewScanner(strings.NewReader(s.gw.Output()))
		lines.Buffer(make([]byte, 1<<20), 1<<20)
		for lines.Scan() {
			level, ts, m, ok := shipperRecord(lines.Bytes())
			if !ok {
				t.Errorf("a line of the stream is not level+time JSON: %s", lines.Text())
				continue
			}
			if _, err := time.Parse(time.RFC3339, ts); err != nil || strings.Contains(ts, ".") {
				t.Errorf("time %q is not Traefik's format: %s", ts, lines.Text())
			}
			if m["component"] != nil {
				pluginLines++
			} else if m["message"] != nil {
				traefikLines++
			}
			if level != "info" {
				continue
			}
			if v, _ := m["request_X-Request-Id"].(string); v != "" {
				info["access "+v] = m
			}
			if v, _ := m["request_id"].(string); v != "" {
				info["plugin "+v] = m
			}
		}
		if info["access "+id] == nil || info["plugin "+id] == nil || traefikLines == 0 || pluginLines == 0 {
			t.Errorf("level=info filter: access line %v, plugin line %v (%d Traefik lines, %d plugin lines)",
				info["access "+id] != nil, info["plugin "+id] != nil, traefikLines, pluginLines)
		}
		if strings.Contains(s.gw.Output(), badToken) {
			t.Error("the token is in Traefik's output")
		}
		var limited map[string]any
		sc := bufio.NewScanner(strings.NewReader(s.gw.Output()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["event"] == "rate_limited" {
				limited = m
			}
		}
		if limited == nil || limited["request_id"] == "" || limited["limit"] != "1m" || limited["level"] != "info" ||
			limited["middlewareName"] != mw || limited["component"] != "ratelimit" || limited["message"] != "request rate-limited" {
			t.Errorf("rate_limited line: %v", limited)
		}
		if strings.Contains(s.gw.Output(), "gatewaytest-metrics-limited") {
			t.Error("the rate-limit client key is in Traefik's output")
		}
	})
}

// shipperRecord reads a line as a log shipper configured for Traefik's JSON log would: a JSON
// object with a string "level" and a string "time".
func shipperRecord(line []byte) (level, ts string, m map[string]any, ok bool) {
	if json.Unmarshal(line, &m) != nil {
		return "", "", nil, false
	}
	level, lok := m["level"].(string)
	ts, tok := m["time"].(string)
	return level, ts, m, lok && tok && level != ""
}

// pluginMetricsStatus is the status of GET /plugin-metrics on the internal entry point.
func (s *stack) pluginMetricsStatus(t *testing.T) int {
	t.Helper()
	res, err := http.Get(s.gw.InternalURL + "/plugin-metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// pluginMetrics scrapes /plugin-metrics on the internal entry point and parses it.
func (s *stack) pluginMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(s.gw.InternalURL + "/plugin-metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || expfmt.ResponseFormat(res.Header).FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("/plugin-metrics: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/plugin-metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// metricValue is the value of name{middleware, result} (result "" when the series has none),
// 0 when absent.
func metricValue(fams map[string]*dto.MetricFamily, name, middleware, result string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["middleware"] != middleware || l["result"] != result {
			continue
		}
		if m.Counter != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return 0
}
