// Command checkconfig checks the gateway's Traefik configuration (static/, dynamic/ and the
// Docker labels of demo/docker-compose.yml) with paerser, the parser Traefik uses, and every
// plugin middleware's options strictly against the plugin (see package configcheck). It
// exits 1 when the check finds a problem. `make check-config` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pavilion-trust/gateway/integration/configcheck"
)

func main() {
	var p configcheck.Paths
	flag.StringVar(&p.Root, "root", "", "repository root (default: the nearest directory above the working directory holding static/traefik.yml)")
	flag.StringVar(&p.Static, "static", "", "static configuration (default <root>/static/traefik.yml)")
	flag.StringVar(&p.Dynamic, "dynamic", "", "dynamic configuration directory (default <root>/dynamic)")
	flag.StringVar(&p.Compose, "compose", "", "compose file whose labels are checked (default <root>/demo/docker-compose.yml)")
	flag.StringVar(&p.Kubernetes, "kubernetes", "", "Kubernetes manifests whose Middleware plugin options are checked (default <root>/deploy/kubernetes)")
	flag.Parse()
	if p.Root == "" {
		root, err := findRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "checkconfig:", err)
			os.Exit(2)
		}
		p.Root = root
	}
	// The plugins write their operator log to the os.Stdout of the moment New runs (a JWKS
	// line may follow even with a cancelled context): keep it out of the report.
	stdout := os.Stdout
	if devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		os.Stdout = devnull
	}
	r := configcheck.Check(p)
	os.Stdout = stdout
	for _, n := range r.Notes {
		fmt.Println("note:", n)
	}
	for _, pr := range r.Problems {
		fmt.Println("FAIL:", pr)
	}
	if len(r.Problems) > 0 {
		fmt.Printf("check-config: %d problem(s)\n", len(r.Problems))
		os.Exit(1)
	}
	fmt.Println("check-config: ok")
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "static", "traefik.yml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no static/traefik.yml above the working directory; use -root")
		}
		dir = parent
	}
}
