// Package confmap decodes a plugin configuration section, as Traefik hands it over (a map
// whose scalars are strings, lists []any, nested maps map[string]any), into a config struct
// that already holds its defaults. It follows the rules of the decoder Traefik uses for plugin
// configuration (mapstructure with weakly typed input and "a,b" splitting into string lists,
// keys matched to field names case-insensitively), with one deliberate difference: an unknown
// key is an error naming it, where Traefik would drop it silently.
//
// The suite plugin uses it for its sections, because Traefik's decoder cannot tell a section
// that was left out (step off) from one that was given (step on, with defaults).
package confmap

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Decode fills the struct that out (a reflect.Value of a pointer to it) points to from in.
// Fields not named in in keep their values (the defaults). Every problem is reported, each
// prefixed with its key path. It takes a reflect.Value, not an any: under Yaegi an interpreted
// value passed through an interface parameter reaches reflect wrapped, so the caller, which
// knows the concrete type, calls reflect.ValueOf itself.
func Decode(in map[string]any, v reflect.Value) error {
	if v.Kind() != reflect.Ptr || v.Elem().Kind() != reflect.Struct {
		return errors.New("confmap: out must point to a struct")
	}
	var errs []error
	decodeStruct("", in, v.Elem(), &errs)
	return errors.Join(errs...)
}

func decodeStruct(path string, in map[string]any, out reflect.Value, errs *[]error) {
	t := out.Type()
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).PkgPath == "" {
			fields[strings.ToLower(t.Field(i).Name)] = i
		}
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, ok := fields[strings.ToLower(k)]
		if !ok {
			*errs = append(*errs, fmt.Errorf("%s: unknown option", join(path, k)))
			continue
		}
		decodeValue(join(path, k), in[k], out.Field(i), errs)
	}
}

func decodeValue(path string, in any, out reflect.Value, errs *[]error) {
	if in == nil {
		return
	}
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	switch out.Kind() {
	case reflect.String:
		s, ok := scalar(in)
		if !ok {
			fail("expected a string, got %s", describe(in))
			return
		}
		out.SetString(s)
	case reflect.Bool:
		s, ok := scalar(in)
		b, err := strconv.ParseBool(s)
		if !ok || err != nil {
			fail("expected true or false, got %s", describe(in))
			return
		}
		out.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := scalar(in)
		n, err := strconv.ParseInt(strings.TrimSpace(s), 0, out.Type().Bits())
		if !ok || err != nil {
			fail("expected a whole number, got %s", describe(in))
			return
		}
		out.SetInt(n)
	case reflect.Float32, reflect.Float64:
		s, ok := scalar(in)
		f, err := strconv.ParseFloat(strings.TrimSpace(s), out.Type().Bits())
		if !ok || err != nil {
			fail("expected a number, got %s", describe(in))
			return
		}
		out.SetFloat(f)
	case reflect.Slice:
		decodeSlice(path, in, out, errs)
	case reflect.Map:
		m, ok := in.(map[string]any)
		if !ok || out.Type().Key().Kind() != reflect.String {
			fail("expected a map, got %s", describe(in))
			return
		}
		res := reflect.MakeMapWithSize(out.Type(), len(m))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			elem := reflect.New(out.Type().Elem()).Elem()
			decodeValue(path+"."+k, m[k], elem, errs)
			res.SetMapIndex(reflect.ValueOf(k).Convert(out.Type().Key()), elem)
		}
		out.Set(res)
	case reflect.Struct:
		m, ok := in.(map[string]any)
		if !ok {
			fail("expected a map, got %s", describe(in))
			return
		}
		decodeStruct(path, m, out, errs)
	case reflect.Ptr:
		elem := reflect.New(out.Type().Elem())
		if !out.IsNil() {
			elem.Elem().Set(out.Elem())
		}
		decodeValue(path, in, elem.Elem(), errs)
		out.Set(elem)
	default:
		fail("unsupported field type %s", out.Type())
	}
}

// decodeSlice takes a list, a single map (a list of one, as Traefik's weak decoding does), or
// for lists of scalars a comma-separated string (split without trimming, as Traefik does).
func decodeSlice(path string, in any, out reflect.Value, errs *[]error) {
	var items []any
	if list, ok := in.([]any); ok {
		items = list
	} else if s, ok := in.(string); ok && out.Type().Elem().Kind() != reflect.Struct {
		if s != "" {
			for _, part := range strings.Split(s, ",") {
				items = append(items, part)
			}
		}
	} else if m, ok := in.(map[string]any); ok {
		items = []any{m}
	} else if s, ok := scalar(in); ok {
		items = []any{s}
	} else {
		*errs = append(*errs, fmt.Errorf("%s: expected a list, got %s", path, describe(in)))
		return
	}
	res := reflect.MakeSlice(out.Type(), len(items), len(items))
	for i, item := range items {
		decodeValue(path+"["+strconv.Itoa(i)+"]", item, res.Index(i), errs)
	}
	out.Set(res)
}

// scalar renders a string, bool or number the way weak decoding reads it.
func scalar(in any) (string, bool) {
	switch x := in.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

func describe(in any) string {
	if s, ok := in.(string); ok {
		return strconv.Quote(s)
	}
	if _, ok := in.([]any); ok {
		return "a list"
	}
	if _, ok := in.(map[string]any); ok {
		return "a map"
	}
	return fmt.Sprintf("%T", in)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
