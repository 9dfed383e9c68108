package agent_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

// appDeployment is a one-replica Deployment named name whose pod takes
// readyDelay to become Ready (kwok), or never does with neverReady.
func appDeployment(name, image, readyDelay string, neverReady bool) string {
	extra := ""
	if neverReady {
		extra = "        " + neverReadyLabel + ": \"true\"\n"
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 1
  progressDeadlineSeconds: 6
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      annotations: {pod-ready.stage.kwok.x-k8s.io/delay: "%[3]s"}
      labels:
        app: %[1]s
%[4]s    spec:
      containers:
      - name: app
        image: %[2]s
`, name, image, readyDelay, extra)
}

// deploymentLog records, in order, each change of the test namespace's
// Deployments: image of the template and whether it is rolled out.
type deploymentLog struct {
	mu     sync.Mutex
	events []deploymentEvent
}

type deploymentEvent struct {
	at        time.Time
	name      string
	image     string
	rolledOut bool
}

func (f *fixture) watchDeployments() *deploymentLog {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	w, err := f.kube.AppsV1().Deployments(f.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	l := &deploymentLog{}
	go func() {
		for ev := range w.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			img := d.Spec.Template.Spec.Containers[0].Image
			l.mu.Lock()
			l.events = append(l.events, deploymentEvent{at: time.Now(), name: d.Name, image: img, rolledOut: rolledOut(d, img)})
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *deploymentLog) snapshot() []deploymentEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]deploymentEvent(nil), l.events...)
}

// first returns the first event matching cond, ok false when none did.
func (l *deploymentLog) first(cond func(deploymentEvent) bool) (deploymentEvent, bool) {
	for _, e := range l.snapshot() {
		if cond(e) {
			return e, true
		}
	}
	return deploymentEvent{}, false
}

// TestDependsOnJobGatesApp: web dependsOn db, whose revision is a Job
// (completed by kwok after 4 s). web's ConfigMap is not created before the
// Job completed; meanwhile web's status says what it waits for.
func TestDependsOnJobGatesApp(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("db migration and web", map[string]string{
		"apps/gitpace.yaml":  "apps:\n- match: web\n  dependsOn: [db]\n",
		"apps/db/job.yaml":   migrateJob,
		"apps/web/conf.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  mode: new\n",
	})
	f.run()
	f.eventually("web waits for db", time.Minute, func() bool {
		st := f.appState("web")
		return st != nil && st.Phase == state.OutOfSync && strings.Contains(st.Reason, "app db, which it dependsOn, is not Healthy")
	})
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "web", metav1.GetOptions{}); err == nil {
		t.Fatal("web's ConfigMap exists while it waits for db")
	}
	f.eventually("web Synced", time.Minute, func() bool {
		st := f.appState("web")
		return st != nil && st.Phase == state.Synced
	})
	cm, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.kube.BatchV1().Jobs(f.ns).Get(context.Background(), "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	complete := false
	for _, c := range j.Status.Conditions {
		complete = complete || c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue
	}
	if !complete || j.Status.CompletionTime == nil || cm.CreationTimestamp.Before(j.Status.CompletionTime) {
		t.Errorf("web's ConfigMap created %s; the Job completed %v (%v): want the ConfigMap after", cm.CreationTimestamp, j.Status.CompletionTime, complete)
	}
}

// TestDependsOnCycle: a → b → a is an error naming the cycle on both apps
// (nothing of theirs is applied); c, which depends on a, waits; d, outside
// the cycle, applies. Breaking the cycle in gitpace.yaml applies them all.
func TestDependsOnCycle(t *testing.T) {
	f := newFixture(t)
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  k: v\n"
	}
	f.repo.Commit("cycle", map[string]string{
		"apps/gitpace.yaml": "apps:\n- match: a\n  dependsOn: [b]\n- match: b\n  dependsOn: [a]\n- match: c\n  dependsOn: [a]\n",
		"apps/a/cm.yaml":    cm("a"), "apps/b/cm.yaml": cm("b"), "apps/c/cm.yaml": cm("c"), "apps/d/cm.yaml": cm("d"),
	})
	f.build(nil)
	ctx := context.Background()
	_ = f.agent.ReconcileOnce(ctx)
	for _, app := range []string{"a", "b"} {
		st := f.appState(app)
		if st.Phase != state.Failed || st.Rejected == nil || !strings.Contains(st.Rejected.Error, "apps/gitpace.yaml: apps[].dependsOn: dependency cycle a → b → a") {
			t.Errorf("app %s: %s %q; want Failed naming apps/gitpace.yaml and the cycle a → b → a", app, st.Phase, st.Reason)
		}
	}
	if st := f.appState("c"); st.Phase != state.OutOfSync || !strings.Contains(st.Reason, "app a, which it dependsOn") {
		t.Errorf("app c: %s %q; want waiting for a", st.Phase, st.Reason)
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			t.Errorf("ConfigMap %s applied though its app is on or behind a cycle", name)
		}
	}
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "d", metav1.GetOptions{}); err != nil {
		t.Errorf("d (no dependsOn) not applied: %v", err)
	}

	f.repo.Commit("b first", map[string]string{"apps/gitpace.yaml": "apps:\n- match: a\n  dependsOn: [b]\n- match: c\n  dependsOn: [a]\n"})
	for range 3 { // b, then a, then c: each round brings the next
		_ = f.agent.ReconcileOnce(ctx)
	}
	for _, name := range []string{"a", "b", "c"} {
		if st := f.appState(name); st.Phase != state.Synced {
			t.Errorf("app %s after the cycle was broken: %s %q", name, st.Phase, st.Reason)
		}
	}
	a, errA := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "a", metav1.GetOptions{})
	c, errC := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "c", metav1.GetOptions{})
	if errA != nil || errC != nil {
		t.Fatalf("a: %v, c: %v", errA, errC)
	}
	if c.CreationTimestamp.Before(&a.CreationTimestamp) {
		t.Errorf("c created %s before a %s", c.CreationTimestamp, a.CreationTimestamp)
	}
}

// TestWaves: one commit bumps the image of five apps in three waves:
// canary-1 (interval 3s), eu-1..3 (maxApps 1), us-1 (manual). The eu apps
// start only 3 s after canary-1 is rolled out, never two at once; us-1
// waits for `gitpace promote --wave 3`, which releases it.
func TestWaves(t *testing.T) {
	f := newFixture(t)
	apps := []string{"canary-1", "eu-1", "eu-2", "eu-3", "us-1"}
	files := func(image string) map[string]string {
		m := map[string]string{}
		for _, a := range apps {
			m["apps/"+a+"/deploy.yaml"] = appDeployment(a, image, "1s", false)
		}
		return m
	}
	f.repo.Commit("v0", files(imageV0))
	f.run()
	f.eventually("every app rolled out at v0", 2*time.Minute, func() bool {
		for _, a := range apps {
			if st := f.appState(a); st == nil || st.Phase != state.Synced || st.Health != "Healthy" {
				return false
			}
		}
		return true
	})
	log := f.watchDeployments()
	bump := files(imageV1)
	bump["apps/gitpace.yaml"] = `waves:
- apps: ["canary-*"]
  interval: 3s
- apps: ["eu-*"]
  maxApps: 1
- apps: ["*"]
  manual: true
`
	f.repo.Commit("v1 everywhere, in waves", bump)
	f.agent.Trigger()
	f.eventually("us-1 waits for promote --wave 3", 2*time.Minute, func() bool {
		st := f.appState("us-1")
		return st != nil && strings.Contains(st.Reason, "wave 3 of 3 is manual: waits for `gitpace promote --wave 3`")
	})
	for _, a := range apps[:4] {
		f.eventually(a+" rolled out at v1", time.Minute, func() bool { return rolledOut(f.deployment(a), imageV1) })
	}
	canaryDone, ok := log.first(func(e deploymentEvent) bool { return e.name == "canary-1" && e.image == imageV1 && e.rolledOut })
	if !ok {
		t.Fatal("no event of canary-1 rolled out at v1")
	}
	euStart, _ := log.first(func(e deploymentEvent) bool { return strings.HasPrefix(e.name, "eu-") && e.image == imageV1 })
	// One watch stream, in the server's order: wave 2 came after canary-1's
	// rollout. The interval is counted from ReadyAt, when the agent saw
	// canary-1 Synced and Healthy (after the rollout, on this process's
	// clock): eu's template change was written, and seen here, at least 3s
	// after it. (Measured from this watch's receipt of the rollout instead,
	// the gap shrinks by however late that one event was delivered.)
	canary := f.appState("canary-1")
	if canary.ReadyHash != canary.ContentHash || canary.ReadyAt.IsZero() {
		t.Fatalf("canary-1: ready at %s for content %s, want its current content %s", canary.ReadyAt, canary.ReadyHash, canary.ContentHash)
	}
	if !euStart.at.After(canaryDone.at) {
		t.Errorf("wave 2 (%s) started before canary-1 rolled out", euStart.name)
	}
	if gap := euStart.at.Sub(canary.ReadyAt); gap < 3*time.Second {
		t.Errorf("wave 2 (%s) started %s after canary-1 was Synced and Healthy; want the 3s interval", euStart.name, gap)
	}
	// maxApps 1: at no point are two eu apps at v1 and not rolled out.
	rolling := map[string]bool{}
	for _, e := range log.snapshot() {
		if !strings.HasPrefix(e.name, "eu-") {
			continue
		}
		rolling[e.name] = e.image == imageV1 && !e.rolledOut
		n := 0
		for _, r := range rolling {
			if r {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("%d eu apps rolling at once at %s (maxApps 1): %v", n, e.at.Format("15:04:05.000"), rolling)
		}
	}
	if d := f.deployment("us-1"); d.Spec.Template.Spec.Containers[0].Image != imageV0 {
		t.Fatalf("us-1 at %s before its manual wave was promoted", d.Spec.Template.Spec.Containers[0].Image)
	}
	st := f.appState("us-1")
	if st.Wave == nil || st.Wave.Index != 3 || st.Wave.Of != 3 || !st.Wave.Manual || st.Wave.Rollout == "" {
		t.Fatalf("us-1 wave = %+v", st.Wave)
	}
	// Drift correction does not wait: us-1's Deployment deleted by hand
	// while its new revision waits comes back, at the revision in force.
	if err := f.kube.AppsV1().Deployments(f.ns).Delete(context.Background(), "us-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.eventually("us-1 re-created at v0 while its wave waits", time.Minute, func() bool { return rolledOut(f.deployment("us-1"), imageV0) })
	if st := f.appState("us-1"); !strings.Contains(st.Reason, "gitpace promote --wave 3") {
		t.Fatalf("us-1 after the drift: %s %q; want still waiting for the promote", st.Phase, st.Reason)
	}
	// A stale approval (another rollout) releases nothing.
	f.repo.Commit("stale approval", map[string]string{"apps/" + sources.WavePromoteFile: "waves:\n- wave: 3\n  rollout: w3-00000000\n"})
	f.agent.Trigger()
	f.eventually("the stale approval seen", time.Minute, func() bool {
		st := f.appState("us-1")
		return st.Applied != nil && strings.Contains(st.Reason, f.repo.Head()[:7])
	})
	if d := f.deployment("us-1"); d.Spec.Template.Spec.Containers[0].Image != imageV0 {
		t.Fatal("a stale approval released wave 3")
	}
	if _, err := sources.PromoteWave(f.repo.Dir, "apps", 3, st.Wave.Rollout); err != nil {
		t.Fatal(err)
	}
	f.agent.Trigger()
	f.eventually("us-1 rolled out at v1 after promote --wave 3", time.Minute, func() bool { return rolledOut(f.deployment("us-1"), imageV1) })

	// A return to earlier content (a revert; a Deployment's template
	// matching revision 1) is not held by its manual wave.
	f.repo.Commit("revert us-1 to v0", map[string]string{"apps/us-1/deploy.yaml": appDeployment("us-1", imageV0, "1s", false)})
	f.agent.Trigger()
	f.eventually("us-1 back at v0 without a promote", time.Minute, func() bool { return rolledOut(f.deployment("us-1"), imageV0) })

	// An app that leaves git is pruned in its wave: us-1's removal is a
	// new rollout of manual wave 3, which waits for its own promote.
	f.repo.Commit("us-1 leaves git", map[string]string{"apps/us-1/deploy.yaml": gittest.Delete})
	f.agent.Trigger()
	f.eventually("the removal of us-1 waits for promote --wave 3", time.Minute, func() bool {
		st := f.appState("us-1")
		return st != nil && strings.Contains(st.Reason, "removal wave 3 of 3 is manual")
	})
	if f.deployment("us-1") == nil {
		t.Fatal("us-1 pruned before its manual wave was promoted")
	}
	if _, err := sources.PromoteWave(f.repo.Dir, "apps", 3, f.appState("us-1").Wave.Rollout); err != nil {
		t.Fatal(err)
	}
	f.agent.Trigger()
	f.eventually("us-1 pruned after the promote", time.Minute, func() bool { return f.deployment("us-1") == nil })
}

// TestWaveFailureStopsAndReverts: waves a then b, onFailure: revert. One
// commit bumps both; a's new pods never become Ready: its rollout fails,
// b never starts (its status says the waves stopped), and the agent
// commits one revert of the commit, which returns both to v0.
func TestWaveFailureStopsAndReverts(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("v0", map[string]string{
		"apps/gitpace.yaml":  "onFailure: revert\nwaves:\n- apps: [a]\n- apps: [b]\n",
		"apps/a/deploy.yaml": appDeployment("a", imageV0, "0s", false),
		"apps/b/deploy.yaml": appDeployment("b", imageV0, "0s", false),
	})
	f.run()
	f.eventually("a and b rolled out at v0", 2*time.Minute, func() bool {
		return rolledOut(f.deployment("a"), imageV0) && rolledOut(f.deployment("b"), imageV0) &&
			f.appState("b") != nil && f.appState("b").Phase == state.Synced
	})
	log := f.watchDeployments()
	bad := f.repo.Commit("v1 for a and b; a never Ready", map[string]string{
		"apps/a/deploy.yaml": appDeployment("a", imageV1, "0s", true),
		"apps/b/deploy.yaml": appDeployment("b", imageV1, "0s", false),
	})
	f.agent.Trigger()
	// The revert may follow at once: the line stays in the output.
	f.eventually("b says the waves stopped", 2*time.Minute, func() bool {
		return strings.Contains(f.out.String(), "app b: revision "+bad[:7]+" waits: waves stopped: app a of wave 1 failed")
	})
	f.eventually("a revert of the bad commit", time.Minute, func() bool {
		return strings.Contains(f.out.String(), "onFailure revert: committed")
	})
	head := f.repo.Head()
	repo, err := git.PlainOpen(f.repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(head))
	if err != nil {
		t.Fatal(err)
	}
	if got := sources.ParseReverts(c.Message); len(got) != 1 || !strings.HasPrefix(bad, got[0]) {
		t.Fatalf("head %s message %q; want one revert of %s", head[:7], c.Message, bad[:7])
	}
	f.eventually("a back at v0", time.Minute, func() bool { return rolledOut(f.deployment("a"), imageV0) })
	f.eventually("b Synced at v0", time.Minute, func() bool {
		st := f.appState("b")
		return st.Phase == state.Synced && st.Reason == "" && rolledOut(f.deployment("b"), imageV0)
	})
	if e, ok := log.first(func(e deploymentEvent) bool { return e.name == "b" && e.image == imageV1 }); ok {
		t.Errorf("b's template went to v1 at %s though wave 1 failed", e.at.Format("15:04:05.000"))
	}
}

// TestDependsOnHelmAppWithHooks: web dependsOn a Helm app with hooks. The
// content the order between apps expects of the Helm app counts its hooks
// as the agent records it, so web goes once the Helm app is Healthy (it
// once waited forever: the hooks made the two hashes differ).
func TestDependsOnHelmAppWithHooks(t *testing.T) {
	f := newFixture(t)
	files := hookedChart(hookedValues{tag: "1.0.0"})
	files["apps/gitpace.yaml"] = "apps:\n- match: web\n  dependsOn: [" + hookedApp + "]\n"
	files["apps/web/conf.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  k: v\n"
	f.repo.Commit("hooked and web", files)
	f.run()
	f.eventually("web Synced after the Helm app", 3*time.Minute, func() bool {
		st := f.appState("web")
		return st != nil && st.Phase == state.Synced
	})
	if !f.hooksDone(webImage("1.0.0")) {
		t.Errorf("web applied before the Helm app's rollout and hooks were done")
	}
}

// TestWaveRevertOfConfigMapAppNotHeld: an app without workloads (a
// ConfigMap) in a manual wave: its revert to the content of revision 1 is
// applied at once, as a rollback, though no template tells it apart.
func TestWaveRevertOfConfigMapAppNotHeld(t *testing.T) {
	f := newFixture(t)
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  v: " + v + "\n"
	}
	f.repo.Commit("b v0", map[string]string{"apps/gitpace.yaml": "waves:\n- apps: [a]\n- apps: [b]\n  manual: true\n",
		"apps/a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n", "apps/b/cm.yaml": cm("v0")})
	f.build(nil)
	ctx := context.Background()
	_ = f.agent.ReconcileOnce(ctx)
	if _, err := sources.PromoteWave(f.repo.Dir, "apps", 2, f.appState("b").Wave.Rollout); err != nil {
		t.Fatal(err)
	}
	_ = f.agent.ReconcileOnce(ctx)
	data := func() string {
		c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "b", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return c.Data["v"]
	}
	if got := data(); got != "v0" {
		t.Fatalf("b = %q after the promote, want v0", got)
	}
	f.repo.Commit("b v1", map[string]string{"apps/b/cm.yaml": cm("v1")})
	_ = f.agent.ReconcileOnce(ctx)
	if got := data(); got != "v0" {
		t.Fatalf("b = %q before its new rollout was promoted", got)
	}
	if _, err := sources.PromoteWave(f.repo.Dir, "apps", 2, f.appState("b").Wave.Rollout); err != nil {
		t.Fatal(err)
	}
	_ = f.agent.ReconcileOnce(ctx)
	if got := data(); got != "v1" {
		t.Fatalf("b = %q after the second promote, want v1", got)
	}
	f.repo.Commit("Revert \"b v1\"", map[string]string{"apps/b/cm.yaml": cm("v0")})
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatalf("the revert waited: %v", err)
	}
	if got := data(); got != "v0" {
		t.Errorf("b = %q after the revert, want v0 at once", got)
	}
}

// TestWaveGoesOnAfterAFixedRejection: in a maxApps: 1 wave, a broken app
// stops the wave (as documented); the commit that fixes it rolls the
// whole wave on. Before, the stale rejection of the broken content still
// counted as a failure of the fixed content: w-a waited for w-b to
// succeed, and w-b waited for w-a to take the one slot first.
func TestWaveGoesOnAfterAFixedRejection(t *testing.T) {
	f := newFixture(t)
	cm := func(name, v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  v: " + v + "\n"
	}
	apps := []string{"w-a", "w-b", "w-c"}
	files := map[string]string{"apps/gitpace.yaml": "waves:\n- apps: [\"w-*\"]\n  maxApps: 1\n"}
	for _, a := range apps {
		files["apps/"+a+"/cm.yaml"] = cm(a, "v0")
	}
	f.repo.Commit("v0", files)
	f.build(nil)
	ctx := context.Background()
	passes := func(n int) {
		for range n {
			_ = f.agent.ReconcileOnce(ctx) // waits are errors of a pass; the states say the rest
		}
	}
	passes(4)
	for _, a := range apps {
		if got := f.configMapValue(a); got != "v0" {
			t.Fatalf("%s = %q, want v0", a, got)
		}
	}
	f.repo.Commit("w-b broken", map[string]string{"apps/w-b/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w-b\ndata:\n  v: [v1\n"})
	passes(2)
	if st := f.appState("w-b"); st.Rejected == nil {
		t.Fatalf("w-b: %s %s, want its broken revision rejected", st.Phase, st.Reason)
	}
	f.repo.Commit("v1 of w-a and w-c", map[string]string{"apps/w-a/cm.yaml": cm("w-a", "v1"), "apps/w-c/cm.yaml": cm("w-c", "v1")})
	passes(2)
	for _, a := range []string{"w-a", "w-c"} {
		if st := f.appState(a); f.configMapValue(a) != "v0" || !strings.Contains(st.Reason, "waves stopped: app w-b of wave 1") {
			t.Fatalf("%s = %q (%s), want v0 and stopped by w-b", a, f.configMapValue(a), st.Reason)
		}
	}
	f.repo.Commit("fix w-b", map[string]string{"apps/w-b/cm.yaml": cm("w-b", "v1")})
	passes(6)
	for _, a := range apps {
		if got, st := f.configMapValue(a), f.appState(a); got != "v1" || st.Phase != state.Synced {
			t.Errorf("%s = %q, %s: %s; want v1 Synced after the fix", a, got, st.Phase, st.Reason)
		}
	}
}

// TestLaterWaveWaitsForTheWaveBefore: during wave 1's interval, wave 2
// starts at the interval's end, but wave 3 (manual) waits for wave 2 and
// its promote: it has no start time of its own (before, it showed wave
// 2's start as its own, and status's NEXT said "at" that time).
func TestLaterWaveWaitsForTheWaveBefore(t *testing.T) {
	f := newFixture(t)
	cm := func(name, v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  v: " + v + "\n"
	}
	files := map[string]string{}
	for _, a := range []string{"a", "b", "c"} {
		files["apps/"+a+"/cm.yaml"] = cm(a, "v0")
	}
	f.repo.Commit("v0", files)
	f.build(nil)
	ctx := context.Background()
	_ = f.agent.ReconcileOnce(ctx)
	for a := range files {
		files[a] = strings.Replace(files[a], "v0", "v1", 1)
	}
	files["apps/gitpace.yaml"] = "waves:\n- apps: [a]\n  interval: 1h\n- apps: [b]\n- apps: [c]\n  manual: true\n"
	f.repo.Commit("v1 in waves", files)
	for range 3 {
		_ = f.agent.ReconcileOnce(ctx)
	}
	if got := f.configMapValue("a"); got != "v1" {
		t.Fatalf("a = %q, want v1 (wave 1)", got)
	}
	b, c := f.appState("b"), f.appState("c")
	if b.Wave == nil || b.Wave.NextAt == nil || !strings.Contains(b.Reason, "wave 2 of 3 starts at ") {
		t.Errorf("b: %s (wave %+v), want a start time 1h after wave 1", b.Reason, b.Wave)
	}
	if c.Wave == nil || c.Wave.NextAt != nil || !strings.Contains(c.Reason, "wave 3 of 3 waits for wave 2, which starts at ") {
		t.Errorf("c: %s (wave %+v), want waiting for wave 2, with no start time of its own", c.Reason, c.Wave)
	}
	table := f.statusTable()
	if !strings.Contains(table, "the waves before it to be Healthy") {
		t.Errorf("status NEXT of wave 3 is not the waves before it:\n%s", table)
	}
	for _, v := range []string{f.configMapValue("b"), f.configMapValue("c")} {
		if v != "v0" {
			t.Errorf("b or c = %q before their waves", v)
		}
	}
}
