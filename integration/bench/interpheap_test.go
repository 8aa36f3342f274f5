package bench

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
)

// TestBenchInterpreterHeap reports the live heap that one Yaegi interpreter holds for each
// package of the repository once imported, the way Traefik loads a local plugin (its own
// interpreter, the standard library's symbols, then the import): what declaring a plugin in
// static/ costs in memory before any request, and what a package adds to every interpreter
// that imports it. Part of `make bench-memory`; skipped unless PAVILION_BENCH=1.
func TestBenchInterpreterHeap(t *testing.T) {
	if os.Getenv("PAVILION_BENCH") != "1" {
		t.Skip("set PAVILION_BENCH=1 (make bench-memory) to run the benchmark")
	}
	goPath := pluginharness.RepoGoPath(t)
	const mod = pluginharness.RootModule
	packages := []string{
		mod + "/plugins/refcount", mod + "/plugins/confmap", mod + "/plugins/metrics",
		mod + "/plugins/resp", mod + "/plugins/requestid", mod + "/plugins/jwtauth",
		mod + "/plugins/ratelimit", mod + "/plugins/health", mod,
	}
	var keep []*interp.Interpreter // alive until the end, so that no measure frees another's
	live := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var rows []string
	for _, p := range packages {
		before := live()
		i := interp.New(interp.Options{GoPath: goPath, Env: os.Environ()})
		if err := i.Use(stdlib.Symbols); err != nil {
			t.Fatal(err)
		}
		used := live()
		if _, err := i.Eval(fmt.Sprintf("import %q", p)); err != nil {
			t.Fatalf("import %s: %v", p, err)
		}
		imported := live()
		keep = append(keep, i)
		rows = append(rows, fmt.Sprintf("| %s | %.1f | %.1f | %.1f |", p,
			float64(used-before)/(1<<20), float64(imported-used)/(1<<20), float64(imported-before)/(1<<20)))
	}
	fmt.Println("\nLive heap of one interpreter per package, MiB (the package with what it imports):")
	fmt.Println("| package | standard library symbols | the package and its imports | interpreter in all |")
	fmt.Println("|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	runtime.KeepAlive(keep)
}
