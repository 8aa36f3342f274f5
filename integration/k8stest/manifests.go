package k8stest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Dir is deploy/kubernetes relative to the repository root.
const Dir = "deploy/kubernetes"

// Manifest is one object of a manifest file.
type Manifest struct {
	File   string // relative to the repository root
	Object map[string]any
}

// Kind is the object's kind.
func (m Manifest) Kind() string { s, _ := m.Object["kind"].(string); return s }

// Name is the object's metadata.name.
func (m Manifest) Name() string {
	meta, _ := m.Object["metadata"].(map[string]any)
	s, _ := meta["name"].(string)
	return s
}

// Resources returns the files kustomization.yaml lists, in its order.
func Resources(root string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, Dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", Dir, err)
	}
	if len(k.Resources) == 0 {
		return nil, fmt.Errorf("%s/kustomization.yaml lists no resources", Dir)
	}
	out := make([]string, len(k.Resources))
	for i, r := range k.Resources {
		out[i] = filepath.ToSlash(filepath.Join(Dir, r))
	}
	return out, nil
}

// Load reads every file kustomization.yaml lists and decodes its documents. Each key of
// replace (a value the manifests hold for a real cluster) is replaced by its value (what the
// test runs) everywhere; a key that appears in no file is an error, so a manifest change
// cannot leave the test on a production address.
func Load(root string, replace map[string]string) ([]Manifest, error) {
	files, err := Resources(root)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	var out []Manifest
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		for old, repl := range replace {
			if bytes.Contains(b, []byte(old)) {
				found[old] = true
				b = bytes.ReplaceAll(b, []byte(old), []byte(repl))
			}
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if doc == nil {
				continue
			}
			out = append(out, Manifest{File: f, Object: doc})
		}
	}
	var missing []string
	for old := range replace {
		if !found[old] {
			missing = append(missing, old)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%s: no manifest holds %s any more: update the test's replacements", Dir, strings.Join(missing, ", "))
	}
	return out, nil
}
