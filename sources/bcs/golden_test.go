package bcs

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/bcs/golden")

const testdata = "../../testdata/bcs"

// goldenApps names the application a case is mapped for; the default is the
// deployment's name (the first application of a deployment).
var goldenApps = map[string]string{
	"test1-1-1": "test-v1562517103", // the application the seed's update creates
}

// TestGolden maps every testdata/bcs/*.json to a ReplicaSet and compares its
// YAML with testdata/bcs/golden/<case>.yaml. Run with -update to rewrite.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in %s: %v", testdata, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Parse(filepath.Base(f), data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			app := goldenApps[name]
			if app == "" {
				app = d.Name()
			}
			rs, err := d.ReplicaSet(app)
			if err != nil {
				t.Fatalf("ReplicaSet(%q): %v", app, err)
			}
			got, err := yaml.Marshal(rs)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(testdata, "golden", name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./sources/bcs/ -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("ReplicaSet for %s mismatch (-want +got):\n%s", f, diff)
			}
		})
	}
}

// TestGoldenHasCase catches golden files whose case was removed or renamed.
func TestGoldenHasCase(t *testing.T) {
	goldens, _ := filepath.Glob(filepath.Join(testdata, "golden", "*.yaml"))
	for _, g := range goldens {
		name := strings.TrimSuffix(filepath.Base(g), ".yaml")
		if _, err := os.Stat(filepath.Join(testdata, name+".json")); err != nil {
			t.Errorf("golden %s has no case %s.json", g, name)
		}
	}
}
