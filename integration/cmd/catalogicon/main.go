// Command catalogicon writes the Traefik plugin catalog icon of the suite (.assets/icon.png,
// the root .traefik.yml's iconPath) from catalogtest.Icon. Run from integration/:
//
//	go run ./cmd/catalogicon -root ..
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pavilion-trust/gateway/integration/catalogtest"
)

func main() {
	root := flag.String("root", "..", "repository root")
	flag.Parse()
	b, err := catalogtest.Icon()
	if err == nil {
		out := filepath.Join(*root, catalogtest.IconPath)
		if err = os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
			err = os.WriteFile(out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "catalogicon:", err)
		os.Exit(1)
	}
}
