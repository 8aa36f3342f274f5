// Package configcheck checks the gateway's Traefik configuration the way Traefik reads it:
// static/traefik.yml, the dynamic files of dynamic/ (Go templates, rendered first) and the
// Docker labels of demo/docker-compose.yml go through github.com/traefik/paerser, the parser
// Traefik uses for files and labels. Every plugin middleware's options are then decoded
// strictly into that plugin's Config (Traefik drops unknown plugin options silently; here an
// unknown key is an error naming it and the file) and the plugin's New validates them. The
// labels must describe the same middlewares as the YAML, except for options the YAML takes
// from the environment (labels cannot template them).
package configcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/traefik/paerser/file"
	"github.com/traefik/paerser/parser"
	"gopkg.in/yaml.v3"
)

// Paths locates the configuration; empty fields default to the repository layout under Root.
type Paths struct {
	Root    string // repository root; file names in messages are relative to it
	Static  string // static/traefik.yml
	Dynamic string // dynamic/
	Compose string // demo/docker-compose.yml
	// Kubernetes is deploy/kubernetes: the Middleware resources' plugin options.
	Kubernetes string
}

func (p Paths) withDefaults() Paths {
	if p.Static == "" {
		p.Static = filepath.Join(p.Root, "static", "traefik.yml")
	}
	if p.Dynamic == "" {
		p.Dynamic = filepath.Join(p.Root, "dynamic")
	}
	if p.Compose == "" {
		p.Compose = filepath.Join(p.Root, "demo", "docker-compose.yml")
	}
	if p.Kubernetes == "" {
		p.Kubernetes = filepath.Join(p.Root, "deploy", "kubernetes")
	}
	return p
}

// Report is what the check found. Problems make it fail; Notes are information (what was
// checked, allowed differences, documentation gaps).
type Report struct {
	Notes    []string
	Problems []string
}

// Err is nil when there is no problem, else every problem joined.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	errs := make([]error, len(r.Problems))
	for i, p := range r.Problems {
		errs[i] = errors.New(p)
	}
	return errors.Join(errs...)
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}
func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// defined is one middleware as a provider defines it.
type defined struct {
	where   string // file (and service) it comes from
	mw      *middleware
	decoded map[string]any // plugin name -> decoded options (plugin middlewares)
}

// LocalPlugins reads, with Traefik's own parser, the local plugins a static configuration
// file declares: name -> moduleName (none: an empty map).
func LocalPlugins(static string) (map[string]string, error) {
	var c staticConfig
	if err := file.Decode(static, &c); err != nil {
		return nil, err
	}
	out := map[string]string{}
	if c.Experimental != nil {
		for name, lp := range c.Experimental.LocalPlugins {
			out[name] = lp.ModuleName
		}
	}
	return out, nil
}

// Check runs every check and reports what it found.
func Check(paths Paths) *Report {
	paths = paths.withDefaults()
	r := &Report{}
	rel := func(p string) string {
		if s, err := filepath.Rel(paths.Root, p); err == nil && !strings.HasPrefix(s, "..") {
			return s
		}
		return p
	}

	// Static: the local plugins (name -> moduleName -> checker).
	declared, err := LocalPlugins(paths.Static)
	if err != nil {
		r.problem("%s: %v", rel(paths.Static), err)
		return r
	}
	plugins := map[string]pluginKind{}
	moduleOf := map[string]string{}
	if len(declared) == 0 {
		r.problem("%s: no experimental.localPlugins", rel(paths.Static))
	} else {
		for _, name := range sortedKeys(declared) {
			mod := declared[name]
			kind, ok := modules[mod]
			if !ok {
				r.problem("%s: experimental.localPlugins.%s.moduleName %q: no checker for this module (add it to configcheck)", rel(paths.Static), name, mod)
				continue
			}
			plugins[name] = kind
			moduleOf[name] = mod
		}
		r.note("%s: local plugins %s", rel(paths.Static), strings.Join(sortedKeys(plugins), ", "))
	}

	// Dynamic files, rendered with the base environment (validated), every variable set
	// (validated), and each variable changed alone (decoded only, to find templated options).
	base := checkDynamic(r, paths, rel, plugins, baseEnv(), true)
	checkDynamic(r, paths, rel, plugins, altEnv(), true)
	templated := map[string][]string{} // "middleware/plugin/option path" -> variables
	for _, p := range placeholders {
		q := &Report{}
		v := checkDynamic(q, paths, rel, plugins, variant(p.Name), false)
		for name, d := range base {
			vd, ok := v[name]
			if !ok {
				continue
			}
			for plugin := range d.decoded {
				out := map[string][2]string{}
				diff("", reflect.ValueOf(d.decoded[plugin]), reflect.ValueOf(vd.decoded[plugin]), out)
				for path := range out {
					k := name + "/" + plugin + "/" + path
					templated[k] = append(templated[k], p.Name)
				}
			}
		}
	}

	// Compose labels.
	labels := checkCompose(r, paths, rel, plugins, moduleOf)

	// The compose file as the Compose loader reads it, against static/.
	checkComposeSpec(r, paths, rel)

	// Kubernetes Middleware resources.
	checkKubernetes(r, paths.Root, paths.Kubernetes, rel)

	// Labels and YAML describe the same middlewares.
	for _, name := range sortedKeys(labels) {
		l := labels[name]
		y, ok := base[name]
		if !ok {
			r.problem("%s: middleware %q is defined by the labels but by no file of %s", l.where, name, rel(paths.Dynamic))
			continue
		}
		lk, yk := sortedKeys(l.mw.kinds()), sortedKeys(y.mw.kinds())
		if strings.Join(lk, ",") != strings.Join(yk, ",") {
			r.problem("middleware %q: labels (%s) make it %s, %s makes it %s", name, l.where, strings.Join(lk, "+"), y.where, strings.Join(yk, "+"))
			continue
		}
		var lines []string
		if l.mw.Plugin != nil {
			if lp, yp := strings.Join(sortedKeys(l.mw.Plugin), ","), strings.Join(sortedKeys(y.mw.Plugin), ","); lp != yp {
				lines = append(lines, fmt.Sprintf("    plugin: dynamic/ uses %s, labels use %s", yp, lp))
			}
			for _, plugin := range unionKeys(l.decoded, y.decoded) {
				if l.decoded[plugin] == nil || y.decoded[plugin] == nil {
					continue // one side did not decode: reported above
				}
				out := map[string][2]string{}
				diff("", reflect.ValueOf(y.decoded[plugin]), reflect.ValueOf(l.decoded[plugin]), out)
				for _, path := range sortedPaths(out) {
					d := out[path]
					if vars := templated[name+"/"+plugin+"/"+path]; len(vars) > 0 {
						r.note("middleware %q plugin %s option %s: dynamic/ takes it from %s, labels fix it to %s (allowed: labels cannot template)", name, plugin, path, strings.Join(vars, ", "), d[1])
						continue
					}
					lines = append(lines, fmt.Sprintf("    plugin.%s.%s: dynamic/ %s, labels %s", plugin, path, d[0], d[1]))
				}
			}
		}
		for kind, raw := range y.mw.kinds() {
			if kind == "plugin" {
				continue
			}
			ya, la, names := map[string]string{}, map[string]string{}, map[string]string{}
			flatten("", "", raw, ya, names)
			flatten("", "", l.mw.kinds()[kind], la, names)
			for _, path := range unionKeys(ya, la) {
				if ya[path] != la[path] {
					lines = append(lines, fmt.Sprintf("    %s.%s: dynamic/ %s, labels %s", kind, names[path], quoteOrUnset(ya, path), quoteOrUnset(la, path)))
				}
			}
		}
		if len(lines) > 0 {
			sort.Strings(lines)
			r.problem("middleware %q differs between %s and %s:\n%s", name, y.where, l.where, strings.Join(lines, "\n"))
		}
	}
	if len(labels) > 0 {
		r.note("%s: %d middlewares from labels compared with %s: %s", rel(paths.Compose), len(labels), rel(paths.Dynamic), strings.Join(sortedKeys(labels), ", "))
	}
	return r
}

func quoteOrUnset(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%q", v)
	}
	return "(not set)"
}

func unionKeys[V any](a, b map[string]V) []string {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return sortedKeys(u)
}

// checkDynamic renders and decodes every file of the dynamic directory with env, checks its
// plugin middlewares (problems are reported only when report is true) and returns the
// middlewares by name.
func checkDynamic(r *Report, paths Paths, rel func(string) string, plugins map[string]pluginKind, env envSet, report bool) map[string]*defined {
	out := map[string]*defined{}
	entries, err := os.ReadDir(paths.Dynamic)
	if err != nil {
		r.problem("%s: %v", rel(paths.Dynamic), err)
		return out
	}
	documentedIn := map[string][]string{} // variable -> dynamic files whose header documents it
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(paths.Dynamic, e.Name())); err == nil && !e.IsDir() {
			for v := range headerMentions(string(b)) {
				documentedIn[v] = append(documentedIn[v], rel(filepath.Join(paths.Dynamic, e.Name())))
			}
		}
	}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".yml" && ext != ".yaml" && ext != ".toml") {
			continue // Traefik's file provider reads only these
		}
		p := filepath.Join(paths.Dynamic, e.Name())
		where := rel(p)
		b, err := os.ReadFile(p)
		if err != nil {
			r.problem("%s: %v", where, err)
			continue
		}
		content, used, unknown, err := render(where, string(b), env.vals)
		if err != nil {
			r.problem("%s: %v", where, err)
			continue
		}
		if report {
			for _, v := range unknown {
				r.problem("%s: reads %s, which the check has no placeholder value for (document it in the file's header and add it to configcheck's placeholders)", where, v)
			}
			if env.primary {
				own := headerMentions(string(b))
				for _, v := range used {
					if !strings.HasPrefix(v, "PAVILION_") || own[v] {
						continue
					}
					if docs := documentedIn[v]; len(docs) > 0 {
						r.note("%s: reads %s, which its header does not list (documented in %s)", where, v, strings.Join(docs, ", "))
					} else {
						r.note("%s: reads %s, which no header of %s documents", where, v, rel(paths.Dynamic))
					}
				}
			}
		}
		var conf dynamicConfig
		if err := file.DecodeContent(content, ext, &conf); err != nil {
			r.problem("%s (%s): %v", where, env.label, err)
			continue
		}
		if conf.HTTP == nil {
			continue
		}
		for _, name := range sortedKeys(conf.HTTP.Middlewares) {
			mw := conf.HTTP.Middlewares[name]
			if prev, dup := out[name]; dup {
				if report {
					r.problem("%s: middleware %q is also defined in %s (Traefik drops both)", where, name, prev.where)
				}
				continue
			}
			d := &defined{where: where, mw: mw}
			out[name] = d
			if mw == nil {
				continue
			}
			d.decoded = checkPlugins(r, where, "http.middlewares."+name, name+"@file", mw, plugins, env, report)
		}
	}
	return out
}

// checkPlugins decodes and validates the plugin options of one middleware.
func checkPlugins(r *Report, where, path, traefikName string, mw *middleware, plugins map[string]pluginKind, env envSet, report bool) map[string]any {
	decoded := map[string]any{}
	how := ""
	if env.label != "" {
		how = " (" + env.label + ")"
	}
	if n := len(mw.kinds()); n != 1 && report {
		r.problem("%s: %s: %d middleware kinds (%s); Traefik needs exactly one", where, path, n, strings.Join(sortedKeys(mw.kinds()), ", "))
	}
	for _, pname := range sortedKeys(mw.Plugin) {
		opts := map[string]any(mw.Plugin[pname])
		loc := fmt.Sprintf("%s: %s.plugin.%s", where, path, pname)
		kind, ok := plugins[pname]
		if !ok {
			if report {
				r.problem("%s: plugin %q is not declared in experimental.localPlugins", loc, pname)
			}
			continue
		}
		if opts == nil {
			opts = map[string]any{}
		}
		d, err := kind.decode(opts)
		if err != nil {
			if report {
				r.problem("%s%s: %v", loc, how, indent(err))
			}
			continue
		}
		decoded[pname] = d
		if report {
			if err := kind.validate(opts, traefikName); err != nil {
				r.problem("%s%s: %v", loc, how, indent(err))
			}
		}
	}
	return decoded
}

func indent(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "\n    ")
}

// composeFile is what the check reads of a compose file.
type composeFile struct {
	Services map[string]struct {
		Labels  any `yaml:"labels"`
		Command any `yaml:"command"`
	} `yaml:"services"`
}

// checkCompose decodes the labels of every service with paerser, as Traefik's Docker
// provider does (label.DecodeConfiguration), checks their plugin middlewares and returns the
// middlewares by name. A middleware defined on several containers must be identical on each
// (Traefik merges identical definitions and drops conflicting ones).
func checkCompose(r *Report, paths Paths, rel func(string) string, plugins map[string]pluginKind, moduleOf map[string]string) map[string]*defined {
	out := map[string]*defined{}
	where := rel(paths.Compose)
	b, err := os.ReadFile(paths.Compose)
	if err != nil {
		r.problem("%s: %v", where, err)
		return out
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		r.problem("%s: %v", where, err)
		return out
	}

	// The plugins the compose Traefik declares must be the ones of static/traefik.yml.
	labelPlugins := plugins
	for _, svc := range sortedKeys(cf.Services) {
		declared := map[string]string{}
		for _, arg := range stringList(cf.Services[svc].Command) {
			k, v, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
			parts := strings.Split(k, ".")
			if ok && len(parts) == 4 && strings.EqualFold(parts[0], "experimental") &&
				strings.EqualFold(parts[1], "localPlugins") && strings.EqualFold(parts[3], "moduleName") {
				declared[parts[2]] = v
			}
		}
		if len(declared) == 0 {
			continue
		}
		labelPlugins = map[string]pluginKind{}
		for name, mod := range declared {
			if moduleOf[name] != mod {
				r.problem("%s: service %s declares local plugin %s as %q, %s as %q", where, svc, name, mod, "static/traefik.yml", moduleOf[name])
				continue
			}
			labelPlugins[name] = plugins[name]
		}
	}

	for _, svc := range sortedKeys(cf.Services) {
		lbls, err := labelMap(cf.Services[svc].Labels)
		if err != nil {
			r.problem("%s: service %s: labels: %v", where, svc, err)
			continue
		}
		for k, v := range lbls { // ${X:-default}, as compose interpolates with X unset
			if lbls[k], err = composeDefaults(v); err != nil {
				r.problem("%s: service %s: label %s: %v", where, svc, k, err)
			}
		}
		var conf dynamicConfig
		conf.HTTP = &httpConfig{}
		// Traefik: label.DecodeConfiguration.
		if err := parser.Decode(lbls, &conf, parser.DefaultRootName, "traefik.http", "traefik.tcp", "traefik.udp", "traefik.tls.stores.default"); err != nil {
			r.problem("%s: labels of service %s: %v", where, svc, err)
			continue
		}
		swhere := fmt.Sprintf("%s (labels of service %s)", where, svc)
		for _, name := range sortedKeys(conf.HTTP.Middlewares) {
			mw := conf.HTTP.Middlewares[name]
			if prev, ok := out[name]; ok {
				if !reflect.DeepEqual(prev.mw, mw) {
					r.problem("%s: middleware %q differs from its definition in %s (Traefik drops conflicting definitions)", swhere, name, prev.where)
				}
				continue
			}
			d := &defined{where: swhere, mw: mw}
			out[name] = d
			if mw != nil {
				d.decoded = checkPlugins(r, swhere, "traefik.http.middlewares."+name, name+"@docker", mw, labelPlugins, envSet{}, true)
			}
		}
	}
	return out
}

// labelMap accepts compose's two label forms: a map, or a list of "key=value".
func labelMap(v any) (map[string]string, error) {
	out := map[string]string{}
	switch x := v.(type) {
	case nil:
	case map[string]any:
		for k, e := range x {
			if e == nil {
				out[k] = ""
			} else {
				out[k] = fmt.Sprint(e)
			}
		}
	case []any:
		for _, e := range x {
			k, val, _ := strings.Cut(fmt.Sprint(e), "=")
			out[k] = val
		}
	default:
		return nil, fmt.Errorf("unsupported form %T", v)
	}
	return out, nil
}

func stringList(v any) []string {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	case string:
		return strings.Fields(x)
	}
	return nil
}
