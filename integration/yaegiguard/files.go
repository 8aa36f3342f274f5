package yaegiguard

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// skippedDirs are never plugin code: vendored libraries, test data, the integration module and
// the demo programs.
var skippedDirs = map[string]bool{"vendor": true, "testdata": true, "integration": true, "demo": true}

// InterpretedFiles lists the non-test Go files that Traefik's Yaegi may interpret: those of
// the root package, of every package under plugins/, and of every package of the module that
// they import, directly or not (shared packages, wherever they are). root is the repository
// root and modulePath its module path. vendor/, testdata/, integration/, demo/ and directories
// starting with "." or "_" are skipped.
func InterpretedFiles(root, modulePath string) ([]string, error) {
	dirs := []string{root}
	err := filepath.WalkDir(filepath.Join(root, "plugins"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != filepath.Join(root, "plugins") && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("walking plugins: %w", err)
	}

	seen := map[string]bool{}
	var files []string
	for len(dirs) > 0 {
		dir := dirs[0]
		dirs = dirs[1:]
		if seen[dir] {
			continue
		}
		seen[dir] = true

		goFiles, imports, err := packageFiles(dir)
		if err != nil {
			return nil, err
		}
		files = append(files, goFiles...)

		for _, imp := range imports {
			rest, ok := strings.CutPrefix(imp, modulePath+"/")
			if !ok {
				continue
			}
			rel := filepath.FromSlash(rest)
			if skipPath(rel) {
				continue
			}
			dirs = append(dirs, filepath.Join(root, rel))
		}
	}

	sort.Strings(files)
	return files, nil
}

func skipDir(name string) bool {
	return skippedDirs[name] || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

func skipPath(rel string) bool {
	for _, elem := range strings.Split(rel, string(filepath.Separator)) {
		if skipDir(elem) {
			return true
		}
	}
	return false
}

// packageFiles returns the non-test .go files of dir and the paths they import.
func packageFiles(dir string) ([]string, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}

	var files, imports []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || skipDir(name) {
			continue
		}
		p := filepath.Join(dir, name)
		files = append(files, p)

		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return nil, nil, err
		}
		for _, spec := range f.Imports {
			if imp, err := strconv.Unquote(spec.Path.Value); err == nil {
				imports = append(imports, imp)
			}
		}
	}
	return files, imports, nil
}

// CheckFiles parses and checks files, package by package (the files of one directory),
// resolving imports of the module (root, modulePath) from source for the rules that need types.
func CheckFiles(root, modulePath string, files []string) ([]Finding, error) {
	fset := token.NewFileSet()
	imp := &moduleImporter{root: root, modulePath: modulePath, fset: fset, pkgs: map[string]*types.Package{}}

	byDir := map[string][]string{}
	var dirs []string
	for _, p := range files {
		dir := filepath.Dir(p)
		if byDir[dir] == nil {
			dirs = append(dirs, dir)
		}
		byDir[dir] = append(byDir[dir], p)
	}
	sort.Strings(dirs)

	var findings []Finding
	for _, dir := range dirs {
		var parsed []*ast.File
		for _, p := range byDir[dir] {
			f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
			if err != nil {
				return nil, err
			}
			parsed = append(parsed, f)
		}
		findings = append(findings, CheckPackage(fset, parsed, imp)...)
	}
	return findings, nil
}

// moduleImporter type-checks the module's own packages from source, as far as it can; it
// resolves no other import (standard library and vendored packages stay unresolved).
type moduleImporter struct {
	root, modulePath string
	fset             *token.FileSet
	pkgs             map[string]*types.Package
}

func (m *moduleImporter) Import(p string) (*types.Package, error) {
	rest, ok := strings.CutPrefix(p, m.modulePath+"/")
	if !ok || skipPath(filepath.FromSlash(rest)) {
		return nil, fmt.Errorf("%s: not resolved", p)
	}
	if pkg, ok := m.pkgs[p]; ok {
		if pkg == nil {
			return nil, fmt.Errorf("%s: import cycle", p)
		}
		return pkg, nil
	}
	m.pkgs[p] = nil

	dir := filepath.Join(m.root, filepath.FromSlash(rest))
	goFiles, _, err := packageFiles(dir)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, f := range goFiles {
		parsed, err := parser.ParseFile(m.fset, f, nil, 0)
		if err != nil {
			return nil, err
		}
		files = append(files, parsed)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no Go files in %s", p, dir)
	}

	conf := types.Config{Importer: m, Error: func(error) {}, FakeImportC: true}
	pkg, _ := conf.Check(p, m.fset, files, nil)
	m.pkgs[p] = pkg
	return pkg, nil
}
