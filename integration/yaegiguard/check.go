// Package yaegiguard finds, in plugin sources, the constructs that Yaegi v0.16.1 (the
// interpreter embedded in Traefik v3.6.12) runs wrongly or cannot run, so that code which
// passes its compiled tests cannot break inside Traefik.
//
// The rules it enforces — tuple-assign, multi-case, variadic-field, select, errors-as,
// builtin-minmax, range-int, range-chan-slice — are explained, with what to write instead, in
// docs/yaegi.md, the one list of rules for plugin code; a rule added here must be added there
// (integration/docscheck checks that every rule reported here is documented).
//
// The rules are mostly syntactic and err on the side of caution; testdata/src/example.com/cases
// holds, for each rule, forms that Yaegi gets wrong (flagged), forms it gets right (not
// flagged), and forms flagged although Yaegi gets them right today. The rules variadic-field,
// range-int and range-chan-slice use types: CheckFiles type-checks each package, resolving the
// module's own imports.
package yaegiguard

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Rule names.
const (
	RuleTupleAssign   = "tuple-assign"
	RuleMultiCase     = "multi-case"
	RuleVariadicField = "variadic-field"
)

// Finding is one construct that Yaegi v0.16.1 may run wrongly.
type Finding struct {
	Pos     token.Position
	Rule    string
	Message string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s (%s)", f.Pos, f.Message, f.Rule)
}

// CheckSource parses one Go source file and checks it as a package of its own (its imports
// are not resolved).
func CheckSource(filename string, src []byte) ([]Finding, error) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, filename, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	return CheckPackage(fset, []*ast.File{file}, nil), nil
}

// CheckPackage checks the files of one package (parsed with object resolution, the go/parser
// default). The package is type-checked for the rules that need types, with imp resolving its
// imports (nil: none); type errors, such as unresolved imports, are ignored.
func CheckPackage(fset *token.FileSet, files []*ast.File, imp types.Importer) []Finding {
	if len(files) == 0 {
		return nil
	}

	info := typeCheck(fset, files, imp)
	fieldTyped := fieldTypedVars(files, info)

	var findings []Finding
	for _, file := range files {
		c := checker{fset: fset, imports: importNames(file), info: info, fieldTyped: fieldTyped}
		ast.Inspect(file, c.visit)
		findings = append(findings, c.findings...)
	}
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i].Pos, findings[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Offset < b.Offset
	})
	return findings
}

// CheckFile checks one parsed file, without types: the rules that need types are skipped.
func CheckFile(fset *token.FileSet, file *ast.File) []Finding {
	c := checker{fset: fset, imports: importNames(file)}
	ast.Inspect(file, c.visit)
	return c.findings
}

type checker struct {
	fset       *token.FileSet
	imports    map[string]bool
	info       *types.Info
	fieldTyped map[types.Object]bool
	findings   []Finding
}

func (c *checker) report(pos token.Pos, rule, msg string) {
	c.findings = append(c.findings, Finding{Pos: c.fset.Position(pos), Rule: rule, Message: msg})
}

func (c *checker) visit(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.AssignStmt:
		c.checkTuple(n.Pos(), n.Tok, len(n.Lhs), n.Rhs)
	case *ast.ValueSpec:
		c.checkTuple(n.Pos(), token.VAR, len(n.Names), n.Values)
	case *ast.SwitchStmt:
		c.checkSwitch(n)
	case *ast.CallExpr:
		c.checkVariadicField(n)
		c.checkNewerGo(n)
	case *ast.RangeStmt:
		c.checkRangeInt(n)
		c.checkRangeChanSlice(n)
	case *ast.SelectStmt:
		c.report(n.Pos(), "select", "Yaegi v0.16.1 keeps one set of cases per select statement (interp/run.go _select), shared by every goroutine running it at the same time: concurrent waits get each other's channels; wait on a single channel instead")
	}
	return true
}

func (c *checker) checkTuple(pos token.Pos, tok token.Token, lhs int, rhs []ast.Expr) {
	if lhs < 2 || len(rhs) < 2 {
		return
	}

	form := map[token.Token]string{token.ASSIGN: "a, b = x, y", token.DEFINE: "a, b := x, y", token.VAR: "var a, b = x, y"}[tok]
	if form == "" {
		return
	}

	for _, e := range rhs {
		what := ""
		switch {
		case contains(e, isCompositeLit):
			what = "a composite literal"
		case contains(e, isReceive):
			what = "a channel receive"
		case tok == token.ASSIGN && contains(e, isCall):
			what = "a call"
		}
		if what != "" {
			c.report(pos, RuleTupleAssign, fmt.Sprintf(
				"%s with %s on the right: Yaegi v0.16.1 loses the other values; write one assignment per line", form, what))
			return
		}
	}
}

func (c *checker) checkSwitch(s *ast.SwitchStmt) {
	for _, stmt := range s.Body.List {
		cc, ok := stmt.(*ast.CaseClause)
		if !ok || len(cc.List) < 2 {
			continue
		}

		if s.Tag == nil {
			c.report(cc.Pos(), RuleMultiCase,
				"case with several expressions in a switch without tag: Yaegi v0.16.1 evaluates only the first; use || or one case per condition")
			continue
		}

		for _, e := range cc.List {
			if !c.static(e) {
				c.report(cc.Pos(), RuleMultiCase,
					"case with several expressions, not all literals or identifiers: Yaegi v0.16.1 may skip all but the first; use one case per value")
				break
			}
		}
	}
}

// static reports whether Yaegi v0.16.1 evaluates e correctly as one of several expressions of
// a case: a literal, an identifier, a package-qualified identifier, or a sign and a literal.
func (c *checker) static(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit, *ast.Ident:
		return true
	case *ast.ParenExpr:
		return c.static(e.X)
	case *ast.UnaryExpr:
		_, lit := e.X.(*ast.BasicLit)
		return lit && (e.Op == token.SUB || e.Op == token.ADD || e.Op == token.XOR)
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		// An identifier the parser left unresolved, named as an import: a package name.
		return ok && x.Obj == nil && c.imports[x.Name]
	}
	return false
}

// contains reports whether e, or an expression inside it, satisfies pred. Function literals'
// bodies are not searched: they run later, not as part of the assignment.
func contains(e ast.Expr, pred func(ast.Node) bool) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if found {
			return false
		}
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		if n != nil && pred(n) {
			found = true
		}
		return !found
	})
	return found
}

func isCall(n ast.Node) bool {
	_, ok := n.(*ast.CallExpr)
	return ok
}

func isCompositeLit(n ast.Node) bool {
	_, ok := n.(*ast.CompositeLit)
	return ok
}

func isReceive(n ast.Node) bool {
	u, ok := n.(*ast.UnaryExpr)
	return ok && u.Op == token.ARROW
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// importNames returns the names under which a file refers to its imports: the explicit name,
// or the usual package name derived from the path ("github.com/golang-jwt/jwt/v5" -> jwt,
// "gopkg.in/yaml.v3" -> yaml, "github.com/x/go-redis" -> redis and go_redis).
func importNames(file *ast.File) map[string]bool {
	names := map[string]bool{}
	for _, spec := range file.Imports {
		if spec.Name != nil {
			names[spec.Name.Name] = true
			continue
		}

		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			continue
		}
		base := path.Base(p)
		if majorVersion.MatchString(base) && path.Dir(p) != "." {
			base = path.Base(path.Dir(p))
		}
		if i := strings.Index(base, ".v"); i > 0 {
			base = base[:i]
		}
		names[base] = true
		names[strings.ReplaceAll(base, "-", "_")] = true
		names[strings.TrimPrefix(base, "go-")] = true
	}
	return names
}

// checkVariadicField flags a call, with more arguments than parameters, of a struct field of
// variadic function type (c.logf("%d %v", n, err) with logf func(string, ...any)), or of a
// variable that took its type from such a field without declaring it (logf := c.logf): Yaegi
// v0.16.1 panics (index out of range) when it compiles it and, when this happens while a
// plugin is imported, takes the whole process down.
func (c *checker) checkVariadicField(call *ast.CallExpr) {
	if c.info == nil || call.Ellipsis.IsValid() {
		return
	}

	var name string
	var typ types.Type
	switch fun := ast.Unparen(call.Fun).(type) {
	case *ast.SelectorExpr:
		s := c.info.Selections[fun]
		if s == nil || s.Kind() != types.FieldVal {
			return
		}
		name = fun.Sel.Name
		typ = s.Type()
	case *ast.Ident:
		obj := c.info.Uses[fun]
		if obj == nil || !c.fieldTyped[obj] {
			return
		}
		name = fun.Name
		typ = obj.Type()
	default:
		return
	}

	sig, ok := typ.Underlying().(*types.Signature)
	if !ok || !sig.Variadic() || len(call.Args) <= sig.Params().Len() {
		return
	}
	c.report(call.Pos(), RuleVariadicField, fmt.Sprintf(
		"call of the variadic function field %s with %d arguments: Yaegi v0.16.1 panics compiling it "+
			"(index out of range); pass the variadic arguments as a slice (%s(..., []any{...}...)), "+
			"or use a method, or a variable declared with its type", name, len(call.Args), name))
}

// fieldTypedVars returns the variables defined without a type from a struct field of function
// type (logf := c.logf, var logf = c.logf): Yaegi gives them the field's type.
func fieldTypedVars(files []*ast.File, info *types.Info) map[types.Object]bool {
	vars := map[types.Object]bool{}
	isField := func(e ast.Expr) bool {
		sel, ok := ast.Unparen(e).(*ast.SelectorExpr)
		if !ok {
			return false
		}
		s := info.Selections[sel]
		if s == nil || s.Kind() != types.FieldVal {
			return false
		}
		_, ok = s.Type().Underlying().(*types.Signature)
		return ok
	}
	define := func(lhs ast.Expr, rhs ast.Expr) {
		if id, ok := lhs.(*ast.Ident); ok && isField(rhs) {
			if obj := info.Defs[id]; obj != nil {
				vars[obj] = true
			}
		}
	}

	for _, file := range files {
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				if n.Tok == token.DEFINE && len(n.Lhs) == len(n.Rhs) {
					for i := range n.Lhs {
						define(n.Lhs[i], n.Rhs[i])
					}
				}
			case *ast.ValueSpec:
				if n.Type == nil && len(n.Names) == len(n.Values) {
					for i := range n.Names {
						define(n.Names[i], n.Values[i])
					}
				}
			}
			return true
		})
	}
	return vars
}

// typeCheck type-checks one package as far as it can and returns what it learnt.
func typeCheck(fset *token.FileSet, files []*ast.File, imp types.Importer) *types.Info {
	if imp == nil {
		imp = noImporter{}
	}
	info := &types.Info{
		Selections: map[*ast.SelectorExpr]*types.Selection{},
		Defs:       map[*ast.Ident]types.Object{},
		Uses:       map[*ast.Ident]types.Object{},
		Types:      map[ast.Expr]types.TypeAndValue{},
	}
	conf := types.Config{Importer: imp, Error: func(error) {}, FakeImportC: true}
	_, _ = conf.Check(files[0].Name.Name, fset, files, info)
	return info
}

type noImporter struct{}

func (noImporter) Import(p string) (*types.Package, error) {
	return nil, fmt.Errorf("%s: imports are not resolved", p)
}

// checkNewerGo flags what Yaegi v0.16.1 lacks or mishandles from newer Go: the min and max
// builtins (undefined) and errors.As (panics when the target is an error type declared in
// interpreted code; use a type assertion).
func (c *checker) checkNewerGo(call *ast.CallExpr) {
	switch fun := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		if fun.Name != "min" && fun.Name != "max" {
			return
		}
		if c.info != nil {
			if _, ok := c.info.Uses[fun].(*types.Builtin); !ok {
				return
			}
		} else if fun.Obj != nil {
			return
		}
		c.report(call.Pos(), "builtin-minmax", "the "+fun.Name+" builtin is undefined under Yaegi v0.16.1")
	case *ast.SelectorExpr:
		if pkg, ok := fun.X.(*ast.Ident); ok && pkg.Name == "errors" && c.imports["errors"] && fun.Sel.Name == "As" {
			c.report(call.Pos(), "errors-as", "errors.As panics under Yaegi v0.16.1 for error types declared in interpreted code; use a type assertion")
		}
	}
}

// checkRangeInt flags `for i := range n` over an integer, which makes Yaegi v0.16.1 panic at
// import. It needs types.
func (c *checker) checkRangeInt(r *ast.RangeStmt) {
	if c.info == nil {
		return
	}
	t := c.info.TypeOf(r.X)
	if t == nil {
		return
	}
	if b, ok := t.Underlying().(*types.Basic); ok && b.Info()&types.IsInteger != 0 {
		c.report(r.Pos(), "range-int", "range over an integer panics under Yaegi v0.16.1; use a three-clause loop")
	}
}

// checkRangeChanSlice flags ranging with a value over a slice or array of channels
// (`for _, ch := range chans`), which panics under Yaegi v0.16.1 ("reflect: call of
// reflect.Value.Len on int Value"); an index loop works. It needs types.
func (c *checker) checkRangeChanSlice(r *ast.RangeStmt) {
	if c.info == nil || r.Value == nil {
		return
	}
	t := c.info.TypeOf(r.X)
	if t == nil {
		return
	}
	var elem types.Type
	switch u := t.Underlying().(type) {
	case *types.Slice:
		elem = u.Elem()
	case *types.Array:
		elem = u.Elem()
	default:
		return
	}
	if _, ok := elem.Underlying().(*types.Chan); ok {
		c.report(r.Pos(), "range-chan-slice", "ranging with a value over a slice of channels panics under Yaegi v0.16.1; use an index loop")
	}
}
