package metrics

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

// ContentType is the media type of the Prometheus text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Write writes every series of the registry in the Prometheus text format, families sorted
// by name.
func Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, f := range snapshotFamilies() {
		bw.WriteString("# HELP " + f.name + " " + helpEscaper.Replace(f.help) + "\n")
		bw.WriteString("# TYPE " + f.name + " " + f.kind + "\n")
		for _, s := range f.series {
			if f.kind == kindHistogram {
				writeHistogram(bw, f.name, s)
				continue
			}
			bw.WriteString(f.name + braces(s.labels) + " " +
				strconv.FormatInt(atomic.LoadInt64(&s.value), 10) + "\n")
		}
	}
	return bw.Flush()
}

func writeHistogram(bw *bufio.Writer, name string, s *series) {
	h := s.hist
	if h == nil {
		return
	}
	sep := ""
	if s.labels != "" {
		sep = ","
	}
	counts := h.buckets()
	for i, n := range counts {
		le := "+Inf"
		if i < len(h.le) {
			le = h.le[i]
		}
		bw.WriteString(name + "_bucket{" + s.labels + sep + `le="` + le + `"} ` + strconv.FormatInt(n, 10) + "\n")
	}
	cum := counts[len(counts)-1]
	sum := float64(atomic.LoadInt64(&h.Sum)) / 1e9
	bw.WriteString(name + "_sum" + braces(s.labels) + " " + formatFloat(sum) + "\n")
	bw.WriteString(name + "_count" + braces(s.labels) + " " + strconv.FormatInt(cum, 10) + "\n")
}

func braces(labels string) string {
	if labels == "" {
		return ""
	}
	return "{" + labels + "}"
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Handler answers GET and HEAD with the registry in the Prometheus text format; other
// methods get 405.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		rw.Header().Set("Allow", "GET, HEAD")
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rw.Header().Set("Content-Type", ContentType)
	rw.Header().Set("Cache-Control", "no-store")
	if req.Method == http.MethodHead {
		return
	}
	Write(rw)
}
