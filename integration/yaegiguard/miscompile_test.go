package yaegiguard_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pavilion-trust/gateway/integration/yaegiguard/testdata/src/example.com/cases"
	"github.com/pavilion-trust/gateway/integration/yaegiguard/testdata/src/example.com/variadicfield"
	"github.com/pavilion-trust/gateway/integration/yaegiguard/testdata/src/example.com/variadiclocal"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

var casesFile = filepath.Join("testdata", "src", "example.com", "cases", "cases.go")

// expectation is what one function of package cases returns: compiled (Go's semantics), and
// under Yaegi v0.16.1 when it differs.
type expectation struct {
	want  string // what Go computes
	yaegi string // what Yaegi v0.16.1 computes, for Bad* functions only
}

var expectations = map[string]expectation{
	// "=" with a call on the right: the other values are lost.
	"BadAssignLiteralThenCall": {want: "x|y", yaegi: "|y"},
	"SafeFieldVariadicOneArg":  {want: "1"},
	"SafeFieldVariadicSpread":  {want: "1 2"},
	"SafeMethodVariadic":       {want: "1 2"},
	"SafeLocalVariadicTyped":   {want: "1 2"},
	"BadAssignLen":             {want: "7|3", yaegi: "0|3"},
	"BadAssignCallThenLiteral": {want: "y|x", yaegi: "y|"},
	"BadAssignStdlibCall":      {want: "x|5", yaegi: "|5"},
	"BadAssignBlank":           {want: "x", yaegi: ""},
	"BadAssignFields":          {want: "x|y", yaegi: "|y"},
	// A receive or a composite literal on the right, with "=", ":=" or var.
	"BadAssignReceive":          {want: "x|y", yaegi: "|y"},
	"BadDefineReceive":          {want: "x|y", yaegi: "|y"},
	"BadAssignComposite":        {want: "x|y", yaegi: "|y"},
	"BadDefineComposite":        {want: "x|y", yaegi: "|y"},
	"BadDefineCallAndComposite": {want: "y|y", yaegi: "|y"},
	"BadDefineSliceLiteral":     {want: "x|y", yaegi: "|y"},
	"BadVarComposite":           {want: "x|y", yaegi: "|y"},
	// Several expressions in one case: only the first is evaluated.
	"BadTaglessCase":       {want: "match", yaegi: "nomatch"},
	"BadTaglessBoolIdents": {want: "match", yaegi: "nomatch"},
	"BadTaglessThree":      {want: "match", yaegi: "nomatch"},
	"BadSwitchTrue":        {want: "match", yaegi: "nomatch"},
	"BadTaggedCalls":       {want: "match", yaegi: "nomatch"},
	"BadTaggedFields":      {want: "match", yaegi: "nomatch"},
	"BadTaggedIndex":       {want: "match", yaegi: "nomatch"},
	"BadTaggedBinary":      {want: "match", yaegi: "nomatch"},

	"SafeOneAssignmentPerLine":   {want: "x|y"},
	"SafeDefineCall":             {want: "x|y"},
	"SafeVarCall":                {want: "x|y"},
	"SafeMultiValueCall":         {want: "y|3"},
	"SafeMultiValueStdlib":       {want: "42"},
	"SafeSwap":                   {want: "2|1"},
	"SafeAssignLiterals":         {want: "x|y"},
	"SafeCommaOk":                {want: "5|true"},
	"SafeOrInOneCase":            {want: "match"},
	"SafeOneConditionPerCase":    {want: "match"},
	"SafeTaggedLiterals":         {want: "match"},
	"SafeTaggedNegativeLiterals": {want: "match"},
	"SafeTaggedPackageConstants": {want: "match"},
	"SafeTaggedIdents":           {want: "match"},
	"SafeTypeSwitch":             {want: "match"},
	"SafeReturnTuple":            {want: "x|y"},

	"StrictAssignTwoCalls":      {want: "y|z"},
	"StrictAssignConversion":    {want: "x|y"},
	"StrictAssignNestedCall":    {want: "x|wy"},
	"StrictDefineTwoComposites": {want: "x|y"},
	"StrictTaggedConstantExpr":  {want: "match"},

	// A value of an interpreted type with methods handed over as an interface inside a loop
	// keeps reading the loop's frame: a chain h = &hop{next: h} calls itself (maxHops+1 = 10
	// hops instead of 3; without the cap, a stack overflow), values collected are all the last.
	"BadLoopSelfWrap":                       {want: "3", yaegi: "10"},
	"BadRangeSelfWrap":                      {want: "3", yaegi: "10"},
	"BadLoopSelfWrapValue":                  {want: "3", yaegi: "10"},
	"BadLoopSelfWrapInterpretedInterface":   {want: "3", yaegi: "10"},
	"BadLoopWrapConcreteConstructor":        {want: "3", yaegi: "10"},
	"BadLoopWrapTempVar":                    {want: "3", yaegi: "10"},
	"BadLoopLinkCollected":                  {want: "3", yaegi: "10"},
	"BadLoopHandlerFunc":                    {want: "3", yaegi: "10"},
	"BadLoopCollectHandlers":                {want: "012", yaegi: "222"},
	"BadLoopCollectHandlerVars":             {want: "012", yaegi: "222"},
	"BadLoopCollectErrors":                  {want: "012", yaegi: "222"},
	"BadLoopCollectAny":                     {want: "012", yaegi: "222"},
	"BadLoopHandlerFuncCopy":                {want: "012", yaegi: "222"},
	"SafeLoopWrapFunc":                      {want: "3"},
	"SafeUnrolledWrap":                      {want: "3"},
	"SafeClosureWrapInLoop":                 {want: "3"},
	"SafeStepClosure":                       {want: "3"},
	"SafeStepClosureInLoop":                 {want: "3"},
	"SafeLoopHandlerFuncFromFunc":           {want: "3"},
	"SafeLoopConcretePointers":              {want: "3"},
	"SafeLoopErrorsFromFunc":                {want: "012"},
	"SafeLoopVariableToAny":                 {want: "012"},
	"SafeLoopNoMethodsToAny":                {want: "012"},
	"StrictLoopUsedInIteration":             {want: "012"},
	"StrictLoopValueToInterpretedInterface": {want: "3"},
	"StrictLoopFuncToCompiledNow":           {want: "012"},
	// A parameter without a name: the function's values land in the wrong slots.
	"BadUnnamedParam": {want: "7", yaegi: "panic"},
	"SafeBlankParam":  {want: "7"},
}

// interpretedCases evaluates package cases from its source with a bare Yaegi interpreter and
// returns its Funcs.
func interpretedCases(t *testing.T) map[string]func() string {
	t.Helper()

	src, err := os.ReadFile(casesFile)
	if err != nil {
		t.Fatal(err)
	}

	i := interp.New(interp.Options{})
	if err := i.Use(stdlib.Symbols); err != nil {
		t.Fatal(err)
	}
	if _, err := i.Eval(string(src)); err != nil {
		t.Fatalf("evaluating %s: %v", casesFile, err)
	}
	v, err := i.Eval("cases.Funcs")
	if err != nil {
		t.Fatal(err)
	}
	funcs, ok := v.Interface().(map[string]func() string)
	if !ok {
		t.Fatalf("cases.Funcs is a %T", v.Interface())
	}
	return funcs
}

func TestExpectationsCoverAllCases(t *testing.T) {
	var missing, extra []string
	for name := range cases.Funcs {
		if _, ok := expectations[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range expectations {
		if _, ok := cases.Funcs[name]; !ok {
			extra = append(extra, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("functions without expectation: %v; expectations without function: %v", missing, extra)
	}
}

// TestYaegiMiscompiles runs the same source compiled and under Yaegi v0.16.1: the Bad*
// functions must still give their wrong result under Yaegi (else the bug is fixed and the
// guard may be relaxed), every other function the right one.
func TestYaegiMiscompiles(t *testing.T) {
	interpreted := interpretedCases(t)

	names := make([]string, 0, len(cases.Funcs))
	for name := range cases.Funcs {
		names = append(names, name)
	}
	sort.Strings(names)

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			e, ok := expectations[name]
			if !ok {
				t.Skip("no expectation (reported by TestExpectationsCoverAllCases)")
			}

			if got := cases.Funcs[name](); got != e.want {
				t.Fatalf("compiled: %s() = %q, want %q: the case itself is wrong", name, got, e.want)
			}

			fn, ok := interpreted[name]
			if !ok {
				t.Fatalf("%s missing from the interpreted cases.Funcs", name)
			}
			got := fn()

			if !strings.HasPrefix(name, "Bad") {
				if got != e.want {
					t.Errorf("yaegi: %s() = %q, want %q: this form is not safe under Yaegi, the guard must flag it", name, got, e.want)
				}
				return
			}

			switch got {
			case e.yaegi:
				// The known miscompilation of Yaegi v0.16.1.
			case e.want:
				t.Errorf("Yaegi fixed %s (now %q, as compiled); the guard in guard_test.go may be relaxed", name, got)
			default:
				t.Errorf("yaegi: %s() = %q, want the known wrong result %q (compiled: %q)", name, got, e.yaegi, e.want)
			}
		})
	}
}

// TestYaegiPanicsOnVariadicFieldCalls: importing a package that calls a variadic function field
// (or a variable that took its type from one) with several variadic arguments panics in Yaegi
// v0.16.1, out of Eval: no error is returned, the process dies unless it recovers.
func TestYaegiPanicsOnVariadicFieldCalls(t *testing.T) {
	tests := []struct {
		pkg      string
		compiled func() string
	}{
		{pkg: "variadicfield", compiled: variadicfield.Log},
		{pkg: "variadiclocal", compiled: variadiclocal.Log},
	}

	for _, test := range tests {
		t.Run(test.pkg, func(t *testing.T) {
			if got := test.compiled(); got != "1 2" {
				t.Fatalf("compiled: Log() = %q, want \"1 2\"", got)
			}

			i := interp.New(interp.Options{GoPath: "testdata"})
			if err := i.Use(stdlib.Symbols); err != nil {
				t.Fatal(err)
			}

			var panicked any
			var err error
			func() {
				defer func() { panicked = recover() }()
				_, err = i.Eval(`import "example.com/` + test.pkg + `"`)
			}()

			switch {
			case panicked != nil:
				if msg := fmt.Sprint(panicked); !strings.Contains(msg, "index out of range [2] with length 2") {
					t.Errorf("Yaegi panicked with %q, want the known index out of range", msg)
				}
			case err != nil:
				t.Errorf("Yaegi now returns an error instead of panicking (%v): Traefik survives it, but the plugin still fails; keep the guard", err)
			default:
				v, err := i.Eval(test.pkg + ".Log()")
				if err == nil && v.Interface() == "1 2" {
					t.Errorf("Yaegi fixed calls of variadic function fields; the guard in guard_test.go may be relaxed")
				} else {
					t.Errorf("yaegi: Log() = %v, %v", v, err)
				}
			}
		})
	}
}
