package plan

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/sources"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// samplePlan has one app of each kind: a seed Deployment rolling to
// v1.1.1, the seed BCS deployment rolling with a deny window in the way,
// an invalid app and an unchanged one.
func samplePlan(t *testing.T) *Plan {
	live := obj(t, seedDeployment)
	dry := live.DeepCopy()
	setContainer(dry, "args", []any{"-m", "SimpleHTTPServer", "8888"})
	setContainer(dry, "image", "hub.docker.com:xxxx/xxxxxx:v1.1.1")
	c := configured(live, dry)
	dep, err := deploymentRollout(c, live)
	if err != nil {
		t.Fatal(err)
	}
	w := windows(t, noonDeny)
	w.App = "bcs"
	bcsRoll := bcsRollout(seedBCS(t, "v1.1.1"), []appsv1.ReplicaSet{liveRS("test", 2, seedBCS(t, ""), 0)}, t0, w)
	return &Plan{
		Revision: sources.Revision{Commit: "4ca8b8a0c0ffee", Subject: "test: v1.1.1 listening on 8888", Author: "Demo User <demo@example.com>"},
		Now:      t0,
		Apps: []AppPlan{
			{App: "bcs", Rollouts: []Rollout{bcsRoll}, Start: t0},
			{App: "broken", Error: "apps/broken/svc.yaml:3: YAML syntax error: mapping values are not allowed in this context"},
			{App: "quiet", Changes: appliers.ChangeSet{{Ref: appliers.ObjectRef{Version: "v1", Kind: "Service", Namespace: "ns", Name: "quiet"}, Action: appliers.Unchanged}}},
			{App: "test", Changes: appliers.ChangeSet{c}, Rollouts: []Rollout{dep}, Start: t0},
		},
	}
}

func TestRender(t *testing.T) {
	p := samplePlan(t)
	if got := p.ExitCode(); got != 1 {
		t.Errorf("ExitCode() = %d, want 1 (an invalid app)", got)
	}
	for _, tt := range []struct {
		golden string
		render func(*bytes.Buffer, *Plan) error
	}{
		{"sample.txt", func(b *bytes.Buffer, p *Plan) error { return Text(b, p) }},
		{"sample.md", func(b *bytes.Buffer, p *Plan) error { return Markdown(b, p) }},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.render(&b, p); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./plan -run TestRender -update)", err)
			}
			if d := cmp.Diff(string(want), b.String()); d != "" {
				t.Errorf("%s (-want +got):\n%s", path, d)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	changed := AppPlan{App: "a", Rollouts: []Rollout{{Changed: true}}}
	same := AppPlan{App: "b", Rollouts: []Rollout{{Changed: false}}}
	for _, tt := range []struct {
		name string
		p    Plan
		want int
	}{
		{"nothing", Plan{Apps: []AppPlan{same}}, 0},
		{"a BCS rollout alone counts as a change", Plan{Apps: []AppPlan{same, changed}}, 2},
		{"an invalid gitpace.yaml", Plan{Error: "gitpace.yaml: bad", Apps: []AppPlan{changed}}, 1},
		{"an invalid app", Plan{Apps: []AppPlan{changed, {App: "c", Error: "x"}}}, 1},
	} {
		if got := tt.p.ExitCode(); got != tt.want {
			t.Errorf("%s: ExitCode() = %d, want %d", tt.name, got, tt.want)
		}
	}
}
