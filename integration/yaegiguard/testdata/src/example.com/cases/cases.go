// Package cases holds tiny functions, each returning what it computed, that show how Yaegi
// v0.16.1 runs multi-value assignments and multi-expression switch cases. It is compiled into
// the tests and also evaluated by Yaegi, from this same source:
//   - Bad*: Yaegi v0.16.1 gets a wrong result; the guard must flag them.
//   - Safe*: Yaegi gets them right; the guard must not flag them.
//   - Strict*: Yaegi gets them right today, but the guard flags them anyway, because its rules
//     are syntactic and err on the side of caution.
package cases

import (
	"fmt"
	"net/http"
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
}
