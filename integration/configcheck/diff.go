package configcheck

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// diff lists the differences between two decoded configurations, one line per option path
// ("jwt.issuer: dynamic/ "a" ≠ labels "b""). Struct fields are named by their json tag.
func diff(path string, a, b reflect.Value, out map[string][2]string) {
	if !a.IsValid() || !b.IsValid() {
		if a.IsValid() != b.IsValid() {
			out[path] = [2]string{show(a), show(b)}
		}
		return
	}
	if a.Kind() == reflect.Interface || a.Kind() == reflect.Pointer {
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				out[path] = [2]string{show(a), show(b)}
			}
			return
		}
		diff(path, a.Elem(), b.Elem(), out)
		return
	}
	if a.Type() != b.Type() {
		out[path] = [2]string{show(a), show(b)}
		return
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			f := a.Type().Field(i)
			if f.PkgPath != "" {
				continue
			}
			diff(join(path, fieldName(f)), a.Field(i), b.Field(i), out)
		}
	case reflect.Map:
		keys := map[string]reflect.Value{}
		for _, k := range a.MapKeys() {
			keys[fmt.Sprint(k.Interface())] = k
		}
		for _, k := range b.MapKeys() {
			keys[fmt.Sprint(k.Interface())] = k
		}
		for _, name := range sortedKeys(keys) {
			diff(join(path, name), a.MapIndex(keys[name]), b.MapIndex(keys[name]), out)
		}
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			out[path] = [2]string{show(a), show(b)}
			return
		}
		for i := 0; i < a.Len(); i++ {
			diff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i), out)
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			out[path] = [2]string{show(a), show(b)}
		}
	}
}

func fieldName(f reflect.StructField) string {
	if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
		return tag
	}
	return f.Name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func show(v reflect.Value) string {
	if !v.IsValid() {
		return "(not set)"
	}
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return "(not set)"
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprintf("%v", v.Interface())
}

// flatten turns raw options (paerser's map[string]any of a non-plugin middleware) into
// option paths (lower-cased: Traefik matches keys case-insensitively) and string values,
// lists joined with "," (as labels write them); names keeps each path as first spelled.
// Zero values ("", false, 0) are left out: Traefik's typed decoding cannot tell them from an
// option not given. Without Traefik's types this is the closest comparison of YAML and labels.
func flatten(path, spelled string, v any, out, names map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(path, strings.ToLower(k)), join(spelled, k), e, out, names)
		}
	case []any:
		parts := make([]string, 0, len(x))
		allScalar := true
		for _, e := range x {
			if _, ok := e.(map[string]any); ok {
				allScalar = false
			}
			parts = append(parts, fmt.Sprint(e))
		}
		if allScalar {
			setLeaf(path, spelled, strings.Join(parts, ","), out, names)
			return
		}
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%s[%d]", spelled, i), e, out, names)
		}
	case nil:
	default:
		setLeaf(path, spelled, fmt.Sprint(x), out, names)
	}
}

func setLeaf(path, spelled, s string, out, names map[string]string) {
	switch strings.ToLower(s) {
	case "", "false", "0":
		return
	}
	out[path] = s
	if _, ok := names[path]; !ok {
		names[path] = spelled
	}
}

func sortedPaths(m map[string][2]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
