package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// guardRules returns the rule names the Yaegi guard reports: the second argument of every
// report call in its sources, a string literal or a constant of the package.
func guardRules(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	var args []ast.Expr
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if i < len(n.Values) {
						if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[name.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "report" && len(n.Args) == 3 {
					args = append(args, n.Args[1])
				}
			}
			return true
		})
	}
	seen := map[string]bool{}
	for _, a := range args {
		switch a := a.(type) {
		case *ast.BasicLit:
			s, _ := strconv.Unquote(a.Value)
			seen[s] = true
		case *ast.Ident:
			s, ok := consts[a.Name]
			if !ok {
				t.Fatalf("%s: report with rule %s, which is no string constant of the package", fset.Position(a.Pos()), a.Name)
			}
			seen[s] = true
		default:
			t.Fatalf("%s: report with a rule this test cannot read", fset.Position(a.Pos()))
		}
	}
	rules := make([]string, 0, len(seen))
	for r := range seen {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	return rules
}

// TestYaegiRulesDocumented checks that every rule the Yaegi guard enforces is explained in
// docs/yaegi.md (as "guard: `<rule>`") and named in the guard's package comment, and that the
// page names no rule the guard does not have.
func TestYaegiRulesDocumented(t *testing.T) {
	dir := filepath.Join("..", "yaegiguard")
	rules := guardRules(t, dir)
	if len(rules) < 8 {
		t.Fatalf("found only the guard rules %v: is the report call still c.report(pos, rule, msg)?", rules)
	}
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "yaegi.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(page)
	src, err := os.ReadFile(filepath.Join(dir, "check.go"))
	if err != nil {
		t.Fatal(err)
	}
	pkgComment, _, _ := strings.Cut(string(src), "package yaegiguard")
	known := map[string]bool{}
	for _, r := range rules {
		known[r] = true
		if !strings.Contains(doc, "*guard: `"+r+"`*") {
			t.Errorf("docs/yaegi.md does not explain the guard rule %s (write *guard: `%s`* in its entry)", r, r)
		}
		if !strings.Contains(pkgComment, r) {
			t.Errorf("the yaegiguard package comment does not name the rule %s", r)
		}
	}
	for _, part := range strings.Split(doc, "*guard: `")[1:] {
		name, _, _ := strings.Cut(part, "`")
		if !known[name] {
			t.Errorf("docs/yaegi.md names the guard rule %s, which the guard does not report", name)
		}
	}
	if !strings.Contains(pkgComment, "docs/yaegi.md") {
		t.Error("the yaegiguard package comment does not point to docs/yaegi.md")
	}
}
