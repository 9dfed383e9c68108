package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

// TestSeedRolloutThroughGit: the first commit creates the seed's
// Deployment; a commit changing image and port rolls it within
// replicas+maxSurge and replicas-maxUnavailable at every observed moment;
// history shows both revisions with their commits, and the ReplicaSet carries
// the commit as change-cause (what `kubectl rollout history` prints).
func TestSeedRolloutThroughGit(t *testing.T) {
	f := newFixture(t)
	c1 := f.repo.Commit("deploy test v1.1.0", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml")})
	f.run()
	f.eventually("v1.1.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })
	f.eventually("app Synced", time.Minute, func() bool { st := f.appState("web"); return st != nil && st.Phase == state.Synced })

	pw := testenv.WatchDeploymentPods(t, f.kube, f.ns, "app=test")
	c2 := f.repo.Commit("test: v1.1.1 on port 8888", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-1.yaml")})
	f.eventually("v1.1.1 rolled out", 2*time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV1) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pw.Until(ctx, "only 3 pods of v1.1.1", func(pods []corev1.Pod) bool {
		for _, p := range pods {
			if p.Spec.Containers[0].Image != imageV1 {
				return false
			}
		}
		return len(pods) == 3
	}); err != nil {
		t.Fatal(err)
	}
	_, minReady := pw.Extremes()
	maxPods, maxRaw, err := pw.Intended()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("max pods %d (%d counting pods of scaled-down ReplicaSets not yet deleted), min ready %d", maxPods, maxRaw, minReady)
	if maxPods > 4 || minReady < 2 {
		t.Errorf("bounds broken: max pods %d (limit 4), min ready %d (floor 2)", maxPods, minReady)
	}
	if d := f.deployment("test"); d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 8888 {
		t.Errorf("port not updated: %+v", d.Spec.Template.Spec.Containers[0].Ports)
	}
	f.eventually("history settled", time.Minute, func() bool {
		st := f.appState("web")
		return len(st.History) == 2 && st.History[1].Outcome == state.RolledOut
	})
	st := f.appState("web")
	if st.History[0].Revision.Commit != c1 || st.History[1].Revision.Commit != c2 {
		t.Errorf("history commits = %s, %s; want %s, %s", st.History[0].Revision.Commit, st.History[1].Revision.Commit, c1, c2)
	}
	if st.Applied.Commit != c2 || st.Applied.Subject != "test: v1.1.1 on port 8888" || st.Applied.Author == "" {
		t.Errorf("applied revision = %+v", st.Applied)
	}
	causes := map[string]string{}
	for _, rs := range f.replicaSets("app=test") {
		causes[rs.Annotations["deployment.kubernetes.io/revision"]] = rs.Annotations["kubernetes.io/change-cause"]
	}
	if !strings.HasPrefix(causes["1"], "gitpace "+c1[:7]) || causes["2"] != "gitpace "+c2[:7]+": test: v1.1.1 on port 8888" {
		t.Errorf("change-causes by revision = %q", causes)
	}
	if !strings.Contains(f.out.String(), `deployment "test" successfully rolled out`) {
		t.Errorf("progress lines lack kubectl's wording:\n%s", f.out.String())
	}
}

// TestPauseMarkerFreezesRollout: PAUSE committed mid-rollout (slow
// readiness) sets spec.paused; the new ReplicaSet does not grow while
// paused, even after its pods are Ready; removing PAUSE completes it.
func TestPauseMarkerFreezesRollout(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("v1.1.0", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml")})
	f.run()
	f.eventually("v1.1.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })

	f.repo.Commit("v1.1.1, slow pods", map[string]string{"apps/web/deployment.yaml": withReadyDelay(seed(t, "test1-1-1.yaml"), "4s")})
	f.eventually("rollout started", time.Minute, func() bool {
		d := f.deployment("test")
		return d.Spec.Template.Spec.Containers[0].Image == imageV1 && d.Status.UpdatedReplicas > 0
	})
	if _, err := sources.Pause(f.repo.Dir, "apps", "web", "hold for review"); err != nil {
		t.Fatal(err)
	}
	// The controller may finish a scale-up it was already making when the
	// pause landed (as with kubectl rollout pause); count from the moment it
	// has observed the paused generation.
	f.eventually("pause observed by the controller", 30*time.Second, func() bool {
		d := f.deployment("test")
		return d.Spec.Paused && d.Status.ObservedGeneration >= d.Generation
	})
	f.eventually("app Paused", 30*time.Second, func() bool { return f.appState("web").Phase == state.Paused })
	d := f.deployment("test")
	if rolledOut(d, imageV1) {
		t.Fatal("rollout finished before the pause could freeze it; the test needs slower pods")
	}
	// What the controller decided for the new ReplicaSet (its spec; the
	// status may still be catching up with it).
	newRS := func() appsv1.ReplicaSet {
		for _, rs := range f.replicaSets("app=test") {
			if rs.Spec.Template.Spec.Containers[0].Image == imageV1 {
				return rs
			}
		}
		t.Fatal("no ReplicaSet of v1.1.1")
		return appsv1.ReplicaSet{}
	}
	frozen := *newRS().Spec.Replicas
	// Wait until the in-flight new pods are Ready and the controller has
	// synced the Deployment since (its status counts them Ready): an
	// unpaused controller would now scale the new ReplicaSet up.
	f.eventually("in-flight pods Ready under pause", time.Minute, func() bool {
		d, rs := f.deployment("test"), newRS()
		return d.Status.ObservedGeneration >= d.Generation && rs.Status.Replicas == *rs.Spec.Replicas &&
			rs.Status.ReadyReplicas == *rs.Spec.Replicas && d.Status.ReadyReplicas == d.Status.Replicas
	})
	if d, rs := f.deployment("test"), newRS(); *rs.Spec.Replicas != frozen || rolledOut(d, imageV1) {
		t.Fatalf("rollout moved while paused: new ReplicaSet %d -> %d replicas", frozen, *rs.Spec.Replicas)
	}
	if st := f.appState("web"); !strings.Contains(st.Reason, "hold for review") {
		t.Errorf("status reason %q lacks the PAUSE text", st.Reason)
	}
	// Frozen before it finished: Suspended (README "Health"), not
	// Progressing as kstatus reads the DeploymentPaused condition.
	f.eventually("health Suspended", 30*time.Second, func() bool { return f.appState("web").Health == health.Suspended })

	if _, err := sources.Resume(f.repo.Dir, "apps", "web"); err != nil {
		t.Fatal(err)
	}
	f.eventually("rollout completed after resume", 2*time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV1) })
	if f.deployment("test").Spec.Paused {
		t.Error("Deployment still paused after PAUSE was removed")
	}
}

// TestRevertRollsBack: `git revert` of the image change rolls back to
// v1.1.0 by reusing the old ReplicaSet, and status reports a rollback to
// revision 1.
func TestRevertRollsBack(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("v1.1.0", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml")})
	f.run()
	f.eventually("v1.1.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })
	c2 := f.repo.Commit("v1.1.1", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-1.yaml")})
	f.eventually("v1.1.1 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV1) })
	rsBefore := f.replicaSets("app=test")
	if len(rsBefore) != 2 {
		t.Fatalf("%d ReplicaSets before revert, want 2", len(rsBefore))
	}
	if _, err := sources.Revert(f.repo.Dir, []string{c2}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("rolled back to v1.1.0", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })
	rsAfter := f.replicaSets("app=test")
	if len(rsAfter) != 2 {
		t.Fatalf("%d ReplicaSets after revert, want the 2 old ones reused", len(rsAfter))
	}
	for _, rs := range rsAfter {
		if rs.Spec.Template.Spec.Containers[0].Image == imageV0 && rs.Annotations["deployment.kubernetes.io/revision"] != "3" {
			t.Errorf("old ReplicaSet %s has revision %s, want 3 (reused)", rs.Name, rs.Annotations["deployment.kubernetes.io/revision"])
		}
	}
	f.eventually("history shows rollback", time.Minute, func() bool {
		st := f.appState("web")
		return len(st.History) == 3 && st.History[2].Outcome == state.RolledBack
	})
	if e := f.appState("web").History[2]; e.RollbackTo != 1 || !strings.Contains(e.Message, "rollback to revision 1") {
		t.Errorf("revert entry = %+v, want a rollback to revision 1", e)
	}
}

// TestMalformedManifestRejected: a commit with a broken file is rejected
// whole with an error naming the file and line; nothing of it is applied; the
// previous revision stays in force; the next good commit applies.
func TestMalformedManifestRejected(t *testing.T) {
	f := newFixture(t)
	good := f.repo.Commit("v1.1.0", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml")})
	f.run()
	f.eventually("v1.1.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })

	bad := f.repo.Commit("broken", map[string]string{
		"apps/web/deployment.yaml": seed(t, "test1-1-1.yaml"),
		"apps/web/config.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: [unclosed\n",
	})
	f.eventually("revision rejected", 30*time.Second, func() bool {
		st := f.appState("web")
		return st.Rejected != nil && st.Rejected.Revision.Commit == bad
	})
	st := f.appState("web")
	if !strings.Contains(st.Rejected.Error, "apps/web/config.yaml:") || st.Phase != state.Failed {
		t.Errorf("rejection = %q (phase %s); want it to name apps/web/config.yaml with a line", st.Rejected.Error, st.Phase)
	}
	if st.Applied.Commit != good {
		t.Errorf("applied = %s, want the previous good %s", st.Applied.Commit, good)
	}
	if img := f.deployment("test").Spec.Template.Spec.Containers[0].Image; img != imageV0 {
		t.Errorf("image = %s: part of the rejected revision was applied", img)
	}
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "cfg", metav1.GetOptions{}); err == nil {
		t.Error("ConfigMap of the rejected revision exists")
	}

	fixed := f.repo.Commit("fixed", map[string]string{
		"apps/web/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: b\n",
	})
	f.eventually("fixed revision applied", time.Minute, func() bool {
		st := f.appState("web")
		return st.Applied.Commit == fixed && st.Rejected == nil && rolledOut(f.deployment("test"), imageV1)
	})
}

// TestUnknownKindAndServerValidation: a kind the server does not serve and
// an object the API server rejects (dry run) both reject the revision with
// the object named; nothing is applied.
func TestUnknownKindAndServerValidation(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("cm", map[string]string{"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\ndata:\n  a: b\n"})
	f.build(nil)
	if err := f.agent.ReconcileOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]map[string]string{
		"unknown kind": {"apps/web/x.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"},
		"invalid":      {"apps/web/x.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: 99999\n"},
	} {
		files["apps/web/cm2.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: new\n"
		c := f.repo.Commit(name, files)
		if err := f.agent.ReconcileOnce(context.Background()); err != nil {
			t.Fatalf("%s: bad input must not be a transient error: %v", name, err)
		}
		st := f.appState("web")
		if st.Rejected == nil || st.Rejected.Revision.Commit != c || !strings.Contains(st.Rejected.Error, "apps/web/x.yaml") {
			t.Errorf("%s: rejection = %+v, want one naming apps/web/x.yaml", name, st.Rejected)
		}
		if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "new", metav1.GetOptions{}); err == nil {
			t.Errorf("%s: ConfigMap from the rejected revision was applied", name)
		}
		f.repo.Commit("drop "+name, map[string]string{"apps/web/x.yaml": gittest.Delete, "apps/web/cm2.yaml": gittest.Delete})
	}
}

// TestRejectedRevisionLeavesChangeCause: a rejected revision must not leave
// its change-cause behind; after it, a revision restoring the applied
// template keeps the commit that made that template.
func TestRejectedRevisionLeavesChangeCause(t *testing.T) {
	f := newFixture(t)
	c1 := f.repo.Commit("v1.1.0", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml")})
	a := f.build(nil)
	ctx := context.Background()
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("v1.1.1 with a bad Service", map[string]string{
		"apps/web/deployment.yaml": seed(t, "test1-1-1.yaml"),
		"apps/web/svc.yaml":        "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: 99999\n",
	})
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if f.appState("web").Rejected == nil {
		t.Fatal("the bad revision was not rejected")
	}
	f.repo.Commit("back to v1.1.0", map[string]string{
		"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml"),
		"apps/web/svc.yaml":        gittest.Delete,
	})
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if cause := f.deployment("test").Annotations["kubernetes.io/change-cause"]; !strings.HasPrefix(cause, "gitpace "+c1[:7]) {
		t.Errorf("change-cause = %q, want the commit that made the template (%s)", cause, c1[:7])
	}
}
