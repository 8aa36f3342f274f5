// Package docscheck keeps the reference documents equal to the code: docs/configuration.md
// to the plugins' Config structs (every option documented, nothing documented that does not
// exist, every documented default equal to the plugin's), and docs/yaegi.md to the rules the
// Yaegi guard enforces (yaegi_test.go); and the documents' relative links resolve (links_test.go).
//
// The reference holds one table per plugin, announced by a marker line:
//
//	<!-- options: jwtauth -->
//	| option | default | meaning |
//	|---|---|---|
//	| `issuer` | — | the token's iss must equal it. Required |
//	| `redis.address` | `127.0.0.1:6379` | Redis host:port |
//	| `limits[].window` | — | ... |
//
// One row per option, its key in backquotes: a nested struct's options are written
// "parent.child", a list of structs' "list[].child". The default cell is "—" (no default:
// required, off, or empty) or one value in backquotes, written as Format writes it.
package docscheck

import (
	"bufio"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Option is one configuration option found in a Config struct.
type Option struct {
	// Key is the option as users write it: "redis.address", "limits[].window".
	Key string
	// Default is the value the plugin's CreateConfig gives it, formatted; "" for a zero value.
	Default string
	// Field is the Go path, for messages: "Redis.Address".
	Field string
}

// Options walks the struct that cfg points to (as CreateConfig returns it) and lists every
// option with its default. Fields of struct, pointer-to-struct and list-of-struct type are
// listed and walked into; maps and other lists are leaves.
func Options(cfg any) ([]Option, []string) {
	v := reflect.ValueOf(cfg)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var out []Option
	var problems []string
	walk("", "", v, &out, &problems)
	return out, problems
}

func walk(prefix, goPrefix string, v reflect.Value, out *[]Option, problems *[]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, problem := KeyOf(f)
		if problem != "" {
			*problems = append(*problems, goPrefix+f.Name+": "+problem)
		}
		opt := Option{Key: prefix + key, Field: goPrefix + f.Name, Default: Format(v.Field(i))}
		*out = append(*out, opt)
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct:
			walk(opt.Key+".", opt.Field+".", v.Field(i), out, problems)
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			elem := reflect.New(ft.Elem()).Elem()
			if !v.Field(i).IsNil() {
				elem = v.Field(i).Elem()
			}
			walk(opt.Key+".", opt.Field+".", elem, out, problems)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			walk(opt.Key+"[].", opt.Field+"[].", reflect.New(ft.Elem()).Elem(), out, problems)
		}
	}
}

// KeyOf returns the key users write for a field: its json tag, which must name the field
// (Traefik matches keys to field names case-insensitively and ignores tags), or, without a
// tag, the field name with its leading capitals lowered (DialTimeout → dialTimeout, TLS →
// tls, JWKSTimeout → jwksTimeout). problem says what is wrong with the tag, if anything.
func KeyOf(f reflect.StructField) (key, problem string) {
	tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if tag == "" || tag == "-" {
		return LowerCamel(f.Name), ""
	}
	if !strings.EqualFold(tag, f.Name) {
		return tag, fmt.Sprintf("json tag %q does not spell the field name; Traefik matches %q (case-insensitively), so users must write that", tag, f.Name)
	}
	return tag, ""
}

// LowerCamel lowers the leading capitals of a Go name: the whole name when it is all
// capitals, else all but the last capital of a leading run (JWKSTimeout → jwksTimeout).
func LowerCamel(name string) string {
	n := 0
	for n < len(name) && name[n] >= 'A' && name[n] <= 'Z' {
		n++
	}
	switch {
	case n == 0:
		return name
	case n == len(name):
		return strings.ToLower(name)
	case n > 1:
		n--
	}
	return strings.ToLower(name[:n]) + name[n:]
}

// Format writes a value as the reference does: strings bare, lists "[a, b]", maps
// "{k: v, …}" by sorted key; "" for a zero value (empty string, false, 0, empty list or map,
// a struct).
func Format(v reflect.Value) string {
	if !v.IsValid() || v.IsZero() {
		return ""
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Slice, reflect.Array:
		if v.Len() == 0 {
			return ""
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = Format(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		keys := v.MapKeys()
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprint(k.Interface())+": "+Format(v.MapIndex(k)))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	case reflect.Struct:
		return ""
	case reflect.Pointer, reflect.Interface:
		return Format(v.Elem())
	}
	return fmt.Sprint(v.Interface())
}

// Row is one documented option.
type Row struct {
	Key     string
	Default string // the value in backquotes; "" for "—"
	Line    int
}

// NoDefault is the default cell of an option without a default.
const NoDefault = "—"

// Parse reads the reference and returns its tables by marker name ("jwtauth"), with every
// malformed row as a problem.
func Parse(md string) (map[string][]Row, []string) {
	tables := map[string][]Row{}
	var problems []string
	current := ""
	inTable := false
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if name, ok := marker(text); ok {
			if _, dup := tables[name]; dup {
				problems = append(problems, fmt.Sprintf("line %d: second table for %q", line, name))
			}
			tables[name] = []Row{}
			current = name
			inTable = false
			continue
		}
		if current == "" {
			continue
		}
		if !strings.HasPrefix(text, "|") {
			if inTable || text != "" {
				current = "" // the table ended (or text came before it)
			}
			continue
		}
		inTable = true
		cells := splitRow(text)
		if len(cells) < 3 {
			problems = append(problems, fmt.Sprintf("line %d: a row needs option, default and meaning", line))
			continue
		}
		if cells[0] == "option" || strings.Trim(cells[0], "-: ") == "" {
			continue // header and separator
		}
		key, ok := quoted(cells[0])
		if !ok {
			problems = append(problems, fmt.Sprintf("line %d: option cell %q is not one key in backquotes", line, cells[0]))
			continue
		}
		def := ""
		if cells[1] != NoDefault {
			d, ok := quoted(cells[1])
			if !ok {
				problems = append(problems, fmt.Sprintf("line %d: %s: default cell %q is neither %s nor one value in backquotes", line, key, cells[1], NoDefault))
				continue
			}
			def = d
		}
		tables[current] = append(tables[current], Row{Key: key, Default: def, Line: line})
	}
	return tables, problems
}

func marker(text string) (string, bool) {
	rest, ok := strings.CutPrefix(text, "<!-- options:")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, "-->")
	return strings.TrimSpace(rest), ok
}

// splitRow splits a table row on the pipes outside backquotes.
func splitRow(text string) []string {
	text = strings.TrimPrefix(strings.TrimSuffix(text, "|"), "|")
	var cells []string
	var b strings.Builder
	code := false
	for _, r := range text {
		switch {
		case r == '`':
			code = !code
			b.WriteRune(r)
		case r == '|' && !code:
			cells = append(cells, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteRune(r)
		}
	}
	return append(cells, strings.TrimSpace(b.String()))
}

// quoted returns the content of a cell that is exactly one `…` span.
func quoted(cell string) (string, bool) {
	if len(cell) < 2 || cell[0] != '`' || cell[len(cell)-1] != '`' || strings.Count(cell, "`") != 2 {
		return "", false
	}
	return cell[1 : len(cell)-1], true
}

// Compare reports every difference between the options of a plugin and its documented rows.
// applied holds the defaults the plugin's New applies to an option left empty (CreateConfig
// leaves it zero), by key; a documented default must equal CreateConfig's value, or the
// applied one, and "—" (or the zero value spelled out) stands for a zero value.
func Compare(plugin string, opts []Option, rows []Row, applied map[string]string) []string {
	var problems []string
	documented := map[string]Row{}
	for _, r := range rows {
		if prev, dup := documented[r.Key]; dup {
			problems = append(problems, fmt.Sprintf("%s: `%s` is documented twice (lines %d and %d)", plugin, r.Key, prev.Line, r.Line))
		}
		documented[r.Key] = r
	}
	known := map[string]bool{}
	for _, o := range opts {
		known[o.Key] = true
		r, ok := documented[o.Key]
		if !ok {
			hint := ""
			for k := range documented {
				if strings.EqualFold(k, o.Key) {
					hint = fmt.Sprintf(" (documented as `%s`: spell it `%s`)", k, o.Key)
				}
			}
			problems = append(problems, fmt.Sprintf("%s: option `%s` (%s) is not documented%s", plugin, o.Key, o.Field, hint))
			continue
		}
		want := o.Default
		if a, ok := applied[o.Key]; ok && want == "" {
			want = a
		}
		if r.Default == want {
			continue
		}
		if want == "" && isZeroSpelling(r.Default) {
			continue
		}
		shown := "`" + want + "`"
		if want == "" {
			shown = NoDefault + " (no default)"
		}
		got := "`" + r.Default + "`"
		if r.Default == "" {
			got = NoDefault
		}
		problems = append(problems, fmt.Sprintf("%s: `%s` (line %d): documented default %s, but the plugin's is %s", plugin, o.Key, r.Line, got, shown))
	}
	for _, r := range rows {
		if !known[r.Key] {
			problems = append(problems, fmt.Sprintf("%s: `%s` (line %d) is documented but is no option of the plugin", plugin, r.Key, r.Line))
		}
	}
	for k := range applied {
		if !known[k] {
			problems = append(problems, fmt.Sprintf("%s: applied default for `%s`, which is no option", plugin, k))
		}
	}
	return problems
}

// isZeroSpelling reports whether a documented default spells a zero value out.
func isZeroSpelling(s string) bool {
	switch s {
	case "", `""`, "false", "0", "[]", "{}":
		return true
	}
	return false
}
