package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gitpace/gitpace/internal/gittest"
)

// TestRenderInvalidPolicyFile: `gitpace render` of a revision whose
// gitpace.yaml is invalid prints nothing and exits 1 naming the file and
// field, as the agent rejects every app of it (before, it rendered every
// app as if the file held no settings, exit 0); the revision before it
// renders.
func TestRenderInvalidPolicyFile(t *testing.T) {
	ctx := within(t, time.Minute)
	repo := gittest.New(t)
	good := repo.Commit("web", map[string]string{
		"apps/gitpace.yaml": "apps:\n- match: web\n  namespace: shop\n",
		"apps/web/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  v: \"1\"\n",
	})
	bad := repo.Commit("typo", map[string]string{"apps/gitpace.yaml": "apps:\n- match: web\n  namespace: shop\n  helm: {valueFiles: [x.yaml]}\n"})
	render := func(rev string) (string, string, int) {
		return gp(t, ctx, "render", "--repo", repo.Dir, "--path", "apps", "--rev", rev, "--offline")
	}
	out, errOut, code := render(good)
	if code != 0 || !strings.Contains(out, "name: web") {
		t.Fatalf("render of the good revision: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = render(bad)
	if code != 1 || strings.TrimSpace(out) != "" || !strings.Contains(errOut, "apps/gitpace.yaml: ") || !strings.Contains(errOut, "valueFiles") {
		t.Errorf("render of the invalid gitpace.yaml: exit %d, want 1, nothing printed, the file and field named\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
