package main_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

// TestRollbackKustomizeBase is the kshop case, run with the real binary
// against a running agent: an overlay's base changed after revision 1,
// with a `gitpace pause` and `gitpace resume` of the overlay in between.
// `gitpace rollback` must revert the base commit (the app's content), not
// the resume (reverting it paused the app again and rolled nothing back):
// the agent records the revert with revision 1's content, the ConfigMap is back at v1,
// and the overlay has no PAUSE.
func TestRollbackKustomizeBase(t *testing.T) {
	t.Parallel()
	cs := testenv.Client(t)
	ns, stateNS := testenv.Namespace(t), testenv.Namespace(t)
	repo := gittest.New(t)
	ctx := within(t, 2*time.Minute)
	const app = "kshop/overlays/staging"
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\ndata:\n  v: " + v + "\n"
	}
	repo.Commit("kshop v1", map[string]string{
		"apps/kshop/base/kustomization.yaml":             "resources:\n  - cm.yaml\n",
		"apps/kshop/base/cm.yaml":                        cm("v1"),
		"apps/kshop/overlays/staging/kustomization.yaml": "resources:\n  - ../../base\nnamePrefix: staging-\n",
	})
	p := startAgent(t, "agent", runArgs(repo.Dir, ns, stateNS)...)
	actx := p.alive(ctx)
	data := func() string {
		c, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "staging-shop", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return c.Data["v"]
	}
	if _, err := untilAppState(actx, cs, stateNS, app, func(a *state.App) bool { return a.Phase == state.Synced && len(a.History) == 1 }); err != nil {
		t.Fatal(err)
	}
	repo.Commit("gitpace: pause "+app, map[string]string{"apps/" + app + "/PAUSE": "hold\n"})
	repo.Commit("gitpace: resume "+app, map[string]string{"apps/" + app + "/PAUSE": gittest.Delete})
	base := repo.Commit("kshop base v2", map[string]string{"apps/kshop/base/cm.yaml": cm("v2")})
	if _, err := untilAppState(actx, cs, stateNS, app, func(a *state.App) bool {
		return a.Phase == state.Synced && len(a.History) == 2 && a.History[1].Revision.Commit == base
	}); err != nil {
		t.Fatal(err)
	}
	if got := data(); got != "v2" {
		t.Fatalf("ConfigMap staging-shop v = %q at revision 2, want v2", got)
	}

	out, errOut, code := gp(t, actx, "rollback", app, "--dir", repo.Dir, "--path", "apps",
		"--kubeconfig", testenv.Kubeconfig(), "--state-namespace", stateNS)
	if code != 0 {
		t.Fatalf("gitpace rollback: exit %d\n%s%s", code, out, errOut)
	}
	head, err := repo.Repo.CommitObject(plumbing.NewHash(repo.Head()))
	if err != nil {
		t.Fatal(err)
	}
	if got := sources.ParseReverts(head.Message); len(got) != 1 || got[0] != base {
		t.Fatalf("rollback commit %q reverts %v, want only the base commit %s", head.Message, got, base[:7])
	}
	if _, err := os.Stat(filepath.Join(repo.Dir, "apps", app, "PAUSE")); !os.IsNotExist(err) {
		t.Errorf("PAUSE after the rollback: %v; want none (a rollback must not pause)", err)
	}
	st, err := untilAppState(actx, cs, stateNS, app, func(a *state.App) bool {
		return a.Phase == state.Synced && len(a.History) == 3
	})
	if err != nil {
		t.Fatal(err)
	}
	if h := st.History; h[2].ContentHash != h[0].ContentHash || h[2].Revision.Commit != head.Hash.String() {
		t.Errorf("history entry 3 = %+v, want the rollback commit %s with revision 1's content %s", h[2], head.Hash.String()[:7], h[0].ContentHash)
	}
	if got := data(); got != "v1" {
		t.Errorf("ConfigMap staging-shop v = %q after the rollback, want v1", got)
	}
}
