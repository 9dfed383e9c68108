package agent_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

const svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: test\nspec:\n  selector:\n    app: test\n  ports:\n  - port: 80\n    targetPort: 8000\n"
const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-config\ndata:\n  greeting: hello\n"

// TestIdleAndRepeatedReconcile: with the head unchanged and no drift, a
// reconcile makes no API request at all; a forced full diff of an unchanged
// revision makes no write request (only reads and dry runs).
func TestIdleAndRepeatedReconcile(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("app", map[string]string{"apps/web/all.yaml": seed(t, "test1-1-0.yaml") + "---\n" + svc + "---\n" + cm})
	a := f.build(nil)
	ctx := context.Background()
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if f.deployment("test") == nil {
		t.Fatal("Deployment not created")
	}

	f.counter.reads.Store(0)
	f.counter.writes.Store(0)
	f.counter.dryRuns.Store(0)
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if r, w, d := f.counter.reads.Load(), f.counter.writes.Load(), f.counter.dryRuns.Load(); r+w+d != 0 {
		t.Errorf("idle reconcile made %d reads, %d writes, %d dry runs; want none", r, w, d)
	}

	// A new agent process (no memory) diffs everything against the cluster.
	// The first one may record the finished rollout (Progressing -> Synced);
	// after that, re-applying the unchanged revision writes nothing, and
	// dry-runs nothing either: the fingerprints in the state still hold
	// against the watch-fed cache (appliers/cache.go).
	f.eventually("rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })
	f.agent = nil
	if err := f.build(nil).ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.appState("web"); st.Phase != state.Synced {
		t.Fatalf("phase after restart = %s, want Synced", st.Phase)
	}
	f.counter.writes.Store(0)
	f.counter.dryRuns.Store(0)
	f.agent = nil
	if err := f.build(nil).ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if w, d := f.counter.writes.Load(), f.counter.dryRuns.Load(); w != 0 || d != 0 {
		t.Errorf("restarted agent on an unchanged revision: %d writes (want 0), %d dry runs (want 0)", w, d)
	}
}

// TestDriftCorrected: `kubectl scale` and `kubectl set image` behind git's
// back are detected from the Deployment watch and reverted to git's values.
func TestDriftCorrected(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("app", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml")})
	f.run()
	f.eventually("v1.1.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })
	ctx := context.Background()
	// kubectl scale deployment test --replicas=5
	if _, err := f.kube.AppsV1().Deployments(f.ns).Patch(ctx, "test", types.MergePatchType,
		[]byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{FieldManager: "kubectl-scale"}); err != nil {
		t.Fatal(err)
	}
	f.eventually("replicas restored to 3", 30*time.Second, func() bool {
		d := f.deployment("test")
		return *d.Spec.Replicas == 3 && d.Generation > 2
	})
	// kubectl set image deployment/test test=evil:1
	if _, err := f.kube.AppsV1().Deployments(f.ns).Patch(ctx, "test", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"test","image":"evil:1"}]}}}}`), metav1.PatchOptions{FieldManager: "kubectl-set"}); err != nil {
		t.Fatal(err)
	}
	f.eventually("image restored", 30*time.Second, func() bool { return rolledOut(f.deployment("test"), imageV0) })
	// kubectl delete deployment test: re-created at generation 1, and a
	// scale of the new object is drift too (what was known of the old one,
	// at a higher generation, must not hide it).
	old := f.deployment("test")
	if err := f.kube.AppsV1().Deployments(f.ns).Delete(ctx, "test", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.eventually("re-created", 30*time.Second, func() bool { d := f.deployment("test"); return d != nil && d.UID != old.UID })
	if _, err := f.kube.AppsV1().Deployments(f.ns).Patch(ctx, "test", types.MergePatchType,
		[]byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{FieldManager: "kubectl-scale"}); err != nil {
		t.Fatal(err)
	}
	f.eventually("replicas of the re-created Deployment restored to 3", 30*time.Second, func() bool {
		d := f.deployment("test")
		return d.UID != old.UID && *d.Spec.Replicas == 3 && d.Generation > 1
	})
	if !strings.Contains(f.out.String(), "drift") {
		t.Errorf("drift not reported:\n%s", f.out.String())
	}
}

// TestWorkloadDriftCorrected: StatefulSets and DaemonSets are watched for
// drift as Deployments are: `kubectl scale sts db --replicas=1` (the scale
// subresource, manager kubectl-scale) and `kubectl set image ds agent`
// are corrected to git's values at once, with no commit and no resync
// (--resync is 1 h here), and reported as drift.
func TestWorkloadDriftCorrected(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("db and agent", map[string]string{
		"apps/db/db.yaml":       workloadYAML("StatefulSet", "db:v1"),
		"apps/agent/agent.yaml": strings.ReplaceAll(workloadYAML("DaemonSet", "db:v1"), "db", "agent"),
	})
	f.run()
	settled := func(app string) bool {
		st := f.appState(app)
		return st != nil && st.Phase == state.Synced && st.Health == health.Healthy
	}
	f.eventually("db and agent Synced and Healthy", 2*time.Minute, func() bool { return settled("db") && settled("agent") })
	ctx := context.Background()
	sts := func() *appsv1.StatefulSet {
		s, err := f.kube.AppsV1().StatefulSets(f.ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// kubectl scale sts db --replicas=1
	scaled, err := f.kube.AppsV1().StatefulSets(f.ns).UpdateScale(ctx, "db",
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: f.ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 1}},
		metav1.UpdateOptions{FieldManager: "kubectl-scale"})
	if err != nil {
		t.Fatal(err)
	}
	if scaled.Spec.Replicas != 1 {
		t.Fatalf("scale wrote %d replicas, want 1", scaled.Spec.Replicas)
	}
	f.eventually("StatefulSet replicas restored to git's 3", 30*time.Second, func() bool {
		s := sts()
		return *s.Spec.Replicas == 3 && s.Generation > scaled.Generation
	})
	// The pods removed by the scale come back (3 s to Ready each): the
	// app is not Healthy meanwhile.
	f.eventually("db Progressing while its pods come back", 30*time.Second, func() bool {
		st := f.appState("db")
		return st.Health == health.Progressing && sts().Status.ReadyReplicas < 3
	})
	// kubectl set image ds/agent agent=evil:1
	if _, err := f.kube.AppsV1().DaemonSets(f.ns).Patch(ctx, "agent", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":"evil:1"}]}}}}`), metav1.PatchOptions{FieldManager: "kubectl-set"}); err != nil {
		t.Fatal(err)
	}
	f.eventually("DaemonSet image restored to git's", 30*time.Second, func() bool {
		d, err := f.kube.AppsV1().DaemonSets(f.ns).Get(ctx, "agent", metav1.GetOptions{})
		return err == nil && d.Spec.Template.Spec.Containers[0].Image == "agent:v1" && d.Generation >= 3
	})
	out := f.out.String()
	for _, w := range []string{"app db: drift: StatefulSet/" + f.ns + "/db", "app agent: drift: DaemonSet/" + f.ns + "/agent"} {
		if !strings.Contains(out, w) {
			t.Errorf("agent output lacks %q:\n%s", w, out)
		}
	}
	f.eventually("db Synced and Healthy with 3 Ready pods", 2*time.Minute, func() bool { return settled("db") && sts().Status.ReadyReplicas == 3 })
}

// TestPruneAfterApply: an object removed from git is deleted after the rest
// of the revision applied; a removed app directory is pruned whole.
func TestPruneAfterApply(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("two apps", map[string]string{
		"apps/web/all.yaml": svc + "---\n" + cm,
		"apps/api/cm.yaml":  strings.ReplaceAll(cm, "test-config", "api-config"),
	})
	a := f.build(nil)
	ctx := context.Background()
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	get := func(name string) error {
		_, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}
	if get("test-config") != nil || get("api-config") != nil {
		t.Fatal("objects not created")
	}
	f.repo.Commit("drop config and api", map[string]string{"apps/web/all.yaml": svc, "apps/api/cm.yaml": gittest.Delete})
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if get("test-config") == nil || get("api-config") == nil {
		t.Error("objects removed from git were not pruned")
	}
	if _, err := f.kube.CoreV1().Services(f.ns).Get(ctx, "test", metav1.GetOptions{}); err != nil {
		t.Errorf("the Service still in git was deleted: %v", err)
	}
	if st := f.appState("api"); st != nil {
		t.Errorf("state of removed app api still present: %+v", st)
	}
}

// TestOnceExitStatus: run --once's library call fails on a rejected revision
// and succeeds in sync.
func TestOnceExitStatus(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("cm", map[string]string{"apps/web/cm.yaml": cm})
	a := f.build(nil)
	if err := a.ReconcileAndReport(context.Background()); err != nil {
		t.Fatalf("in sync: %v", err)
	}
	f.repo.Commit("bad", map[string]string{"apps/web/cm.yaml": "kind: ConfigMap\n"})
	err := a.ReconcileAndReport(context.Background())
	if err == nil || !strings.Contains(err.Error(), "apps/web/cm.yaml") {
		t.Fatalf("error = %v, want one naming apps/web/cm.yaml", err)
	}
}

// TestSourceAndAPIServerOutages: the git remote becoming unreachable and the
// API server restarting while the agent runs: it keeps the last good state,
// retries, and catches up when they return. Uses a private control plane.
func TestSourceAndAPIServerOutages(t *testing.T) {
	c := testenv.Private(t)
	rc, err := c.RestConfig()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.ns, f.stateNS = "outage", "outage-state"
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	f.kube = kube
	for _, ns := range []string{f.ns} {
		if _, err := kube.CoreV1().Namespaces().Create(context.Background(), nsObj(ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A bare remote served over file://, mirrored by the agent.
	remote := t.TempDir() + "/remote.git"
	f.repo.Commit("cm v1", map[string]string{"apps/web/cm.yaml": cm})
	if err := cloneBare(f.repo.Dir, remote); err != nil {
		t.Fatal(err)
	}
	src, err := sources.NewGitSource(sources.GitConfig{URL: "file://" + remote, Branch: "main", Path: "apps", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Source: src, Rest: rc, StateNamespace: f.stateNS, DefaultNamespace: f.ns,
		Interval: 200 * time.Millisecond, Resync: time.Hour, Out: f.out, Log: f.logger()})
	if err != nil {
		t.Fatal(err)
	}
	f.agent = a
	f.run()
	value := func() string {
		cmo, err := kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "test-config", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return cmo.Data["greeting"]
	}
	f.eventually("first revision applied", time.Minute, func() bool { return value() == "hello" })

	// Remote unreachable.
	if err := os.Rename(remote, remote+".away"); err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("cm v2", map[string]string{"apps/web/cm.yaml": strings.Replace(cm, "hello", "v2", 1)})
	if err := pushBare(f.repo.Dir, remote+".away"); err != nil {
		t.Fatal(err)
	}
	f.eventually("source error reported", 30*time.Second, func() bool { return strings.Contains(f.logs(), "source") })
	if value() != "hello" {
		t.Fatal("state changed while the remote was unreachable")
	}
	if err := os.Rename(remote+".away", remote); err != nil {
		t.Fatal(err)
	}
	f.eventually("caught up after the remote returned", time.Minute, func() bool { return value() == "v2" })

	// API server down: a new commit waits; the agent survives; it catches up.
	if err := c.StopProcess("kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("cm v3", map[string]string{"apps/web/cm.yaml": strings.Replace(cm, "hello", "v3", 1)})
	if err := pushBare(f.repo.Dir, remote); err != nil {
		t.Fatal(err)
	}
	f.eventually("API errors retried", 30*time.Second, func() bool { return strings.Count(f.logs(), "reconcile failed") >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.StartProcess(ctx, "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	f.eventually("caught up after the API server returned", 2*time.Minute, func() bool { return value() == "v3" })
	st, err := state.NewStore(kube, f.stateNS).Find(context.Background(), "web")
	if err != nil || st == nil || !strings.HasPrefix(st.Applied.Subject, "cm v3") {
		t.Fatalf("state after outage = %+v, %v", st, err)
	}
}

func nsObj(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// cloneBare makes a bare copy of the repository at src in dst and names it
// remote "origin" of src, so pushBare can update it.
func cloneBare(src, dst string) error {
	if _, err := git.PlainClone(dst, true, &git.CloneOptions{URL: "file://" + src}); err != nil {
		return err
	}
	repo, err := git.PlainOpen(src)
	if err != nil {
		return err
	}
	_, err = repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{"file://" + dst}})
	return err
}

// pushBare pushes src's main branch to the bare repository at dst.
func pushBare(src, dst string) error {
	repo, err := git.PlainOpen(src)
	if err != nil {
		return err
	}
	if err := repo.DeleteRemote("origin"); err != nil {
		return err
	}
	if _, err := repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{"file://" + dst}}); err != nil {
		return err
	}
	return sources.Push(context.Background(), src, "origin", sources.Auth{})
}

// TestOnceReportsRevisionHeldByPause: `run --once` (ReconcileAndReport)
// exits in error when PAUSE holds an app's new revision, and the app's
// reason names the waiting revision; a paused app with nothing new is no
// error. Before, a paused app always counted as applied (exit 0).
func TestOnceReportsRevisionHeldByPause(t *testing.T) {
	f := newFixture(t)
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w-a\ndata:\n  v: \"" + v + "\"\n"
	}
	f.repo.Commit("v2", map[string]string{"apps/w-a/cm.yaml": cm("2")})
	f.build(nil)
	ctx := context.Background()
	if err := f.agent.ReconcileAndReport(ctx); err != nil {
		t.Fatalf("first run: %v", err)
	}
	f.repo.Commit("pause w-a", map[string]string{"apps/w-a/PAUSE": "check\n"})
	if err := f.agent.ReconcileAndReport(ctx); err != nil {
		t.Fatalf("paused with nothing new: %v, want no error", err)
	}
	v3 := f.repo.Commit("v3", map[string]string{"apps/w-a/cm.yaml": cm("3")})
	err := f.agent.ReconcileAndReport(ctx)
	if err == nil || !strings.Contains(err.Error(), "app w-a: Paused: revision "+v3[:7]+" waits: paused by") {
		t.Errorf("paused with a new revision: %v, want an error naming it", err)
	}
	if got := f.configMapValue("w-a"); got != "2" {
		t.Errorf("w-a = %q while paused, want 2", got)
	}
	if st := f.appState("w-a"); st.Phase != state.Paused || !strings.HasPrefix(st.Reason, "revision "+v3[:7]+" waits: paused by") {
		t.Errorf("w-a: %s %q", st.Phase, st.Reason)
	}
}
