package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// PAVILION_PROFILE=<n>:<file> makes a benchmark profile Traefik instead of measuring: it
// loads scenario n (0-based, in the order of the table) with wrk and writes an 8-second CPU
// profile of the Traefik process to file (read it with `go tool pprof -top <file>`).
func profiled(t *testing.T, spec string, n int) int {
	i, err := strconv.Atoi(strings.SplitN(spec, ":", 2)[0])
	if err != nil || i < 0 || i >= n {
		t.Fatalf("PAVILION_PROFILE=%q: want <scenario 0..%d>:<file>", spec, n-1)
	}
	return i
}

func profile(t *testing.T, gw *traefiktest.Traefik, spec string, load func() float64) {
	_, file, ok := strings.Cut(spec, ":")
	if !ok || file == "" {
		t.Fatalf("PAVILION_PROFILE=%q: want <scenario>:<file>", spec)
	}
	var reqs float64
	profileURL(t, gw.APIURL, file, func() { reqs = load() })
	fmt.Printf("(wrk: %.0f req/s over the whole run)\n", reqs)
}

// profileURL runs load and, 2 seconds into it, takes from Traefik's pprof handlers at api
// (api.debug) an 8-second CPU profile, a 3-second execution trace when file ends in
// ".trace" (read it with `go tool trace <file>`), or the heap 8 seconds into the load when it
// ends in ".heap" (`go tool pprof -sample_index=inuse_space -top <file>`), written to file.
func profileURL(t *testing.T, api, file string, load func()) {
	what := "profile?seconds=8"
	wait := 2 * time.Second
	if strings.HasSuffix(file, ".trace") {
		what = "trace?seconds=3"
	}
	if strings.HasSuffix(file, ".heap") {
		what = "heap"
		wait = 10 * time.Second
	}
	done := make(chan struct{})
	go func() { load(); close(done) }()
	time.Sleep(wait)
	resp, err := http.Get(api + "/debug/pprof/" + what)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("profile: %v %d", err, resp.StatusCode)
	}
	abs, _ := filepath.Abs(file)
	if err := os.WriteFile(abs, body, 0o644); err != nil {
		t.Fatal(err)
	}
	<-done
	fmt.Printf("%s of Traefik written to %s\n", strings.SplitN(what, "?", 2)[0], abs)
}
