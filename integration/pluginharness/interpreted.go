package pluginharness

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// RootModule is the root module's path, under which Interpreted exposes the repository.
const RootModule = "github.com/pavilion-trust/gateway"

// Interpreted returns a Builder whose CreateConfig and New run in one Yaegi interpreter,
// created as Traefik v3.6.12 creates one for a local plugin. Its GOPATH is a temporary
// directory where src/github.com/pavilion-trust/gateway is a symlink to the repository root,
// so the interpreter reads the working tree, including the repository-root vendor/, as
// Traefik reads ./plugins-local/.
//
// importPath is the plugin's import (the manifest's "import"); its package name must be its
// last element, with "-" replaced by "_", as Traefik assumes when a manifest has no basePkg.
// The test fails at once, with the interpreter's error, if the import fails.
func Interpreted(tb testing.TB, importPath string) Builder {
	tb.Helper()

	return InterpretedGoPath(tb, RepoGoPath(tb), importPath)
}

// RepoGoPath returns a temporary GOPATH whose src/github.com/pavilion-trust/gateway is a
// symlink to the working tree, as plugins-local/ is for Traefik.
func RepoGoPath(tb testing.TB) string {
	tb.Helper()
	goPath := tb.TempDir()
	if err := LinkRepository(goPath); err != nil {
		tb.Fatalf("pluginharness: %v", err)
	}
	return goPath
}

// LinkRepository makes the repository root visible as goPath/src/github.com/pavilion-trust/gateway,
// through a symlink (goPath: a GOPATH, or Traefik's plugins-local/).
func LinkRepository(goPath string) error {
	parent := filepath.Join(goPath, "src", filepath.FromSlash(path.Dir(RootModule)))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	return os.Symlink(RepoRoot(), filepath.Join(parent, path.Base(RootModule)))
}

// InterpretedGoPath is Interpreted with a plain GOPATH: the plugin's sources are read from
// goPath/src/<importPath>.
func InterpretedGoPath(tb testing.TB, goPath, importPath string) Builder {
	tb.Helper()

	b, err := interpret(goPath, importPath)
	if err != nil {
		tb.Fatalf("pluginharness: %v", err)
	}

	return b
}

// interpret mirrors Traefik's newInterpreter and newYaegiMiddlewareBuilder, without the
// provider-plugin symbols (ppSymbols) and without unsafe/syscall (useUnsafe).
func interpret(goPath, importPath string) (b Builder, err error) {
	// Yaegi v0.16.1 panics, out of Eval, on some constructs while importing a package (see
	// yaegiguard's variadic-field rule); Traefik does not recover there. Report it as a failure
	// of this test rather than crash the test binary.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaegi panicked while importing %q (Traefik crashes on this too; "+
				"integration/yaegiguard names the known causes with file:line): %v", importPath, r)
		}
	}()

	i := interp.New(interp.Options{
		GoPath: goPath,
		Env:    os.Environ(),
	})

	if err := i.Use(stdlib.Symbols); err != nil {
		return Builder{}, fmt.Errorf("failed to load symbols: %w", err)
	}

	if _, err := i.Eval(fmt.Sprintf(`import %q`, importPath)); err != nil {
		return Builder{}, fmt.Errorf("failed to import plugin code %q: %w", importPath, err)
	}

	basePkg := strings.ReplaceAll(path.Base(importPath), "-", "_")

	fnNew, err := i.Eval(basePkg + `.New`)
	if err != nil {
		return Builder{}, fmt.Errorf("failed to eval New: %w", err)
	}

	fnCreateConfig, err := i.Eval(basePkg + `.CreateConfig`)
	if err != nil {
		return Builder{}, fmt.Errorf("failed to eval CreateConfig: %w", err)
	}

	return Builder{Name: "yaegi", createConfig: fnCreateConfig, newFn: fnNew}, nil
}

// Both returns the compiled and the interpreted Builder of one plugin, in that order:
//
//	for _, b := range pluginharness.Both(t, "github.com/pavilion-trust/gateway/plugins/jwtauth", jwtauth.CreateConfig, jwtauth.New) {
//		t.Run(b.Name, func(t *testing.T) { ... })
//	}
func Both(tb testing.TB, importPath string, createConfig, newFn any) []Builder {
	tb.Helper()

	return []Builder{Compiled(createConfig, newFn), Interpreted(tb, importPath)}
}
