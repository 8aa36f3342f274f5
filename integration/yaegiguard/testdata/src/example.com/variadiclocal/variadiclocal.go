// Package variadiclocal calls, with two variadic arguments, a variable that took its type from
// a struct field of variadic function type (logf := l.logf): Yaegi v0.16.1 panics (index out of
// range) compiling it, as for a call of the field itself (package variadicfield).
package variadiclocal

import "fmt"

type logger struct{ logf func(string, ...any) }

// Log returns what the variable logged: "1 2".
func Log() string {
	var out string
	l := logger{logf: func(format string, args ...any) { out = fmt.Sprintf(format, args...) }}
	logf := l.logf
	logf("%d %v", 1, 2)
	return out
}
