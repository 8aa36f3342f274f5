// Package metrics is the suite's own telemetry: a registry of counters, gauges and
// histograms shared by the plugins of one interpreter (Traefik gives every plugin its own
// Yaegi interpreter, so the suite's middlewares see each other's series, and nothing else),
// written in the Prometheus text exposition format (version 0.0.4); and the operator log
// (one JSON line per event, rate-limited per middleware).
//
// Series are created in New and live for the interpreter's lifetime, so counts survive
// configuration reloads; the hot path only does atomic adds on pointers it got in New.
package metrics

import (
	"sort"
	"strings"
	"sync"
)

const (
	kindCounter   = "counter"
	kindGauge     = "gauge"
	kindHistogram = "histogram"
)

// registry holds every series of the interpreter, by family name then rendered labels.
var registry = struct {
	mu       sync.Mutex
	families map[string]*family
}{families: map[string]*family{}}

type family struct {
	name, help, kind string
	series           map[string]*series // by rendered labels: middleware="a",result="ok"
}

type series struct {
	labels string
	value  int64      // counter or gauge
	hist   *Histogram // histogram
}

// Counter returns the counter name{labels} (label names and values alternate in labels),
// creating it at zero. Callers add to it with atomic.AddInt64; the same name and labels
// always give the same pointer, so every instance of a middleware counts in one series.
func Counter(name, help string, labels []string) *int64 {
	return &lookup(name, help, kindCounter, labels).value
}

// Gauge returns the gauge name{labels}, created at zero; callers set it with atomic.StoreInt64.
func Gauge(name, help string, labels []string) *int64 {
	return &lookup(name, help, kindGauge, labels).value
}

// NewHistogram returns the histogram name{labels} of durations, creating it when needed, with
// n buckets whose upper bounds are 2^first ns … 2^(first+n-1) ns (then +Inf). The buckets of
// the first registration of a series are kept.
func NewHistogram(name, help string, first, n int, labels []string) *Histogram {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	s := lookupLocked(name, help, kindHistogram, labels)
	if s.hist == nil {
		s.hist = newHistogram(first, n)
	}
	return s.hist
}

func lookup(name, help, kind string, labels []string) *series {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return lookupLocked(name, help, kind, labels)
}

func lookupLocked(name, help, kind string, labels []string) *series {
	f := registry.families[name]
	if f == nil {
		f = &family{name: name, help: help, kind: kind, series: map[string]*series{}}
		registry.families[name] = f
	}
	key := renderLabels(labels)
	s := f.series[key]
	if s == nil {
		s = &series{labels: key}
		f.series[key] = s
	}
	return s
}

// renderLabels renders alternating names and values as `a="x",b="y"`, values escaped as
// the text format requires (backslash, double quote, line feed).
func renderLabels(labels []string) string {
	var b strings.Builder
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(labels[i])
		b.WriteString(`="`)
		b.WriteString(escapeValue(labels[i+1]))
		b.WriteByte('"')
	}
	return b.String()
}

var valueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeValue(v string) string {
	return valueEscaper.Replace(v)
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

// snapshotFamilies returns the families sorted by name, and each one's series sorted by
// labels, taken under the lock (values are read atomically afterwards).
func snapshotFamilies() []familySnapshot {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	names := make([]string, 0, len(registry.families))
	for n := range registry.families {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]familySnapshot, 0, len(names))
	for _, n := range names {
		f := registry.families[n]
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fs := familySnapshot{name: f.name, help: f.help, kind: f.kind}
		for _, k := range keys {
			fs.series = append(fs.series, f.series[k])
		}
		out = append(out, fs)
	}
	return out
}

type familySnapshot struct {
	name, help, kind string
	series           []*series
}
