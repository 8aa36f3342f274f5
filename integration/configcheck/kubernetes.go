package configcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pavilion-trust/gateway/integration/k8stest"
)

// checkKubernetes checks the plugin options of the Middleware resources in deploy/kubernetes
// (the files its kustomization.yaml lists) like those of the dynamic files: strictly decoded
// and validated by the plugin that helm-values.yaml loads under that name. A string option
// urn:k8s:secret:<secret>:<key> is what Traefik's CRD provider resolves from a Secret; it must
// have exactly that shape (Traefik rejects the whole Middleware otherwise) and is checked
// as the string it stands for.
func checkKubernetes(r *Report, root, dir string, rel func(string) string) {
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); os.IsNotExist(err) {
		r.note("%s: no Kubernetes manifests", rel(dir))
		return
	}
	values := filepath.Join(dir, "helm-values.yaml")
	var v struct {
		Experimental struct {
			LocalPlugins map[string]struct {
				ModuleName string `yaml:"moduleName"`
			} `yaml:"localPlugins"`
		} `yaml:"experimental"`
	}
	b, err := os.ReadFile(values)
	if err == nil {
		err = yaml.Unmarshal(b, &v)
	}
	if err != nil {
		r.problem("%s: %v", rel(values), err)
		return
	}
	plugins := map[string]pluginKind{}
	for name, lp := range v.Experimental.LocalPlugins {
		kind, ok := modules[lp.ModuleName]
		if !ok {
			r.problem("%s: experimental.localPlugins.%s.moduleName %q: no checker for this module", rel(values), name, lp.ModuleName)
			continue
		}
		plugins[name] = kind
	}
	manifests, err := k8stest.Load(root, nil)
	if err != nil {
		r.problem("%v", err)
		return
	}
	var checked []string
	for _, m := range manifests {
		spec, _ := m.Object["spec"].(map[string]any)
		raw, _ := spec["plugin"].(map[string]any)
		if m.Kind() != "Middleware" || raw == nil {
			continue
		}
		ns, _ := m.Object["metadata"].(map[string]any)["namespace"].(string)
		mw := &middleware{Plugin: map[string]pluginConf{}}
		for name, opts := range raw {
			o, _ := opts.(map[string]any)
			for _, bad := range badSecretURNs("", o) {
				r.problem("%s: Middleware %s spec.plugin.%s%s: %q is not urn:k8s:secret:<secret>:<key>", m.File, m.Name(), name, bad[0], bad[1])
			}
			mw.Plugin[name] = o
		}
		checkPlugins(r, m.File, "Middleware "+m.Name()+" spec", ns+"-"+m.Name()+"@kubernetescrd", mw, plugins, envSet{}, true)
		checked = append(checked, m.Name())
	}
	r.note("%s: plugin options of Middleware %s checked against helm-values.yaml's local plugins", rel(dir), strings.Join(checked, ", "))
}

// badSecretURNs returns (option path, value) of every string starting with urn:k8s:secret:
// that Traefik cannot resolve (it splits at ":" and wants exactly five parts).
func badSecretURNs(path string, v any) [][2]string {
	var out [][2]string
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "urn:k8s:secret:") {
			parts := strings.Split(x, ":")
			if len(parts) != 5 || parts[3] == "" || parts[4] == "" {
				out = append(out, [2]string{path, x})
			}
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			out = append(out, badSecretURNs(path+"."+k, x[k])...)
		}
	case []any:
		for i, e := range x {
			out = append(out, badSecretURNs(fmt.Sprintf("%s[%d]", path, i), e)...)
		}
	}
	return out
}
