package pluginharness

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

var repoRoot = sync.OnceValue(findRepoRoot)

// RepoRoot returns the absolute path of the repository root: the closest directory, from the
// current directory (a test's package directory) or else from this source file, whose go.mod
// declares the root module. It panics if there is none.
func RepoRoot() string {
	return repoRoot()
}

func findRepoRoot() string {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}

	for _, dir := range starts {
		for {
			if modulePath(filepath.Join(dir, "go.mod")) == RootModule {
				if abs, err := filepath.Abs(dir); err == nil {
					return abs
				}
				return dir
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}

	panic("pluginharness: no go.mod declaring module " + RootModule + " above the current directory")
}

// modulePath returns the module path declared by a go.mod file, or "" if it cannot be read.
func modulePath(goMod string) string {
	f, err := os.Open(goMod)
	if err != nil {
		return ""
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			if i := strings.Index(rest, "//"); i >= 0 {
				rest = rest[:i]
			}
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}

	return ""
}
