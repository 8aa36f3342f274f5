// Package yaegiguard finds, in plugin sources, the constructs that Yaegi v0.16.1 (the
// interpreter embedded in Traefik v3.6.12) runs wrongly or cannot run, so that code which
// passes its compiled tests cannot break inside Traefik.
//
// The rules it enforces — tuple-assign, multi-case, variadic-field, select, errors-as,
// builtin-minmax, range-int, range-chan-slice, loop-alias, unnamed-param — are explained,
// with what to write instead, in docs/yaegi.md, the one list of rules for plugin code; a rule
// added here must be added there (integration/docscheck checks that every rule reported here
// is documented).
//
// The rules are mostly syntactic and err on the side of caution; testdata/src/example.com/cases
// holds, for each rule, forms that Yaegi gets wrong (flagged), forms it gets right (not
// flagged), and forms flagged although Yaegi gets them right today. The rules variadic-field,
// range-int, range-chan-slice and loop-alias use types: CheckFiles type-checks each package,
// resolving the module's own imports.
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
	RuleLoopAlias     = "loop-alias"
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
		c := checker{fset: fset, imports: importNames(file), info: info, fieldTyped: fieldTyped, loops: map[ast.Node]bool{}}
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
	loops      map[ast.Node]bool // loops already checked by loop-alias, as part of an enclosing loop
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
		c.checkLoopAlias(n, n.Body)
	case *ast.ForStmt:
		c.checkLoopAlias(n, n.Post, n.Body)
	case *ast.FuncDecl:
		c.checkUnnamedParams(n.Type, n.Body)
	case *ast.FuncLit:
		c.checkUnnamedParams(n.Type, n.Body)
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

// checkUnnamedParams reports a function (declared or literal) with a parameter that has no
// name, not even _, and a body that is not empty: under Yaegi v0.16.1 the values such a
// function computes can land in the slots of its parameters and results (reflect.Set panics:
// "value of type *http.Request is not assignable to type error"; cases.BadUnnamedParam).
func (c *checker) checkUnnamedParams(ft *ast.FuncType, body *ast.BlockStmt) {
	if ft.Params == nil || body == nil || len(body.List) == 0 {
		return
	}
	for _, f := range ft.Params.List {
		if len(f.Names) == 0 {
			c.report(f.Pos(), "unnamed-param", "a parameter without a name makes Yaegi v0.16.1 write the function's values into the wrong slots (a panic in reflect.Set); name it, or write _ for one the function does not use")
			return
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

// checkLoopAlias flags, inside the body of a loop (and the post statement of a three-clause
// loop), what Yaegi v0.16.1 hands over by reference to the loop's frame, which every iteration
// reuses: a value of a type declared in interpreted code converted to an interface type
// (assigned, declared, appended, put in a composite literal, sent, passed as an argument), and
// a function literal handed to compiled code (converted to, or passed where compiled code
// expects, a function type it declares). The interface value reads its receiver from the
// frame slot of the converted expression each time a method is called (interp/run.go,
// genInterfaceWrapper and genFunctionWrapper; value.go, genValueRecv); the function reads the
// variables it captures from the frame when it runs. After the next iteration both see that
// iteration's values: `h = &step{next: h}` in a loop builds a step whose next is itself (a
// request never returns), and handlers or errors collected in a loop are all the last one.
// The same code in a function called once per iteration gets a frame of its own and works.
//
// It needs types. Types of the module are resolved (CheckFiles) and those of the standard
// library are not, so a resolved named type is an interpreted one, and an unresolved
// destination of an interpreted value is taken to be an interface (it cannot be anything else
// in code that compiles); function literals and their loops are checked on their own.
func (c *checker) checkLoopAlias(loop ast.Node, parts ...ast.Node) {
	if c.info == nil || c.loops[loop] {
		return
	}
	for _, part := range parts {
		if part == nil {
			continue
		}
		ast.Inspect(part, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncLit:
				return false // its own frame, its loops visited on their own
			case *ast.ForStmt, *ast.RangeStmt:
				c.loops[n] = true // same frame: checked here
			case *ast.AssignStmt:
				if n.Tok == token.ASSIGN && len(n.Lhs) == len(n.Rhs) {
					for i, lhs := range n.Lhs {
						if id, ok := lhs.(*ast.Ident); ok && id.Name == "_" {
							continue
						}
						c.loopConversion(n.Rhs[i], c.info.TypeOf(lhs), "assigned")
					}
				}
			case *ast.ValueSpec:
				if n.Type != nil {
					for _, v := range n.Values {
						c.loopConversion(v, c.info.TypeOf(n.Type), "declared")
					}
				}
			case *ast.SendStmt:
				if ch, ok := typeUnder(c.info.TypeOf(n.Chan)).(*types.Chan); ok {
					c.loopConversion(n.Value, ch.Elem(), "sent")
				} else {
					c.loopConversion(n.Value, nil, "sent")
				}
			case *ast.CompositeLit:
				c.loopCompositeLit(n)
			case *ast.CallExpr:
				c.loopCall(n)
			}
			return true
		})
	}
}

func typeUnder(t types.Type) types.Type {
	if t == nil {
		return nil
	}
	return t.Underlying()
}

// loopCompositeLit checks the fields and elements of a composite literal inside a loop.
func (c *checker) loopCompositeLit(lit *ast.CompositeLit) {
	switch u := typeUnder(c.info.TypeOf(lit)).(type) {
	case *types.Struct:
		for i, e := range lit.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok {
				key, ok := kv.Key.(*ast.Ident)
				if !ok {
					continue
				}
				for j := 0; j < u.NumFields(); j++ {
					if u.Field(j).Name() == key.Name {
						c.loopConversion(kv.Value, u.Field(j).Type(), "put in a composite literal")
					}
				}
			} else if i < u.NumFields() {
				c.loopConversion(e, u.Field(i).Type(), "put in a composite literal")
			}
		}
	case *types.Slice:
		c.loopElements(lit.Elts, u.Elem())
	case *types.Array:
		c.loopElements(lit.Elts, u.Elem())
	case *types.Map:
		c.loopElements(lit.Elts, u.Elem())
	}
}

func (c *checker) loopElements(elts []ast.Expr, elem types.Type) {
	for _, e := range elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			e = kv.Value
		}
		c.loopConversion(e, elem, "put in a composite literal")
	}
}

// loopCall checks the arguments of a call inside a loop: append's, a conversion's, and those
// of a function or method, whose parameters are unknown when it is compiled code.
func (c *checker) loopCall(call *ast.CallExpr) {
	fun := ast.Unparen(call.Fun)
	if tv, ok := c.info.Types[fun]; ok && tv.IsType() {
		if len(call.Args) == 1 {
			c.loopConversion(call.Args[0], tv.Type, "converted")
		}
		return
	}
	if id, ok := fun.(*ast.Ident); ok {
		if b, ok := c.info.Uses[id].(*types.Builtin); ok {
			if b.Name() == "append" && len(call.Args) > 1 && !call.Ellipsis.IsValid() {
				var elem types.Type
				if s, ok := typeUnder(c.info.TypeOf(call.Args[0])).(*types.Slice); ok {
					elem = s.Elem()
				}
				for _, a := range call.Args[1:] {
					c.loopConversion(a, elem, "appended")
				}
			}
			return
		}
	}

	sig, _ := typeUnder(c.info.TypeOf(fun)).(*types.Signature)
	for i, a := range call.Args {
		var param types.Type
		if sig != nil {
			switch n := sig.Params().Len(); {
			case sig.Variadic() && i >= n-1:
				if call.Ellipsis.IsValid() {
					continue
				}
				if s, ok := sig.Params().At(n - 1).Type().(*types.Slice); ok {
					param = s.Elem()
				}
			case i < n:
				param = sig.Params().At(i).Type()
			}
		}
		c.loopConversion(a, param, "passed")
	}
}

// loopConversion flags e, evaluated inside a loop, when it is a value of an interpreted type
// going to an interface type, or a function literal going to compiled code; dst is the type
// it goes to, nil or invalid when unknown (compiled code).
func (c *checker) loopConversion(e ast.Expr, dst types.Type, how string) {
	e = ast.Unparen(e)
	unknown := dst == nil || dst == types.Typ[types.Invalid]

	if _, ok := e.(*ast.FuncLit); ok {
		if unknown {
			c.report(e.Pos(), RuleLoopAlias, fmt.Sprintf(
				"function literal %s to compiled code inside a loop: Yaegi v0.16.1 makes it read the "+
					"variables it captures from the loop's frame when it runs, so after the next iteration "+
					"it sees that iteration's values (copying them, v := v, does not help); create it in a "+
					"function called once per iteration", how))
		}
		return
	}

	name, ok := interpretedWithMethods(c.info.TypeOf(e))
	if !ok || (!unknown && !types.IsInterface(dst)) {
		return
	}
	if !unknown {
		// A variable going to an empty interface keeps its value (Yaegi wraps a value for any
		// only when it comes from a composite literal, a call...).
		if i, ok := dst.Underlying().(*types.Interface); ok && i.Empty() {
			if _, ident := e.(*ast.Ident); ident {
				return
			}
		}
	}
	to := "an interface"
	if !unknown {
		to = types.TypeString(dst, func(p *types.Package) string { return p.Name() })
	}
	c.report(e.Pos(), RuleLoopAlias, fmt.Sprintf(
		"%s %s as %s inside a loop: Yaegi v0.16.1 makes the interface value read it from the loop's "+
			"frame, so after the next iteration it is that iteration's value (a chain built with "+
			"h = &step{next: h} calls itself forever; values collected in a loop are all the last); "+
			"convert in a function returning the interface type, called once per iteration "+
			"(h = wrap(h), func wrap(next http.Handler) http.Handler { return &step{next: next} })",
		name, how, to))
}

// interpretedWithMethods reports whether t is a named non-interface type resolved by the type
// checker (so declared in interpreted code), or a pointer to one, with methods (or an embedded
// field of an unresolved type, which may bring some), and returns its name. Yaegi hands over
// values without methods as they are.
func interpretedWithMethods(t types.Type) (string, bool) {
	if t == nil {
		return "", false
	}
	base := t
	if p, ok := t.(*types.Pointer); ok {
		base = p.Elem()
	}
	n, ok := types.Unalias(base).(*types.Named)
	if !ok || n.Obj().Pkg() == nil || types.IsInterface(n) {
		return "", false
	}
	methods := types.NewMethodSet(types.NewPointer(n)).Len() > 0
	if s, ok := n.Underlying().(*types.Struct); ok && !methods {
		for i := 0; i < s.NumFields(); i++ {
			if f := s.Field(i); f.Embedded() && f.Type() == types.Typ[types.Invalid] {
				methods = true
			}
		}
	}
	if !methods {
		return "", false
	}
	return types.TypeString(t, func(p *types.Package) string { return p.Name() }), true
}
