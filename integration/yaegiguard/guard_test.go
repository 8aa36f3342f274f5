package yaegiguard_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/yaegiguard"
)

// TestPluginSourcesAreYaegiSafe is the guard: no plugin source may use a construct that Yaegi
// v0.16.1 runs wrongly (see check.go for the rules and miscompile_test.go for the proof).
func TestPluginSourcesAreYaegiSafe(t *testing.T) {
	root := pluginharness.RepoRoot()

	files, err := yaegiguard.InterpretedFiles(root, pluginharness.RootModule)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		if pluginSources(t, root) > 0 {
			t.Fatal("found no plugin sources to check, but plugins/ has Go files: the walk is broken")
		}
		t.Log("no plugin sources yet")
	}

	findings, err := yaegiguard.CheckFiles(root, pluginharness.RootModule, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		if rel, err := filepath.Rel(root, f.Pos.Filename); err == nil {
			f.Pos.Filename = rel
		}
		t.Errorf("%s", f)
	}
	t.Logf("checked %d files under %s", len(files), root)
}

// TestPluginsImportNoLibrary: the files Traefik interprets import the standard library and
// the module's own packages only. Each interpreter keeps the syntax tree of every package a
// plugin imports for as long as the plugin is loaded (docs/yaegi.md, item 14), so a library
// imported for one function costs all of its lines in memory.
func TestPluginsImportNoLibrary(t *testing.T) {
	root := pluginharness.RepoRoot()
	files, err := yaegiguard.InterpretedFiles(root, pluginharness.RootModule)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			first := strings.SplitN(p, "/", 2)[0]
			if p == pluginharness.RootModule || strings.HasPrefix(p, pluginharness.RootModule+"/") || !strings.Contains(first, ".") {
				continue
			}
			rel, _ := filepath.Rel(root, name)
			t.Errorf("%s imports %s: plugins import the standard library and their own packages only", rel, p)
		}
	}
	if len(files) == 0 {
		t.Fatal("no interpreted files found")
	}
}

// pluginSources counts the non-test Go files under plugins/, independently of the walk.
func pluginSources(t *testing.T, root string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(filepath.Join(root, "plugins"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") &&
			!strings.Contains(p, string(filepath.Separator)+"testdata"+string(filepath.Separator)) {
			n++
		}
		return nil
	})
	return n
}

// hopType is an interpreted http.Handler for the loop-alias samples.
const hopType = "type T struct{ next http.Handler }\nfunc (t *T) ServeHTTP(http.ResponseWriter, *http.Request) {}"

// TestCheckerOnSamples runs the checker over small sources.
func TestCheckerOnSamples(t *testing.T) {
	tests := []struct {
		desc  string
		src   string // a function body
		want  []string
		extra string // top-level declarations
	}{
		{desc: "documented tuple bug", src: `var a, b string; a, b = "x", f()`, want: []string{"2 tuple-assign"}},
		{desc: "builtin call", src: "var k, l int\nk, l = 7, len(s)", want: []string{"3 tuple-assign"}},
		{desc: "call first", src: `a, b = f(), "x"`, want: []string{"2 tuple-assign"}},
		{desc: "nested call", src: `a, b = "x", "w"+strings.ToUpper(s)`, want: []string{"2 tuple-assign"}},
		{desc: "receive", src: `a, b = "x", <-ch`, want: []string{"2 tuple-assign"}},
		{desc: "composite with :=", src: `a, b := "x", T{}`, want: []string{"2 tuple-assign"}},
		{desc: "composite in var", src: `var a, b = "x", []int{1}`, want: []string{"2 tuple-assign"}},
		{desc: "package-level var", extra: `var pa, pb = 1, map[string]int{}`, want: []string{"11 tuple-assign"}},
		{desc: "one multi-value call", src: `a, err = strconv.Atoi(s)`},
		{desc: "one assignment per line", src: "a = \"x\"\nb = f()"},
		{desc: "call with :=", src: `a, b := "x", f()`},
		{desc: "swap", src: `a, b = b, a`},
		{desc: "literals", src: `a, b = 1, 2`},
		{desc: "comma ok", src: `v, ok = m[k]`},
		{desc: "func literal body is not the assignment", src: `a, b = 1, func() T { return T{f()} }`},
		{desc: "single assignment with call", src: `a = f()`},
		{desc: "op-assign", src: `a += f()`},
		{
			desc: "tagless multi-expression case",
			src:  "switch {\ncase c == 'a', c == '-':\n}",
			want: []string{"3 multi-case"},
		},
		{desc: "tagless multi-expression case with init", src: "switch x := 1; {\ncase x == 1, x == 2:\n}", want: []string{"3 multi-case"}},
		{desc: "tagless with ||", src: "switch {\ncase c == 'a' || c == '-':\n}"},
		{desc: "tagless one per case", src: "switch {\ncase c == 'a':\ncase c == '-':\ndefault:\n}"},
		{desc: "tagged literals", src: "switch c {\ncase 'a', '-', 0x2e:\n}"},
		{desc: "tagged signed literals", src: "switch n {\ncase -1, +2, (3):\n}"},
		{desc: "tagged identifiers", src: "switch n {\ncase x, y:\n}"},
		{desc: "tagged package constants", src: "switch m {\ncase http.MethodGet, http.MethodHead:\n}"},
		{desc: "tagged renamed and versioned imports", src: "switch m {\ncase jwt.A, yaml.B, nh.MethodGet:\n}"},
		{desc: "tagged calls", src: "switch n {\ncase 1, f():\n}", want: []string{"3 multi-case"}},
		{desc: "tagged fields", src: "switch n {\ncase t.a, t.b:\n}", want: []string{"3 multi-case"}},
		{desc: "tagged binary", src: "switch n {\ncase k, k + 1:\n}", want: []string{"3 multi-case"}},
		{desc: "tagged local shadows package name", src: "http := T{}\nswitch n {\ncase http.a, 2:\n}", want: []string{"4 multi-case"}},
		{desc: "switch true", src: "switch true {\ncase x == 1, x == 2:\n}", want: []string{"3 multi-case"}},
		{desc: "type switch", src: "switch v.(type) {\ncase int, string:\n}"},
		{desc: "variadic field with two variadic arguments", extra: "type L struct{ logf func(string, ...any) }\nvar l L", src: `l.logf("%d %v", 1, 2)`, want: []string{"2 variadic-field"}},
		{desc: "variadic field with one variadic argument", extra: "type L struct{ logf func(string, ...any) }\nvar l L", src: `l.logf("%d", 1)`},
		{desc: "variadic field with a spread slice", extra: "type L struct{ logf func(string, ...any) }\nvar l L", src: `l.logf("%d %v", []any{1, 2}...)`},
		{desc: "variadic field of a named type through a pointer", extra: "type F func(...int)\ntype L struct{ f F }\nvar l *L", src: `l.f(1, 2)`, want: []string{"2 variadic-field"}},
		{desc: "variadic method", extra: "type L struct{}\nfunc (L) logf(string, ...any) {}\nvar l L", src: `l.logf("%d %v", 1, 2)`},
		{desc: "variadic local from a field", extra: "type L struct{ logf func(string, ...any) }\nvar l L", src: "logf := l.logf\nlogf(\"%d %v\", 1, 2)\nvar g = l.logf\ng(\"%d %v\", 1, 2)\nvar h func(string, ...any) = l.logf\nh(\"%d %v\", 1, 2)", want: []string{"3 variadic-field", "5 variadic-field"}},
		{desc: "range over an int literal", src: "for i := range 10 {\n_ = i\n}", want: []string{"2 range-int"}},
		{desc: "range over an int variable", src: "n := 3\nfor i := range n {\n_ = i\n}", want: []string{"3 range-int"}},
		{desc: "range over a slice is fine", src: "for i := range []int{1} {\n_ = i\n}"},
		{desc: "value range over a slice of channels", src: "var s []chan struct{}\nfor _, x := range s {\n_ = x\n}", want: []string{"3 range-chan-slice"}},
		{desc: "index range over a slice of channels is fine", src: "var s []chan struct{}\nfor i := range s {\n_ = s[i]\n}"},
		{desc: "select statement", src: "var a, b chan int\nselect {\ncase <-a:\ncase <-b:\n}", want: []string{"3 select"}},
		{desc: "min builtin", src: "_ = min(1, 2)", want: []string{"2 builtin-minmax"}},
		{desc: "max builtin", src: "_ = max(1, 2)", want: []string{"2 builtin-minmax"}},
		{desc: "a local min is fine", src: "min := func(a, b int) int { return a }\n_ = min(1, 2)"},
		{desc: "errors.As", src: "var err error\nvar e *http.MaxBytesError\n_ = errors.As(err, &e)", want: []string{"4 errors-as"}},
		{desc: "variadic local func", src: "logf := func(string, ...any) {}\nlogf(\"%d %v\", 1, 2)"},
		{desc: "variadic package func", src: `fmt.Printf("%d %v", 1, 2)`},
		{desc: "self-wrap in a loop", extra: hopType, src: "var h http.Handler\nfor i := 0; i < 3; i++ {\nh = &T{next: h}\n}", want: []string{"4 loop-alias"}},
		{desc: "self-wrap unrolled", extra: hopType, src: "var h http.Handler\nh = &T{next: h}\nh = &T{next: h}"},
		{desc: "self-wrap in the post statement", extra: hopType, src: "var h http.Handler\nfor i := 0; i < 3; h = (&T{next: h}) {\ni++\n}", want: []string{"3 loop-alias"}},
		{desc: "handlers appended in a range loop", extra: hopType, src: "var hs []http.Handler\nfor range []int{1} {\nhs = append(hs, &T{})\n}", want: []string{"4 loop-alias"}},
		{desc: "a variable appended as a handler", extra: hopType, src: "var hs []http.Handler\nfor {\nt := &T{}\nhs = append(hs, t)\n}", want: []string{"5 loop-alias"}},
		{desc: "a variable appended as any", extra: hopType, src: "var all []any\nfor {\nt := &T{}\nall = append(all, t)\n}"},
		{desc: "a type without methods appended as any", extra: "type P struct{ s string }", src: "var all []any\nfor {\nall = append(all, &P{})\n}"},
		{desc: "errors appended", extra: "type E struct{}\nfunc (*E) Error() string { return \"\" }", src: "var errs []error\nfor {\nerrs = append(errs, &E{})\n}", want: []string{"4 loop-alias"}},
		{desc: "a concrete pointer chain", extra: "type N struct{ next *N }", src: "var n *N\nfor {\nn = &N{next: n}\n}"},
		{desc: "wrapped by a function returning the interface", extra: hopType + "\nfunc wrap(next http.Handler) http.Handler { return &T{next: next} }", src: "var h http.Handler\nfor {\nh = wrap(h)\n}"},
		{desc: "wrapped by a function returning the pointer", extra: hopType + "\nfunc wrap(next http.Handler) *T { return &T{next: next} }", src: "var h http.Handler\nfor {\nh = wrap(h)\n}", want: []string{"4 loop-alias"}},
		{desc: "nested loops report once", extra: hopType, src: "var h http.Handler\nfor {\nfor {\nh = &T{next: h}\n}\n}", want: []string{"5 loop-alias"}},
		{desc: "a function literal called in a loop has its own frame", extra: hopType, src: "var h http.Handler\nfor {\nfunc() { h = &T{next: h} }()\n}"},
		{desc: "a loop in a function literal in a loop", extra: hopType, src: "for {\nf := func() {\nvar h http.Handler\nfor {\nh = &T{next: h}\n}\n}\n_ = f\n}", want: []string{"6 loop-alias"}},
		{desc: "a function literal to compiled code in a loop", src: "var h http.Handler\nfor {\nh = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})\n}", want: []string{"4 loop-alias"}},
		{desc: "a function literal to interpreted code in a loop", extra: "func each(f func()) { f() }", src: "for {\neach(func() {})\n}"},
		{desc: "a literal with an unnamed parameter", src: "_ = func(int) string { return \"\" }", want: []string{"2 unnamed-param"}},
		{desc: "a declared function with an unnamed parameter", extra: "func h(int, string) error { return nil }", want: []string{"11 unnamed-param"}},
		{desc: "parameters written _ or named", extra: "func h(_ int, s string) error { return nil }", src: "_ = func(_ int) string { return \"\" }"},
		{desc: "an unnamed parameter of an empty function", src: "_ = func(int) {}"},
		{
			desc: "several findings",
			src:  "a, b = f(), g()\nswitch {\ncase p, q:\n}\nswitch {\ncase r:\ncase p, q:\n}",
			want: []string{"2 tuple-assign", "4 multi-case", "8 multi-case"},
		},
	}

	for _, test := range tests {
		t.Run(test.desc, func(t *testing.T) {
			src := "package p\n\nimport (\n\t\"errors\"\n\t\"net/http\"\n\tnh \"net/http\"\n\t\"github.com/golang-jwt/jwt/v5\"\n\t\"gopkg.in/yaml.v3\"\n)\n\n" + test.extra +
				"\n\nfunc sample() {\n" + test.src + "\n}\n"
			findings, err := yaegiguard.CheckSource("sample.go", []byte(src))
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, src)
			}

			// Lines relative to the function body (line 1 = "func sample() {"), or to the
			// file for the top-level declarations of extra.
			bodyStart := strings.Count(src[:strings.Index(src, "func sample()")], "\n")
			got := []string{}
			for _, f := range findings {
				line := f.Pos.Line - bodyStart
				if test.extra != "" && f.Pos.Line < bodyStart {
					line = f.Pos.Line
				}
				got = append(got, strconv.Itoa(line)+" "+f.Rule)
			}
			want := test.want
			if want == nil {
				want = []string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("findings = %v, want %v\nsource:\n%s\nfindings: %v", got, want, src, findings)
			}
		})
	}
}

// TestCheckerMatchesYaegi: over package cases, whose functions miscompile or not under Yaegi
// v0.16.1 (proved by TestYaegiMiscompiles), the checker flags every Bad* and Strict* function
// and no Safe* function.
func TestCheckerMatchesYaegi(t *testing.T) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, casesFile, nil, 0)
	if err != nil {
		t.Fatal(err)
	}

	flagged := map[string]bool{}
	for _, f := range yaegiguard.CheckPackage(fset, []*ast.File{file}, nil) {
		flagged[enclosingFunc(fset, file, f.Pos)] = true
	}

	var funcs []string
	for _, d := range file.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && ast.IsExported(fd.Name.Name) {
			funcs = append(funcs, fd.Name.Name)
		}
	}
	sort.Strings(funcs)
	if len(funcs) < 30 {
		t.Fatalf("found only %d functions in %s", len(funcs), casesFile)
	}

	for _, name := range funcs {
		want := strings.HasPrefix(name, "Bad") || strings.HasPrefix(name, "Strict")
		if flagged[name] != want {
			t.Errorf("%s: flagged = %v, want %v", name, flagged[name], want)
		}
	}
}

func enclosingFunc(fset *token.FileSet, file *ast.File, pos token.Position) string {
	for _, d := range file.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		if fset.Position(fd.Pos()).Line <= pos.Line && pos.Line <= fset.Position(fd.End()).Line {
			return fd.Name.Name
		}
	}
	return "<top level>"
}

// TestInterpretedFiles checks which files the guard reads, on a small tree.
func TestInterpretedFiles(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write("go.mod", "module example.com/gw\n")
	write("root.go", "package gw\n")
	write("root_test.go", "package gw\n")
	write("plugins/a/a.go", "package a\n\nimport (\n\t\"fmt\"\n\t\"example.com/gw/internal/shared\"\n\t\"example.com/gw/demo/x\"\n)\n")
	write("plugins/a/a_test.go", "package a\n")
	write("plugins/a/testdata/t.go", "package t\n")
	write("plugins/a/sub/deep/d.go", "package deep\n")
	write("plugins/a/.hidden/h.go", "package h\n")
	write("plugins/a/notes.txt", "")
	write("internal/shared/s.go", "package shared\n\nimport \"example.com/gw/internal/leaf\"\n")
	write("internal/leaf/l.go", "package leaf\n")
	write("internal/unused/u.go", "package unused\n")
	write("vendor/example.com/v/v.go", "package v\n")
	write("demo/x/x.go", "package x\n")
	write("integration/i.go", "package i\n")

	files, err := yaegiguard.InterpretedFiles(root, "example.com/gw")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		got = append(got, filepath.ToSlash(rel))
	}
	want := []string{"internal/leaf/l.go", "internal/shared/s.go", "plugins/a/a.go", "plugins/a/sub/deep/d.go", "root.go"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files = %v, want %v", got, want)
	}
}

func TestCheckerFlagsVariadicFieldCalls(t *testing.T) {
	for pkg, line := range map[string]int{"variadicfield": 18, "variadiclocal": 15} {
		p := filepath.Join("testdata", "src", "example.com", pkg, pkg+".go")
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		findings, err := yaegiguard.CheckSource(p, src)
		if err != nil {
			t.Fatal(err)
		}
		if len(findings) != 1 || findings[0].Rule != yaegiguard.RuleVariadicField || findings[0].Pos.Line != line {
			t.Errorf("%s: findings = %v, want one variadic-field at line %d", pkg, findings, line)
		}
	}
}

// TestCheckFilesResolvesModuleImports: the variadic-field rule sees a field whose type comes
// from another package of the module.
func TestCheckFilesResolvesModuleImports(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) string {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("shared/log.go", "package shared\n\n// LogFunc logs.\ntype LogFunc func(format string, args ...any)\n")
	p := write("plugins/a/a.go", `package a

import (
	"net/http"

	"example.com/gw/shared"
)

type mw struct {
	next http.Handler
	logf shared.LogFunc
}

func (m *mw) log(n int, err error) {
	m.logf("%d %v", n, err)
	m.logf("%d", n)
}
`)

	findings, err := yaegiguard.CheckFiles(root, "example.com/gw", []string{p})
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Rule != yaegiguard.RuleVariadicField || findings[0].Pos.Line != 15 {
		t.Errorf("findings = %v, want one variadic-field at line 15", findings)
	}
}
