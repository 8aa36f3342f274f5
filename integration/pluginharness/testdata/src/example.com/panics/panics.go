// Package panics makes Yaegi v0.16.1 panic while importing it: it calls a struct field of
// variadic function type with two variadic arguments.
package panics

import "fmt"

type logger struct{ logf func(string, ...any) }

// Log returns what the field logged.
func Log() string {
	var out string
	l := logger{logf: func(format string, args ...any) { out = fmt.Sprintf(format, args...) }}
	l.logf("%d %v", 1, 2)
	return out
}
