package traefiktest

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
)

// PluginMiddleware renders one dynamic-configuration middleware (under `http.middlewares:`,
// indented four spaces) that uses a local plugin, with cfg as Traefik's file provider reads
// it: scalars as quoted strings, lists and maps as block YAML. An empty cfg renders as `{}`.
func PluginMiddleware(name, plugin string, cfg map[string]any) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "    %s:\n      plugin:\n        %s:", name, plugin)
	if len(cfg) == 0 {
		b.WriteString(" {}\n")
		return b.String()
	}
	writeYAML(&b, cfg, "          ")
	return b.String()
}

func writeYAML(b *bytes.Buffer, v any, indent string) {
	switch x := v.(type) {
	case string:
		b.WriteString(" " + strconv.Quote(x) + "\n")
	case []any:
		if len(x) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteString("\n")
		for _, e := range x {
			b.WriteString(indent + "-")
			writeYAML(b, e, indent+"  ")
		}
	case map[string]any:
		b.WriteString("\n")
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(indent + strconv.Quote(k) + ":")
			writeYAML(b, x[k], indent+"  ")
		}
	default:
		panic(fmt.Sprintf("traefiktest.PluginMiddleware: unsupported %T", v))
	}
}
