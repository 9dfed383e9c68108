package agent

import (
	"strings"
	"testing"

	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources/manifest"
)

// TestOrderPlanWaveConflict: a dependsOn on an app of a later wave (x1 of
// wave 1 on x2 of wave 2, or through an app in no wave) would wait
// forever; it is a cycle naming the waves, on the apps on it. A dependsOn
// on an earlier wave is fine, and an app that left git is pruned in the
// wave its name matches.
func TestOrderPlanWaveConflict(t *testing.T) {
	cfg, err := policies.ParseConfig("gitpace.yaml", []byte(`
waves:
- apps: ["x*"]
- apps: ["y*"]
apps:
- match: x1
  dependsOn: [x2-link]
- match: x2-link
  dependsOn: [y2]
- match: y1
  dependsOn: [x3]
`))
	if err != nil {
		t.Fatal(err)
	}
	rev := &revision.Revision{ByName: map[string]*revision.App{}}
	for _, n := range []string{"x1", "x2-link", "x3", "y1", "y2"} {
		b := &revision.App{Manifest: &manifest.App{Name: n}}
		rev.Apps = append(rev.Apps, b)
		rev.ByName[n] = b
	}
	o := newOrderPlan(cfg, rev, nil, []string{"x1", "y-gone"})
	for _, app := range []string{"x1", "x2-link", "y2"} {
		if c := o.cycles[app]; !strings.Contains(c, "wave 1") || !strings.Contains(c, "dependsOn against the order of the waves") {
			t.Errorf("cycle of %s = %q; want one through wave 1, naming the waves", app, c)
		}
	}
	for _, app := range []string{"x3", "y1"} {
		if c, ok := o.cycles[app]; ok {
			t.Errorf("%s is on no cycle, got %q", app, c)
		}
	}
	if !o.removed["y-gone"] || strings.Join(o.members[1], ",") != "y-gone,y1,y2" {
		t.Errorf("removed %v, wave 2 members %v; want y-gone pruned in wave 2", o.removed, o.members[1])
	}
}
