package configcheck

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestCORSOrigins: the shipped allow-list is the production origin only (HTTPS), and
// PAVILION_CORS_EXTRA_ORIGINS adds development origins, trimmed, empty items dropped.
func TestCORSOrigins(t *testing.T) {
	content, err := os.ReadFile(filepath.Join(repoRoot(t), "dynamic", "gateway.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		extra string
		want  []string
	}{
		{"", []string{"https://portal.pavilion.example"}},
		{"http://localhost:3000, http://127.0.0.1:3000,", []string{"https://portal.pavilion.example", "http://localhost:3000", "http://127.0.0.1:3000"}},
	} {
		vals := baseEnv().vals
		vals["PAVILION_CORS_EXTRA_ORIGINS"] = tc.extra
		out, _, _, err := render("gateway.yml", string(content), vals)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			HTTP struct {
				Middlewares map[string]struct {
					Headers struct {
						Origins []string `yaml:"accessControlAllowOriginList"`
					} `yaml:"headers"`
				} `yaml:"middlewares"`
			} `yaml:"http"`
		}
		if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if got := doc.HTTP.Middlewares["cors"].Headers.Origins; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("PAVILION_CORS_EXTRA_ORIGINS=%q: origins %q, want %q", tc.extra, got, tc.want)
		}
	}
}
