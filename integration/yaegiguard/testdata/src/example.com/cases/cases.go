// Package cases holds tiny functions, each returning what it computed, that show how Yaegi
// v0.16.1 runs multi-value assignments, multi-expression switch cases and values handed over
// as interfaces inside loops. It is compiled into the tests and also evaluated by Yaegi, from
// this same source:
//   - Bad*: Yaegi v0.16.1 gets a wrong result; the guard must flag them.
//   - Safe*: Yaegi gets them right; the guard must not flag them.
//   - Strict*: Yaegi gets them right today, but the guard flags them anyway, because its rules
//     are syntactic and err on the side of caution.
package cases

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
)

type pair struct{ s string }

type twoInts struct{ a, b int }

func f() string { return "y" }

func g() string { return "z" }

func lo() int { return 1 }

func hi() int { return 2 }

func two() (string, int) { return "y", 3 }

// ---- tuple assignment with "=" and a call on the right ----

func BadAssignLiteralThenCall() string {
	var a, b string
	a, b = "x", f()
	return a + "|" + b
}

func BadAssignLen() string {
	var k, l int
	s := "abc"
	k, l = 7, len(s)
	return strconv.Itoa(k) + "|" + strconv.Itoa(l)
}

func BadAssignCallThenLiteral() string {
	var a, b string
	a, b = f(), "x"
	return a + "|" + b
}

func BadAssignStdlibCall() string {
	var a, b string
	a, b = "x", strconv.Itoa(5)
	return a + "|" + b
}

func BadAssignBlank() string {
	var a string
	a, _ = "x", f()
	return a
}

func BadAssignFields() string {
	var p struct{ a, b string }
	p.a, p.b = "x", f()
	return p.a + "|" + p.b
}

// ---- tuple assignment or definition with a receive or a composite literal on the right ----

func BadAssignReceive() string {
	ch := make(chan string, 1)
	ch <- "y"
	var a, b string
	a, b = "x", <-ch
	return a + "|" + b
}

func BadDefineReceive() string {
	ch := make(chan string, 1)
	ch <- "y"
	a, b := "x", <-ch
	return a + "|" + b
}

func BadAssignComposite() string {
	var a string
	var b pair
	a, b = "x", pair{"y"}
	return a + "|" + b.s
}

func BadDefineComposite() string {
	a, b := "x", pair{"y"}
	return a + "|" + b.s
}

func BadDefineCallAndComposite() string {
	a, b := f(), pair{"y"}
	return a + "|" + b.s
}

func BadDefineSliceLiteral() string {
	a, b := "x", []string{"y"}
	return a + "|" + b[0]
}

func BadVarComposite() string {
	var a, b = "x", pair{"y"}
	return a + "|" + b.s
}

// ---- switch cases with several expressions ----

func BadTaglessCase() string {
	c := '-'
	switch {
	case c >= 'a' && c <= 'z', c == '-':
		return "match"
	}
	return "nomatch"
}

func BadTaglessBoolIdents() string {
	a, b := false, true
	switch {
	case a, b:
		return "match"
	}
	return "nomatch"
}

func BadTaglessThree() string {
	x := 3
	switch {
	case x == 1, x == 2, x == 3:
		return "match"
	}
	return "nomatch"
}

func BadSwitchTrue() string {
	x := 2
	switch true {
	case x == 1, x == 2:
		return "match"
	}
	return "nomatch"
}

func BadTaggedCalls() string {
	x := 2
	switch x {
	case lo(), hi():
		return "match"
	}
	return "nomatch"
}

func BadTaggedFields() string {
	t := twoInts{1, 2}
	x := 2
	switch x {
	case t.a, t.b:
		return "match"
	}
	return "nomatch"
}

func BadTaggedIndex() string {
	s := []int{1, 2}
	x := 2
	switch x {
	case s[0], s[1]:
		return "match"
	}
	return "nomatch"
}

func BadTaggedBinary() string {
	x, y, z := 2, 1, 2
	switch x {
	case y + 0, z + 0:
		return "match"
	}
	return "nomatch"
}

// ---- forms that Yaegi gets right ----

func SafeOneAssignmentPerLine() string {
	var a, b string
	a = "x"
	b = f()
	return a + "|" + b
}

func SafeDefineCall() string {
	a, b := "x", f()
	return a + "|" + b
}

func SafeVarCall() string {
	var a, b = "x", f()
	return a + "|" + b
}

func SafeMultiValueCall() string {
	var a string
	var b int
	a, b = two()
	return a + "|" + strconv.Itoa(b)
}

func SafeMultiValueStdlib() string {
	n, err := strconv.Atoi("1")
	n, err = strconv.Atoi("42")
	if err != nil {
		return err.Error()
	}
	return strconv.Itoa(n)
}

func SafeSwap() string {
	a, b := "1", "2"
	a, b = b, a
	return a + "|" + b
}

func SafeAssignLiterals() string {
	var a, b string
	a, b = "x", "y"
	return a + "|" + b
}

func SafeCommaOk() string {
	m := map[string]int{"k": 5}
	var v int
	var ok bool
	v, ok = m["k"]
	return strconv.Itoa(v) + "|" + strconv.FormatBool(ok)
}

func SafeOrInOneCase() string {
	c := '-'
	switch {
	case (c >= 'a' && c <= 'z') || c == '-':
		return "match"
	}
	return "nomatch"
}

func SafeOneConditionPerCase() string {
	c := '-'
	switch {
	case c >= 'a' && c <= 'z':
		return "letter"
	case c == '-':
		return "match"
	}
	return "nomatch"
}

func SafeTaggedLiterals() string {
	c := '-'
	switch c {
	case 'a', '-':
		return "match"
	}
	return "nomatch"
}

func SafeTaggedNegativeLiterals() string {
	x := -2
	switch x {
	case -1, -2:
		return "match"
	}
	return "nomatch"
}

func SafeTaggedPackageConstants() string {
	m := "HEAD"
	switch m {
	case http.MethodGet, http.MethodHead:
		return "match"
	}
	return "nomatch"
}

func SafeTaggedIdents() string {
	x, y, z := 2, 1, 2
	switch x {
	case y, z:
		return "match"
	}
	return "nomatch"
}

func SafeTypeSwitch() string {
	var v any = 2
	switch v.(type) {
	case string, int:
		return "match"
	}
	return "nomatch"
}

func returnsTwo() (string, string) { return "x", f() }

func SafeReturnTuple() string {
	a, b := returnsTwo()
	return a + "|" + b
}

// ---- calls of variadic function fields (the failing form is in package variadicfield) ----

type logger struct{ logf func(string, ...any) }

func (l logger) printf(format string, args ...any) { l.logf(format, args...) }

func newLogger(out *string) logger {
	return logger{logf: func(format string, args ...any) { *out = fmt.Sprintf(format, args...) }}
}

func SafeFieldVariadicOneArg() string {
	var out string
	l := newLogger(&out)
	l.logf("%d", 1)
	return out
}

func SafeFieldVariadicSpread() string {
	var out string
	l := newLogger(&out)
	l.logf("%d %v", []any{1, 2}...)
	return out
}

func SafeMethodVariadic() string {
	var out string
	l := newLogger(&out)
	l.printf("%d %v", 1, 2)
	return out
}

func SafeLocalVariadicTyped() string {
	var out string
	var logf func(string, ...any) = newLogger(&out).logf
	logf("%d %v", 1, 2)
	return out
}

// ---- flagged, although Yaegi v0.16.1 gets them right ----

func StrictAssignTwoCalls() string {
	var a, b string
	a, b = f(), g()
	return a + "|" + b
}

func StrictAssignConversion() string {
	var a, b string
	a, b = "x", string([]byte("y"))
	return a + "|" + b
}

func StrictAssignNestedCall() string {
	var a, b string
	a, b = "x", "w"+f()
	return a + "|" + b
}

func StrictDefineTwoComposites() string {
	a, b := pair{"x"}, pair{"y"}
	return a.s + "|" + b.s
}

func StrictTaggedConstantExpr() string {
	const k = 1
	x := 2
	switch x {
	case k, k + 1:
		return "match"
	}
	return "nomatch"
}

// ---- values handed over as interfaces inside a loop (loop-alias) ----

// maxHops stops a chain that calls itself: a cycle serves maxHops+1 hops.
const maxHops = 9

var hops int

// hop is a middleware step: it counts itself and calls next.
type hop struct{ next http.Handler }

func (s *hop) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	hops++
	if hops > maxHops {
		return
	}
	s.next.ServeHTTP(rw, req)
}

// valueHop is hop with a value receiver.
type valueHop struct{ next http.Handler }

func (s valueHop) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	hops++
	if hops > maxHops {
		return
	}
	s.next.ServeHTTP(rw, req)
}

type endpoint struct{}

func (endpoint) ServeHTTP(http.ResponseWriter, *http.Request) {}

// serveHops serves one request through h and returns how many hops it took.
func serveHops(h http.Handler) string {
	hops = 0
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	return strconv.Itoa(hops)
}

// named writes its name in the X-Name header.
type named struct{ name string }

func (n *named) ServeHTTP(rw http.ResponseWriter, _ *http.Request) { rw.Header().Set("X-Name", n.name) }

// Name is a method that makes *named more than plain data for Yaegi.
func (n *named) Name() string { return n.name }

// serveNames serves one request through each handler and joins the names they wrote.
func serveNames(hs []http.Handler) string {
	out := ""
	for i := 0; i < len(hs); i++ {
		rec := httptest.NewRecorder()
		hs[i].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		out += rec.Header().Get("X-Name")
	}
	return out
}

type caseError struct{ msg string }

func (e *caseError) Error() string { return e.msg }

// chainLink is an interface declared in interpreted code.
type chainLink interface{ count() int }

type ptrLink struct{ next chainLink }

func (l *ptrLink) count() int {
	hops++
	if hops > maxHops || l.next == nil {
		return hops
	}
	return l.next.count()
}

type valueLink struct{ next chainLink }

func (l valueLink) count() int {
	hops++
	if hops > maxHops || l.next == nil {
		return hops
	}
	return l.next.count()
}

type lastLink struct{}

func (lastLink) count() int { return hops }

// node is a concrete pointer chain, without interface.
type node struct{ next *node }

// plain has no methods.
type plain struct{ name string }

func wrapHop(next http.Handler) http.Handler { return &hop{next: next} }

func newHop(next http.Handler) *hop { return &hop{next: next} }

func countingFunc(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		hops++
		if hops > maxHops {
			return
		}
		next.ServeHTTP(rw, req)
	})
}

func newCaseError(i int) error { return &caseError{msg: strconv.Itoa(i)} }

func BadLoopSelfWrap() string {
	var next http.Handler = endpoint{}
	h := next
	for i := 0; i < 3; i++ {
		h = &hop{next: h}
	}
	return serveHops(h)
}

func BadRangeSelfWrap() string {
	var h http.Handler = endpoint{}
	for range []string{"a", "b", "c"} {
		h = &hop{next: h}
	}
	return serveHops(h)
}

func BadLoopSelfWrapValue() string {
	var h http.Handler = endpoint{}
	for i := 0; i < 3; i++ {
		h = valueHop{next: h}
	}
	return serveHops(h)
}

func BadLoopSelfWrapInterpretedInterface() string {
	var l chainLink = lastLink{}
	for i := 0; i < 3; i++ {
		l = &ptrLink{next: l}
	}
	hops = 0
	return strconv.Itoa(l.count())
}

func BadLoopWrapConcreteConstructor() string {
	var h http.Handler = endpoint{}
	for i := 0; i < 3; i++ {
		h = newHop(h)
	}
	return serveHops(h)
}

func BadLoopWrapTempVar() string {
	var h http.Handler = endpoint{}
	for i := 0; i < 3; i++ {
		s := &hop{next: h}
		h = s
	}
	return serveHops(h)
}

func BadLoopLinkCollected() string {
	var steps []*hop
	for i := 0; i < 3; i++ {
		steps = append(steps, &hop{})
	}
	var h http.Handler = endpoint{}
	for i := len(steps) - 1; i >= 0; i-- {
		steps[i].next = h
		h = steps[i]
	}
	return serveHops(h)
}

func BadLoopHandlerFunc() string {
	var h http.Handler = endpoint{}
	for i := 0; i < 3; i++ {
		next := h
		h = http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			hops++
			if hops > maxHops {
				return
			}
			next.ServeHTTP(rw, req)
		})
	}
	return serveHops(h)
}

func BadLoopCollectHandlers() string {
	var hs []http.Handler
	for i := 0; i < 3; i++ {
		hs = append(hs, &named{name: strconv.Itoa(i)})
	}
	return serveNames(hs)
}

func BadLoopCollectHandlerVars() string {
	hs := make([]http.Handler, 3)
	for i := 0; i < 3; i++ {
		n := &named{name: strconv.Itoa(i)}
		hs[i] = n
	}
	return serveNames(hs)
}

func BadLoopCollectErrors() string {
	var errs []error
	for i := 0; i < 3; i++ {
		errs = append(errs, &caseError{msg: strconv.Itoa(i)})
	}
	out := ""
	for i := 0; i < len(errs); i++ {
		out += errs[i].Error()
	}
	return out
}

func BadLoopCollectAny() string {
	var all []any
	for i := 0; i < 3; i++ {
		all = append(all, &named{name: strconv.Itoa(i)})
	}
	out := ""
	for i := 0; i < len(all); i++ {
		out += all[i].(*named).Name()
	}
	return out
}

func BadLoopHandlerFuncCopy() string {
	var hs []http.Handler
	for i := 0; i < 3; i++ {
		name := strconv.Itoa(i)
		hs = append(hs, http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Header().Set("X-Name", name) }))
	}
	return serveNames(hs)
}

func SafeLoopWrapFunc() string {
	var h http.Handler = endpoint{}
	for i := 0; i < 3; i++ {
		h = wrapHop(h)
	}
	return serveHops(h)
}

func SafeUnrolledWrap() string {
	var h http.Handler = endpoint{}
	h = &hop{next: h}
	h = &hop{next: h}
	h = &hop{next: h}
	return serveHops(h)
}

func SafeClosureWrapInLoop() string {
	var h http.Handler = endpoint{}
	add := func() { h = &hop{next: h} }
	for i := 0; i < 3; i++ {
		add()
	}
	return serveHops(h)
}

// SafeStepClosure builds the chain as gateway.go's New does: a closure that calls a
// constructor with h and stores the result in h.
func SafeStepClosure() string {
	var h http.Handler = endpoint{}
	step := func(build func(next http.Handler) (http.Handler, error)) {
		m, err := build(h)
		if err != nil {
			return
		}
		h = m
	}
	build := func(next http.Handler) (http.Handler, error) { return &hop{next: next}, nil }
	step(build)
	step(build)
	step(build)
	return serveHops(h)
}

func SafeStepClosureInLoop() string {
	var h http.Handler = endpoint{}
	step := func(build func(next http.Handler) (http.Handler, error)) {
		m, err := build(h)
		if err != nil {
			return
		}
		h = m
	}
	for i := 0; i < 3; i++ {
		step(func(next http.Handler) (http.Handler, error) { return &hop{next: next}, nil })
	}
	return serveHops(h)
}

func SafeLoopHandlerFuncFromFunc() string {
	var h http.Handler = endpoint{}
	for i := 0; i < 3; i++ {
		h = countingFunc(h)
	}
	return serveHops(h)
}

func SafeLoopConcretePointers() string {
	var n *node
	for i := 0; i < 3; i++ {
		n = &node{next: n}
	}
	c := 0
	for ; n != nil && c <= maxHops; n = n.next {
		c++
	}
	return strconv.Itoa(c)
}

func SafeLoopErrorsFromFunc() string {
	var errs []error
	for i := 0; i < 3; i++ {
		errs = append(errs, newCaseError(i))
	}
	out := ""
	for i := 0; i < len(errs); i++ {
		out += errs[i].Error()
	}
	return out
}

func SafeLoopVariableToAny() string {
	var all []any
	for i := 0; i < 3; i++ {
		n := &named{name: strconv.Itoa(i)}
		all = append(all, n)
	}
	out := ""
	for i := 0; i < len(all); i++ {
		out += all[i].(*named).Name()
	}
	return out
}

func SafeLoopNoMethodsToAny() string {
	all := make([]any, 3)
	for i := 0; i < 3; i++ {
		all[i] = &plain{name: strconv.Itoa(i)}
	}
	out := ""
	for i := 0; i < len(all); i++ {
		out += all[i].(*plain).name
	}
	return out
}

func StrictLoopUsedInIteration() string {
	out := ""
	for i := 0; i < 3; i++ {
		var h http.Handler = &named{name: strconv.Itoa(i)}
		out += serveNames([]http.Handler{h})
	}
	return out
}

func StrictLoopValueToInterpretedInterface() string {
	var l chainLink = lastLink{}
	for i := 0; i < 3; i++ {
		l = valueLink{next: l}
	}
	hops = 0
	return strconv.Itoa(l.count())
}

func StrictLoopFuncToCompiledNow() string {
	out := ""
	for i := 0; i < 3; i++ {
		s := []int{3, i, 2}
		sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
		out += strconv.Itoa(s[0])
	}
	return out
}

// ---- a function with an unnamed parameter ----

// BadUnnamedParam: the literal's parameter has no name; under Yaegi the value of its compiled
// call lands in the wrong slot (reflect.Set panics).
func BadUnnamedParam() (out string) {
	defer func() {
		if recover() != nil {
			out = "panic"
		}
	}()
	run := func(b func(int) string) string { return b(1) }
	return run(func(int) string { return strconv.Itoa(7) })
}

// SafeBlankParam: the same literal with its parameter written _.
func SafeBlankParam() (out string) {
	defer func() {
		if recover() != nil {
			out = "panic"
		}
	}()
	run := func(b func(int) string) string { return b(1) }
	return run(func(_ int) string { return strconv.Itoa(7) })
}

// Funcs lists every function above by name.
var Funcs = map[string]func() string{
	"BadAssignLiteralThenCall":  BadAssignLiteralThenCall,
	"BadAssignLen":              BadAssignLen,
	"BadAssignCallThenLiteral":  BadAssignCallThenLiteral,
	"BadAssignStdlibCall":       BadAssignStdlibCall,
	"BadAssignBlank":            BadAssignBlank,
	"BadAssignFields":           BadAssignFields,
	"BadAssignReceive":          BadAssignReceive,
	"BadDefineReceive":          BadDefineReceive,
	"BadAssignComposite":        BadAssignComposite,
	"BadDefineComposite":        BadDefineComposite,
	"BadDefineCallAndComposite": BadDefineCallAndComposite,
	"BadDefineSliceLiteral":     BadDefineSliceLiteral,
	"BadVarComposite":           BadVarComposite,
	"BadTaglessCase":            BadTaglessCase,
	"BadTaglessBoolIdents":      BadTaglessBoolIdents,
	"BadTaglessThree":           BadTaglessThree,
	"BadSwitchTrue":             BadSwitchTrue,
	"BadTaggedCalls":            BadTaggedCalls,
	"BadTaggedFields":           BadTaggedFields,
	"BadTaggedIndex":            BadTaggedIndex,
	"BadTaggedBinary":           BadTaggedBinary,

	"SafeOneAssignmentPerLine":   SafeOneAssignmentPerLine,
	"SafeDefineCall":             SafeDefineCall,
	"SafeVarCall":                SafeVarCall,
	"SafeMultiValueCall":         SafeMultiValueCall,
	"SafeMultiValueStdlib":       SafeMultiValueStdlib,
	"SafeSwap":                   SafeSwap,
	"SafeAssignLiterals":         SafeAssignLiterals,
	"SafeCommaOk":                SafeCommaOk,
	"SafeOrInOneCase":            SafeOrInOneCase,
	"SafeOneConditionPerCase":    SafeOneConditionPerCase,
	"SafeTaggedLiterals":         SafeTaggedLiterals,
	"SafeTaggedNegativeLiterals": SafeTaggedNegativeLiterals,
	"SafeTaggedPackageConstants": SafeTaggedPackageConstants,
	"SafeTaggedIdents":           SafeTaggedIdents,
	"SafeTypeSwitch":             SafeTypeSwitch,
	"SafeReturnTuple":            SafeReturnTuple,
	"SafeFieldVariadicOneArg":    SafeFieldVariadicOneArg,
	"SafeFieldVariadicSpread":    SafeFieldVariadicSpread,
	"SafeMethodVariadic":         SafeMethodVariadic,
	"SafeLocalVariadicTyped":     SafeLocalVariadicTyped,

	"StrictAssignTwoCalls":      StrictAssignTwoCalls,
	"StrictAssignConversion":    StrictAssignConversion,
	"StrictAssignNestedCall":    StrictAssignNestedCall,
	"StrictDefineTwoComposites": StrictDefineTwoComposites,
	"StrictTaggedConstantExpr":  StrictTaggedConstantExpr,

	"BadLoopSelfWrap":                       BadLoopSelfWrap,
	"BadRangeSelfWrap":                      BadRangeSelfWrap,
	"BadLoopSelfWrapValue":                  BadLoopSelfWrapValue,
	"BadLoopSelfWrapInterpretedInterface":   BadLoopSelfWrapInterpretedInterface,
	"BadLoopWrapConcreteConstructor":        BadLoopWrapConcreteConstructor,
	"BadLoopWrapTempVar":                    BadLoopWrapTempVar,
	"BadLoopLinkCollected":                  BadLoopLinkCollected,
	"BadLoopHandlerFunc":                    BadLoopHandlerFunc,
	"BadLoopCollectHandlers":                BadLoopCollectHandlers,
	"BadLoopCollectHandlerVars":             BadLoopCollectHandlerVars,
	"BadLoopCollectErrors":                  BadLoopCollectErrors,
	"BadLoopCollectAny":                     BadLoopCollectAny,
	"BadLoopHandlerFuncCopy":                BadLoopHandlerFuncCopy,
	"SafeLoopWrapFunc":                      SafeLoopWrapFunc,
	"SafeUnrolledWrap":                      SafeUnrolledWrap,
	"SafeClosureWrapInLoop":                 SafeClosureWrapInLoop,
	"SafeStepClosure":                       SafeStepClosure,
	"SafeStepClosureInLoop":                 SafeStepClosureInLoop,
	"SafeLoopHandlerFuncFromFunc":           SafeLoopHandlerFuncFromFunc,
	"SafeLoopConcretePointers":              SafeLoopConcretePointers,
	"SafeLoopErrorsFromFunc":                SafeLoopErrorsFromFunc,
	"SafeLoopVariableToAny":                 SafeLoopVariableToAny,
	"SafeLoopNoMethodsToAny":                SafeLoopNoMethodsToAny,
	"StrictLoopUsedInIteration":             StrictLoopUsedInIteration,
	"StrictLoopValueToInterpretedInterface": StrictLoopValueToInterpretedInterface,
	"StrictLoopFuncToCompiledNow":           StrictLoopFuncToCompiledNow,
	"BadUnnamedParam":                       BadUnnamedParam,
	"SafeBlankParam":                        SafeBlankParam,
}
