package configcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// composeDefaults interpolates a compose value as `docker compose` does with none of the
// variables set: ${X:-default} becomes default.
func composeDefaults(s string) (string, error) {
	return template.Substitute(s, func(string) (string, bool) { return "", false })
}

// checkComposeSpec loads the compose file with the Compose specification's reference loader
// (compose-go: schema validation, interpolation, merge keys, profiles), without and with the
// keycloak profile, and checks that it runs the gateway of static/: the traefik service's
// arguments are static/traefik.yml's settings (entry point ports, not addresses; the file
// provider's directory and the Docker provider may differ), and the keycloak profile runs
// the Keycloak version the tests use with demo/keycloak/ imported.
func checkComposeSpec(r *Report, paths Paths, rel func(string) string) {
	where := rel(paths.Compose)
	var withKeycloak *types.Project
	for _, profiles := range [][]string{nil, {"keycloak"}} {
		p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
			WorkingDir:  filepath.Dir(paths.Compose),
			ConfigFiles: []types.ConfigFile{{Filename: paths.Compose}},
			Environment: types.Mapping{},
		}, func(o *loader.Options) { o.Profiles = profiles; o.ResolvePaths = true })
		if err != nil {
			r.problem("%s (profiles %v): the Compose loader refuses it: %v", where, profiles, err)
			return
		}
		if _, kc := p.Services["keycloak"]; kc != (len(profiles) > 0) {
			r.problem("%s: service keycloak must run with the keycloak profile only (profiles %v)", where, profiles)
		}
		withKeycloak = p
	}
	r.note("%s: valid for the Compose loader, with and without profile keycloak (%d services)", where, len(withKeycloak.Services))

	// Traefik's arguments against static/traefik.yml.
	tr, ok := withKeycloak.Services["traefik"]
	if !ok {
		r.problem("%s: no service traefik", where)
		return
	}
	b, err := os.ReadFile(paths.Static)
	if err != nil {
		r.problem("%v", err)
		return
	}
	var static map[string]any
	if err := yaml.Unmarshal(b, &static); err != nil {
		r.problem("%s: %v", rel(paths.Static), err)
		return
	}
	want := map[string]string{}
	flattenYAML("", static, want)
	got := map[string]string{}
	for _, arg := range tr.Command {
		k, v, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !ok {
			v = "true"
		}
		got[strings.ToLower(k)] = v
	}
	var diffs []string
	for _, k := range unionKeys(want, got) {
		w, inStatic := want[k]
		g, inCompose := got[k]
		switch {
		case strings.HasPrefix(k, "providers.docker.") || k == "providers.file.directory":
		case strings.HasPrefix(k, "entrypoints.") && strings.HasSuffix(k, ".address") && inStatic && inCompose:
			if portOf(w) != portOf(g) {
				diffs = append(diffs, fmt.Sprintf("%s: port %s, static %s", k, portOf(g), portOf(w)))
			}
		case !inCompose:
			diffs = append(diffs, fmt.Sprintf("%s: missing (static: %q)", k, w))
		case !inStatic:
			diffs = append(diffs, fmt.Sprintf("%s=%s: not in %s", k, g, rel(paths.Static)))
		case w != g:
			diffs = append(diffs, fmt.Sprintf("%s: %q, static %q", k, g, w))
		}
	}
	if len(diffs) > 0 {
		r.problem("%s: service traefik's arguments differ from %s:\n    %s", where, rel(paths.Static), strings.Join(diffs, "\n    "))
	}
	for _, port := range tr.Ports {
		if port.Target == 8082 && port.HostIP != "127.0.0.1" {
			r.problem("%s: the internal entry point (8082) is published on %q, want 127.0.0.1 only", where, port.HostIP)
		}
	}

	// Keycloak: the version the tests run, the realm imported.
	kc := withKeycloak.Services["keycloak"]
	if v := keycloakVersion(paths.Root); kc.Image != "quay.io/keycloak/keycloak:"+v {
		r.problem("%s: keycloak image %q, want quay.io/keycloak/keycloak:%s (.ci/keycloak)", where, kc.Image, v)
	}
	cmd := " " + strings.Join(kc.Command, " ") + " "
	if !strings.Contains(cmd, " start-dev ") || !strings.Contains(cmd, " --import-realm ") {
		r.problem("%s: keycloak command %v, want start-dev --import-realm", where, kc.Command)
	}
	realm := filepath.Join(paths.Root, "demo", "keycloak")
	mounted := false
	for _, v := range kc.Volumes {
		if filepath.Clean(v.Source) == realm && v.Target == "/opt/keycloak/data/import" {
			mounted = true
		}
	}
	if !mounted {
		r.problem("%s: keycloak does not mount demo/keycloak at /opt/keycloak/data/import", where)
	}
}

// flattenYAML turns nested maps into lower-case dotted keys as Traefik's flags spell them;
// lists of scalars are joined with ",", an empty map is "true" (a section switched on).
func flattenYAML(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			out[prefix] = "true"
			return
		}
		for k, e := range x {
			key := strings.ToLower(k)
			if prefix != "" {
				key = prefix + "." + key
			}
			flattenYAML(key, e, out)
		}
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		out[prefix] = strings.Join(parts, ",")
	default:
		out[prefix] = fmt.Sprint(x)
	}
}

func portOf(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// keycloakVersion is .ci/keycloak's default KEYCLOAK_VERSION.
func keycloakVersion(root string) string {
	b, _ := os.ReadFile(filepath.Join(root, ".ci", "keycloak"))
	if m := regexp.MustCompile(`KEYCLOAK_VERSION:-([0-9.]+)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "(unknown: .ci/keycloak has no default KEYCLOAK_VERSION)"
}
