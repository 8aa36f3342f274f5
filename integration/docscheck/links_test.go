package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository root, relative to this package.
var root = filepath.Join("..", "..")

// pending are documents the README's index links that other lines of work add; a link to one
// of them may dangle until they land. Remove a name once its file exists.
var pending = map[string]bool{
	"docs/kubernetes.md":    true,
	"docs/docker.md":        true,
	"docs/docker-labels.md": true,
	"docs/logging.md":       true,
	"docs/redis.md":         true,
	"docs/security.md":      true,
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// documents are the project's own documents: the READMEs and docs/.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "integration", "README.md")}, docs...)
}

// anchor is GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocumentLinksResolve checks that every relative link of the project's documents names a
// file of the repository (or one of pending), and that a #fragment names a heading of it.
func TestDocumentLinksResolve(t *testing.T) {
	for _, doc := range documents(t) {
		src, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for _, m := range mdLink.FindAllStringSubmatch(string(src), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := doc
			if file != "" {
				path = filepath.Join(filepath.Dir(doc), filepath.FromSlash(file))
			}
			repoPath, _ := filepath.Rel(root, path)
			body, err := os.ReadFile(path)
			if err != nil {
				if os.IsNotExist(err) && pending[filepath.ToSlash(repoPath)] {
					continue
				}
				if info, serr := os.Stat(path); serr == nil && info.IsDir() {
					continue
				}
				t.Errorf("%s: link %q: %s is not in the repository", rel, target, repoPath)
				continue
			}
			if frag == "" {
				continue
			}
			found := false
			for _, h := range heading.FindAllStringSubmatch(string(body), -1) {
				if anchor(h[1]) == frag {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: link %q: %s has no heading with anchor #%s", rel, target, repoPath, frag)
			}
		}
	}
}

// TestReadmeStartsWithTheTwoCommands keeps the two commands a newcomer needs at the top.
func TestReadmeStartsWithTheTwoCommands(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	if len(lines) > 40 {
		lines = lines[:40]
	}
	top := strings.Join(lines, "\n")
	for _, cmd := range []string{"make demo", "make test"} {
		if !strings.Contains(top, cmd) {
			t.Errorf("README.md: %q is not in its first 40 lines", cmd)
		}
	}
}

func TestAnchor(t *testing.T) {
	for h, want := range map[string]string{
		"The metrics endpoint":                                   "the-metrics-endpoint",
		"Cost model: keep the hot path short":                    "cost-model-keep-the-hot-path-short",
		"`make demo IDP=keycloak`":                               "make-demo-idpkeycloak",
		"Realm `pavilion` (`demo/keycloak/pavilion-realm.json`)": "realm-pavilion-demokeycloakpavilion-realmjson",
	} {
		if got := anchor(h); got != want {
			t.Errorf("anchor(%q) = %q, want %q", h, got, want)
		}
	}
}
