package agent_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/state"
)

const hookedApp = "hooked"

// hookedValues are the values of the "hooked" chart's values.yaml.
type hookedValues struct {
	tag          string
	failMigrate  bool   // the migrate Job fails (activeDeadlineSeconds 1 on a pod kwok never readies)
	migratePol   string // helm.sh/hook-delete-policy of the migrate Job ("": none, Argo CD's default)
	migrateDelay string // kwok's pod-complete delay of the migrate pod
	failSmoke    bool   // the smoke Job fails, as failMigrate
	smokePol     string // helm.sh/hook-delete-policy of the smoke Job ("": hook-succeeded)
}

// hookedChart is a Helm chart with a Deployment "hooked" and three hooks:
// PreSync ConfigMap hooked-schema (weight -5), PreSync Job hooked-migrate
// (weight 0; pre-install and pre-upgrade) and PostSync Job hooked-smoke
// (post-install, post-upgrade; hook-succeeded unless smokePol says).
func hookedChart(v hookedValues) map[string]string {
	if v.migrateDelay == "" {
		v.migrateDelay = "1s"
	}
	if v.smokePol == "" {
		v.smokePol = "hook-succeeded"
	}
	return map[string]string{
		"apps/hooked/Chart.yaml": "apiVersion: v2\nname: hooked\nversion: 0.1.0\n",
		"apps/hooked/values.yaml": fmt.Sprintf("tag: %q\nfailMigrate: %t\nmigratePolicy: %q\nmigrateDelay: %q\nfailSmoke: %t\nsmokePolicy: %q\n",
			v.tag, v.failMigrate, v.migratePol, v.migrateDelay, v.failSmoke, v.smokePol),
		"apps/hooked/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: web
          image: "registry.example/web:{{ .Values.tag }}"
`,
		"apps/hooked/templates/schema.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-schema
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
data:
  version: "{{ .Values.tag }}"
`,
		"apps/hooked/templates/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
{{- with .Values.migratePolicy }}
    helm.sh/hook-delete-policy: {{ . }}
{{- end }}
spec:
  backoffLimit: 0
{{- if .Values.failMigrate }}
  activeDeadlineSeconds: 1
{{- end }}
  template:
    metadata:
      labels:
        app: migrate
{{- if .Values.failMigrate }}
        gitpace.dev/never-ready: "true"
{{- end }}
      annotations:
        pod-complete.stage.kwok.x-k8s.io/delay: {{ .Values.migrateDelay | quote }}
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: "registry.example/web:{{ .Values.tag }}"
`,
		"apps/hooked/templates/smoke.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-smoke
  annotations:
    helm.sh/hook: post-install,post-upgrade
    helm.sh/hook-delete-policy: {{ .Values.smokePolicy }}
spec:
  backoffLimit: 0
{{- if .Values.failSmoke }}
  activeDeadlineSeconds: 1
{{- end }}
  template:
    metadata:
      labels:
        app: smoke
{{- if .Values.failSmoke }}
        gitpace.dev/never-ready: "true"
{{- end }}
    spec:
      restartPolicy: Never
      containers:
        - name: smoke
          image: "registry.example/smoke:{{ .Values.tag }}"
`,
	}
}

func webImage(tag string) string { return "registry.example/web:" + tag }

// deployObs is what the cluster held when the watch saw the Deployment
// take a new image.
type deployObs struct {
	image           string
	migrateUID      types.UID
	migrateComplete bool
	migrateSync     string // the migrate Job's gitpace.dev/hook-sync
	schema          bool   // the PreSync ConfigMap existed
}

// jobObs is a hook Job the watch saw created, with what the cluster held
// then.
type jobObs struct {
	name, sync string
	uid        types.UID
	deployment string // the Deployment's image then
	rolledOut  bool   // the Deployment's rollout of that image had finished
	schema     bool   // (migrate) the PreSync ConfigMap of the same sync existed
}

// hookOrder records, through watches, the order in which the cluster saw
// the hooked chart's objects.
type hookOrder struct {
	mu      sync.Mutex
	deploys []deployObs
	jobs    []jobObs
}

// watchHooks starts the watches of f.ns's Deployments and Jobs; they end
// with the test. At each new Deployment image it reads the migrate Job
// and schema ConfigMap; at each Job created, the Deployment.
func (f *fixture) watchHooks() *hookOrder {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	rec := &hookOrder{}
	dw, err := f.kube.AppsV1().Deployments(f.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	jw, err := f.kube.BatchV1().Jobs(f.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	schemaOf := func(sync string) bool {
		cm, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "hooked-schema", metav1.GetOptions{})
		return err == nil && (sync == "" || cm.Annotations[agent.HookSyncAnnotation] == sync)
	}
	go func() {
		last := ""
		for ev := range dw.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || ev.Type == watch.Deleted || d.Spec.Template.Spec.Containers[0].Image == last {
				continue
			}
			last = d.Spec.Template.Spec.Containers[0].Image
			o := deployObs{image: last, schema: schemaOf("")}
			if j, err := f.kube.BatchV1().Jobs(f.ns).Get(ctx, "hooked-migrate", metav1.GetOptions{}); err == nil {
				o.migrateUID, o.migrateComplete, o.migrateSync = j.UID, jobComplete(j), j.Annotations[agent.HookSyncAnnotation]
			}
			rec.mu.Lock()
			rec.deploys = append(rec.deploys, o)
			rec.mu.Unlock()
		}
	}()
	go func() {
		for ev := range jw.ResultChan() {
			j, ok := ev.Object.(*batchv1.Job)
			if !ok || ev.Type != watch.Added {
				continue
			}
			o := jobObs{name: j.Name, sync: j.Annotations[agent.HookSyncAnnotation], uid: j.UID, schema: schemaOf(j.Annotations[agent.HookSyncAnnotation])}
			if d, err := f.kube.AppsV1().Deployments(f.ns).Get(ctx, hookedApp, metav1.GetOptions{}); err == nil {
				o.deployment = d.Spec.Template.Spec.Containers[0].Image
				o.rolledOut = rolledOut(d, o.deployment)
			}
			rec.mu.Lock()
			rec.jobs = append(rec.jobs, o)
			rec.mu.Unlock()
		}
	}()
	return rec
}

// deploy returns what was seen when the Deployment took image.
func (r *hookOrder) deploy(image string) (deployObs, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.deploys {
		if d.image == image {
			return d, true
		}
	}
	return deployObs{}, false
}

// created returns the Jobs named name seen created, oldest first.
func (r *hookOrder) created(name string) []jobObs {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []jobObs
	for _, j := range r.jobs {
		if j.name == name {
			out = append(out, j)
		}
	}
	return out
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func (f *fixture) job(name string) *batchv1.Job {
	j, err := f.kube.BatchV1().Jobs(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}

// hooksDone: the app's content in force ran its PostSync hooks to success
// and its Deployment rolled image out.
func (f *fixture) hooksDone(image string) bool {
	st := f.appState(hookedApp)
	return st != nil && st.Phase == state.Synced && st.Hooks != nil && st.Hooks.ContentHash == st.ContentHash &&
		st.Hooks.PostSync == state.HookSucceeded && rolledOut(f.deploymentNamed(hookedApp), image)
}

// requireSync checks one sync against what the watches saw: the PreSync
// ConfigMap (weight -5) existed when the migrate Job (weight 0) was
// created; the migrate Job of the sync had completed when the Deployment
// took image; the PostSync smoke Job was created after the Deployment had
// rolled image out, and hook-succeeded deleted it. It returns the migrate
// Job's uid.
func (f *fixture) requireSync(rec *hookOrder, image string) types.UID {
	f.t.Helper()
	st := f.appState(hookedApp)
	d, ok := rec.deploy(image)
	if !ok {
		f.t.Fatalf("the watch never saw the Deployment take %s", image)
	}
	if !d.migrateComplete || d.migrateSync != st.Hooks.Key || !d.schema {
		f.t.Fatalf("when the Deployment took %s: migrate Job uid %q complete=%t sync %q (want complete, sync %q), schema ConfigMap %t: PreSync hooks must finish first",
			image, d.migrateUID, d.migrateComplete, d.migrateSync, st.Hooks.Key, d.schema)
	}
	var migrate *jobObs
	for _, j := range rec.created("hooked-migrate") {
		if j.uid == d.migrateUID {
			migrate = &j
		}
	}
	if migrate == nil || !migrate.schema {
		f.t.Fatalf("migrate Job %s created before the weight -5 ConfigMap of its sync: %+v", d.migrateUID, migrate)
	}
	var smoke *jobObs
	for _, j := range rec.created("hooked-smoke") {
		if j.sync == st.Hooks.Key {
			smoke = &j
		}
	}
	if smoke == nil || smoke.deployment != image || !smoke.rolledOut {
		f.t.Fatalf("PostSync smoke Job of sync %s: %+v; want it created after the Deployment rolled %s out", st.Hooks.Key, smoke, image)
	}
	f.eventually("hook-succeeded deleted the smoke Job", time.Minute, func() bool { return f.job("hooked-smoke") == nil })
	return d.migrateUID
}

// TestHelmHookOrder: a chart's PreSync hooks (a ConfigMap of weight -5,
// then a Job of weight 0) are applied and the Job has completed before
// the Deployment is created, and again before it is updated at the next
// revision; the PostSync Job is created only once the Deployment rolled
// out, and hook-succeeded deletes it; the migrate Job (no delete policy:
// before-hook-creation) stays after its sync and is deleted and created
// anew at the next.
func TestHelmHookOrder(t *testing.T) {
	f := newFixture(t)
	rec := f.watchHooks()
	f.repo.Commit("hooked 1.0.0", hookedChart(hookedValues{tag: "1.0.0"}))
	f.run()
	f.eventually("1.0.0 rolled out and its PostSync hook done", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.0")) })
	uid1 := f.requireSync(rec, webImage("1.0.0"))
	if j := f.job("hooked-migrate"); j == nil || j.UID != uid1 || j.Labels["gitpace.dev/agent"] != f.agent.Name() || j.Annotations["gitpace.dev/app"] != hookedApp {
		t.Fatalf("migrate Job after the sync: %v; want the completed one kept (before-hook-creation deletes it only at the next sync), with gitpace's owner", j)
	}
	if st := f.appState(hookedApp); len(st.Inventory) != 1 {
		t.Errorf("inventory %v, want only the Deployment: hooks are not pruned", st.Inventory)
	}

	f.repo.Commit("hooked 1.0.1", hookedChart(hookedValues{tag: "1.0.1"}))
	f.eventually("1.0.1 rolled out and its PostSync hook done", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.1")) })
	uid2 := f.requireSync(rec, webImage("1.0.1"))
	if uid2 == uid1 {
		t.Fatalf("migrate Job %s not created anew for 1.0.1 (before-hook-creation)", uid1)
	}
	if n := len(rec.created("hooked-migrate")); n != 2 {
		t.Errorf("migrate Job created %d times, want 2 (one per sync)", n)
	}
	if !strings.Contains(f.out.String(), "PreSync hooks succeeded") {
		t.Errorf("agent output says nothing of the PreSync hooks:\n%s", f.out.String())
	}
}

// TestHelmHookFailedPreSync: a PreSync Job that fails (activeDeadlineSeconds
// 1 on a pod kwok never makes Ready: the Job controller fails it with
// DeadlineExceeded) rejects the revision naming the hook and why; the
// Deployment keeps the image in force; hook-failed deletes the Job, and
// it is not run again for the same revision; the next revision runs it
// anew and rolls out.
func TestHelmHookFailedPreSync(t *testing.T) {
	f := newFixture(t)
	rec := f.watchHooks()
	c1 := f.repo.Commit("hooked 1.0.0", hookedChart(hookedValues{tag: "1.0.0"}))
	f.run()
	f.eventually("1.0.0 rolled out", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.0")) })
	d0 := f.deploymentNamed(hookedApp)

	c2 := f.repo.Commit("hooked 1.0.1, failing migration", hookedChart(hookedValues{tag: "1.0.1", failMigrate: true, migratePol: "before-hook-creation,hook-failed"}))
	var st *state.App
	f.eventually("1.0.1 rejected", time.Minute, func() bool {
		st = f.appState(hookedApp)
		return st.Rejected != nil && st.Rejected.Revision.Commit == c2
	})
	want := fmt.Sprintf("PreSync hook Job/%s/hooked-migrate failed: DeadlineExceeded", f.ns)
	if !strings.Contains(st.Rejected.Error, want) || st.Phase != state.Failed || !strings.Contains(st.Reason, want) {
		t.Fatalf("rejection %q, phase %s %q; want Failed naming %q", st.Rejected.Error, st.Phase, st.Reason, want)
	}
	if st.Applied == nil || st.Applied.Commit != c1 {
		t.Fatalf("in force %v, want %s", st.Applied, c1[:7])
	}
	if d := f.deploymentNamed(hookedApp); d.Spec.Template.Spec.Containers[0].Image != webImage("1.0.0") || d.Generation != d0.Generation {
		t.Fatalf("Deployment image %s generation %d, want 1.0.0 untouched (generation %d)", d.Spec.Template.Spec.Containers[0].Image, d.Generation, d0.Generation)
	}
	f.eventually("hook-failed deleted the failed Job", time.Minute, func() bool { return f.job("hooked-migrate") == nil })

	c3 := f.repo.Commit("hooked 1.0.2", hookedChart(hookedValues{tag: "1.0.2"}))
	f.eventually("1.0.2 rolled out", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.2")) })
	f.requireSync(rec, webImage("1.0.2"))
	if st := f.appState(hookedApp); st.Rejected != nil || st.Applied.Commit != c3 {
		t.Fatalf("after 1.0.2: %s", describe(st))
	}
	runs := map[string]int{}
	for _, j := range rec.created("hooked-migrate") {
		runs[j.sync]++
	}
	if len(runs) != 3 {
		t.Errorf("migrate Job runs by sync %v, want one for each of the three syncs", runs)
	}
	for sync, n := range runs {
		if n != 1 {
			t.Errorf("migrate Job of sync %s created %d times, want once (a failed hook is not run again for the same revision)", sync, n)
		}
	}
	if _, ok := rec.deploy(webImage("1.0.1")); ok {
		t.Errorf("the Deployment took the rejected image 1.0.1 at some point")
	}
}

// TestHelmHookFailureNamesItsDocument: a PreSync Job that fails in the
// second document of templates/hooks.yaml is named at that document's
// line, file:line first as objects' errors are, not at the file's first
// line.
func TestHelmHookFailureNamesItsDocument(t *testing.T) {
	f := newFixture(t)
	files := hookedChart(hookedValues{tag: "1.0.0", failMigrate: true})
	schema, migrate := files["apps/hooked/templates/schema.yaml"], files["apps/hooked/templates/migrate.yaml"]
	delete(files, "apps/hooked/templates/schema.yaml")
	delete(files, "apps/hooked/templates/migrate.yaml")
	files["apps/hooked/templates/hooks.yaml"] = schema + "---\n" + migrate
	c1 := f.repo.Commit("hooked 1.0.0, failing migration in the 2nd document of hooks.yaml", files)
	f.run()
	var st *state.App
	f.eventually("1.0.0 rejected", time.Minute, func() bool {
		st = f.appState(hookedApp)
		return st != nil && st.Rejected != nil && st.Rejected.Revision.Commit == c1
	})
	line := strings.Count(schema, "\n") + 2 // after the schema ConfigMap and "---"
	want := fmt.Sprintf("apps/hooked/templates/hooks.yaml:%d: PreSync hook Job/%s/hooked-migrate failed: DeadlineExceeded", line, f.ns)
	if !strings.Contains(st.Rejected.Error, want) || !strings.Contains(st.Reason, want) {
		t.Fatalf("rejection %q, reason %q; want them naming %q", st.Rejected.Error, st.Reason, want)
	}
}

// TestHelmHookFailedPreSyncNotRerunAtStart: a PreSync Job that failed
// (no hook-failed policy: it stays, Failed) is not created again by a new
// agent on the same state, nor by a second one (each is the first pass of
// a process, as `run --once` and a restart are): the same Job uid, no
// other created, and the app Failed naming the hook, not "waits: ...
// running". A resync (--resync and --interval, here 1 s) tries it again: a new Job of
// the same sync. New content runs it anew and rolls out.
func TestHelmHookFailedPreSyncNotRerunAtStart(t *testing.T) {
	f := newFixture(t)
	rec := f.watchHooks()
	f.repo.Commit("hooked 1.0.0", hookedChart(hookedValues{tag: "1.0.0"}))
	f.build(nil)
	stop := f.runStoppable()
	f.eventually("1.0.0 rolled out", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.0")) })
	c2 := f.repo.Commit("hooked 1.0.1, failing migration", hookedChart(hookedValues{tag: "1.0.1", failMigrate: true}))
	var failed *batchv1.Job
	f.eventually("1.0.1 rejected by its failed PreSync Job", time.Minute, func() bool {
		st := f.appState(hookedApp)
		failed = f.job("hooked-migrate")
		return st.Rejected != nil && st.Rejected.Revision.Commit == c2 && failed != nil && !jobComplete(failed) && failed.Status.Failed > 0
	})
	stop()
	key := failed.Annotations[agent.HookSyncAnnotation]
	want := fmt.Sprintf("PreSync hook Job/%s/hooked-migrate failed: DeadlineExceeded", f.ns)
	for i := 1; i <= 2; i++ {
		f.rebuild()
		st := f.passApp(hookedApp)
		if j := f.job("hooked-migrate"); j == nil || j.UID != failed.UID || j.DeletionTimestamp != nil {
			got := "none"
			if j != nil {
				got = fmt.Sprintf("uid %s, deleting %t", j.UID, j.DeletionTimestamp != nil)
			}
			t.Fatalf("start %d: migrate Job %s, want the failed one (%s) kept: a start is no resync", i, got, failed.UID)
		}
		if st.Phase != state.Failed || !strings.HasPrefix(st.Reason, "revision "+c2[:7]+" rejected: ") || !strings.Contains(st.Reason, want) {
			t.Fatalf("start %d: %s; want Failed %q", i, describe(st), want)
		}
	}
	if jobs := rec.created("hooked-migrate"); len(jobs) != 2 || jobs[1].uid != failed.UID {
		t.Fatalf("migrate Jobs created %+v, want 2 (1.0.0, then 1.0.1's failed one)", jobs)
	}

	f.cfg.Interval, f.cfg.Resync = time.Second, time.Second
	f.rebuild()
	stop = f.runStoppable()
	f.eventually("a resync runs the failed hook again", time.Minute, func() bool {
		jobs := rec.created("hooked-migrate")
		return len(jobs) == 3 && jobs[2].sync == key && jobs[2].uid != failed.UID
	})
	stop()

	c3 := f.repo.Commit("hooked 1.0.2", hookedChart(hookedValues{tag: "1.0.2"}))
	f.cfg.Interval, f.cfg.Resync = time.Hour, time.Hour
	f.rebuild()
	f.runStoppable()
	f.eventually("1.0.2 rolled out", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.2")) })
	f.requireSync(rec, webImage("1.0.2"))
	if st := f.appState(hookedApp); st.Rejected != nil || st.Applied.Commit != c3 {
		t.Fatalf("after 1.0.2: %s", describe(st))
	}
}

// TestHelmHookRestart: an agent stopped while a PreSync Job runs, and a
// new one started, waits for the same Job (not re-created, and the
// Deployment not applied before it completed), then runs PostSync; a
// third agent's full pass over the synced revision runs no hook again
// (the PostSync Job, deleted by hook-succeeded, is not re-created).
func TestHelmHookRestart(t *testing.T) {
	f := newFixture(t)
	rec := f.watchHooks()
	f.repo.Commit("hooked 1.0.0", hookedChart(hookedValues{tag: "1.0.0", migrateDelay: "6s"}))
	f.build(nil)
	stop := f.runStoppable()
	var running *batchv1.Job
	f.eventually("migrate Job running", time.Minute, func() bool {
		running = f.job("hooked-migrate")
		return running != nil && running.Status.Active > 0 && !jobComplete(running)
	})
	stop()
	if j := f.job("hooked-migrate"); jobComplete(j) {
		t.Fatalf("migrate Job completed before the agent stopped; the delay is too short for the test")
	}
	if f.deploymentNamed(hookedApp) != nil {
		t.Fatalf("Deployment created while its PreSync hook ran")
	}

	f.rebuild()
	stop = f.runStoppable()
	f.eventually("1.0.0 rolled out after the restart", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.0")) })
	if uid := f.requireSync(rec, webImage("1.0.0")); uid != running.UID {
		t.Fatalf("migrate Job %s, want the one started before the restart (%s)", uid, running.UID)
	}
	stop()

	f.rebuild()
	st := f.passApp(hookedApp)
	if st.Phase != state.Synced || st.Hooks == nil || st.Hooks.PostSync != state.HookSucceeded {
		t.Fatalf("after a full pass of a third agent: %s", describe(st))
	}
	if j := f.job("hooked-migrate"); j == nil || j.UID != running.UID {
		t.Fatalf("migrate Job %v after the third agent's pass, want %s kept", j, running.UID)
	}
	if n := len(rec.created("hooked-migrate")); n != 1 {
		t.Errorf("migrate Job created %d times, want once", n)
	}
	if f.job("hooked-smoke") != nil || len(rec.created("hooked-smoke")) != 1 {
		t.Errorf("PostSync smoke Job created %d times (exists now: %t), want once", len(rec.created("hooked-smoke")), f.job("hooked-smoke") != nil)
	}
}

// TestHelmHookPlan: `gitpace plan` of a revision bringing the chart lists
// its hooks in the order the agent runs them, named Kind/namespace/name,
// with weights, templates and delete policies, and applies none.
func TestHelmHookPlan(t *testing.T) {
	f := newFixture(t)
	head := f.repo.Commit("hooked 1.0.0", hookedChart(hookedValues{tag: "1.0.0"}))
	f.build(nil)
	_, out := f.plan(head)
	// Named Kind/namespace/name as the plan's other objects (the
	// namespace the agent defaults them to).
	want := "hooks run with this apply:\n" +
		"  PreSync ConfigMap/" + f.ns + "/hooked-schema (weight -5, apps/hooked/templates/schema.yaml; delete policy before-hook-creation (default))\n" +
		"  PreSync Job/" + f.ns + "/hooked-migrate (weight 0, apps/hooked/templates/migrate.yaml; delete policy before-hook-creation (default))\n" +
		"  PostSync Job/" + f.ns + "/hooked-smoke (weight 0, apps/hooked/templates/smoke.yaml; delete policy hook-succeeded)\n"
	if !strings.Contains(out, want) {
		t.Errorf("plan does not list the hooks as\n%s", want)
	}
	if f.job("hooked-migrate") != nil {
		t.Errorf("plan ran a hook")
	}
}

// TestHelmHookNamespaceFirst: a chart whose app settings create its
// namespace (createNamespace) runs its PreSync hooks there: the Namespace
// is applied before them, then the sync goes as in TestHelmHookOrder.
func TestHelmHookNamespaceFirst(t *testing.T) {
	f := newFixture(t)
	newNS := "hooks-" + strings.TrimPrefix(f.ns, "testhelmhooknamespacefirst-")
	t.Cleanup(func() {
		_ = f.kube.CoreV1().Namespaces().Delete(context.Background(), newNS, metav1.DeleteOptions{})
	})
	files := hookedChart(hookedValues{tag: "1.0.0"})
	files["apps/gitpace.yaml"] = "apps:\n  - match: hooked\n    namespace: " + newNS + "\n    createNamespace: true\n"
	f.repo.Commit("hooked in a namespace of its own", files)
	f.build(nil)
	f.ns = newNS // the fixture's readers and watches look there from now on
	rec := f.watchHooks()
	f.runStoppable()
	f.eventually("1.0.0 rolled out in "+newNS+" and its PostSync hook done", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.0")) })
	f.requireSync(rec, webImage("1.0.0"))
}

// TestHelmHookFailedPostSync: a PostSync Job that fails (as in
// TestHelmHookFailedPreSync) after the Deployment rolled out leaves the
// revision applied and makes the app Failed and Degraded naming the hook;
// hook-succeeded keeps the failed Job; the next revision's sync replaces
// it (before-hook-creation) and, succeeding, makes the app Synced again.
func TestHelmHookFailedPostSync(t *testing.T) {
	f := newFixture(t)
	rec := f.watchHooks()
	const policy = "before-hook-creation,hook-succeeded"
	c1 := f.repo.Commit("hooked 1.0.0, failing smoke test", hookedChart(hookedValues{tag: "1.0.0", failSmoke: true, smokePol: policy}))
	f.run()
	want := fmt.Sprintf("PostSync hook Job/%s/hooked-smoke failed: DeadlineExceeded", f.ns)
	var st *state.App
	f.eventually("app Failed by its PostSync hook", 2*time.Minute, func() bool {
		st = f.appState(hookedApp)
		return st != nil && st.Phase == state.Failed
	})
	if !strings.Contains(st.Reason, want) || st.Health != health.Degraded || !strings.Contains(st.HealthReason, want) {
		t.Fatalf("phase %s %q, health %s %q; want Failed and Degraded naming %q", st.Phase, st.Reason, st.Health, st.HealthReason, want)
	}
	if st.Rejected != nil || st.Applied == nil || st.Applied.Commit != c1 || !rolledOut(f.deploymentNamed(hookedApp), webImage("1.0.0")) {
		t.Fatalf("want 1.0.0 applied and rolled out (PostSync runs after); got %s", describe(st))
	}
	if j := f.job("hooked-smoke"); j == nil || j.Annotations[agent.HookSyncAnnotation] != st.Hooks.Key {
		t.Fatalf("failed smoke Job %v, want it kept (hook-succeeded deletes only a succeeded one)", j)
	}

	f.repo.Commit("hooked 1.0.1", hookedChart(hookedValues{tag: "1.0.1", smokePol: policy}))
	f.eventually("1.0.1 rolled out and its PostSync hook done", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.1")) })
	f.requireSync(rec, webImage("1.0.1"))
	if st := f.appState(hookedApp); st.Health != health.Healthy {
		t.Errorf("health %s %q after a successful sync, want Healthy", st.Health, st.HealthReason)
	}
}

// TestHelmHookObjectNotOwned: a Job of a PreSync hook's name made by hand
// (no gitpace owner) is never deleted or replaced: the new revision is
// rejected naming it (not retried silently as if the API server were
// down), and the Deployment keeps its image.
func TestHelmHookObjectNotOwned(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("hooked 1.0.0", hookedChart(hookedValues{tag: "1.0.0", migratePol: "hook-succeeded"}))
	f.run()
	f.eventually("1.0.0 rolled out and its hooks done", 2*time.Minute, func() bool { return f.hooksDone(webImage("1.0.0")) })
	f.eventually("the migrate Job deleted (hook-succeeded)", time.Minute, func() bool { return f.job("hooked-migrate") == nil })
	hand := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "hooked-migrate"}, Spec: batchv1.JobSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "x", Image: "by-hand:1"}}}}}}
	if _, err := f.kube.BatchV1().Jobs(f.ns).Create(context.Background(), hand, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// before-hook-creation (the default): the Job of that name must go first.
	next := f.repo.Commit("hooked 1.0.1", hookedChart(hookedValues{tag: "1.0.1"}))
	f.agent.Trigger()
	f.eventually("1.0.1 rejected naming the Job", time.Minute, func() bool {
		st := f.appState(hookedApp)
		return st.Rejected != nil && st.Rejected.Revision.Commit == next && st.Phase == state.Failed &&
			strings.Contains(st.Rejected.Error, "Job/"+f.ns+"/hooked-migrate: the object in the cluster cannot be replaced")
	})
	if j := f.job("hooked-migrate"); j == nil || j.Spec.Template.Spec.Containers[0].Image != "by-hand:1" {
		t.Errorf("the hand-made Job was deleted or replaced: %v", j)
	}
	if d := f.deployment(hookedApp); d == nil || d.Spec.Template.Spec.Containers[0].Image != webImage("1.0.0") {
		t.Errorf("the Deployment left 1.0.0 though the PreSync hook could not run")
	}
}

// TestHelmHookNotOwnedAnyPolicy: a live object of a hook's name that
// gitpace does not own (made by hand: no owner; or another agent's) is
// neither changed nor deleted, whatever the hook's delete policy (none,
// before-hook-creation, hook-succeeded, hook-failed), for a ConfigMap and a
// Job hook, PreSync and PostSync: the revision (PreSync) or the app
// (PostSync) fails naming the object and its owner, and the live object
// keeps its data, labels and uid. (Before the check, only
// before-hook-creation refused; hook-failed and hook-succeeded applied over
// the object: a ConfigMap's data replaced, a Job refused as immutable.)
func TestHelmHookNotOwnedAnyPolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := map[string]string{appliers.AgentLabel: "someone-else", "made": "by-hand"}
	otherAnn := map[string]string{appliers.AppAnnotation: "theirs"}
	type hookCase struct {
		app, kind, policy, phase string
		foreign                  bool // the live object names another agent and app
	}
	var cases []hookCase
	for _, kind := range []string{"ConfigMap", "Job"} {
		for i, pol := range []string{"", "before-hook-creation", "hook-succeeded", "hook-failed"} {
			cases = append(cases, hookCase{app: fmt.Sprintf("nh-%s-%d", strings.ToLower(kind), i), kind: kind, policy: pol, phase: "pre-install,pre-upgrade"})
		}
	}
	cases = append(cases,
		hookCase{app: "nh-configmap-agent", kind: "ConfigMap", policy: "hook-failed", phase: "pre-install,pre-upgrade", foreign: true},
		hookCase{app: "nh-job-agent", kind: "Job", policy: "hook-succeeded", phase: "pre-install,pre-upgrade", foreign: true},
		hookCase{app: "nh-configmap-post", kind: "ConfigMap", policy: "hook-succeeded", phase: "post-install,post-upgrade"},
		hookCase{app: "nh-job-post", kind: "Job", policy: "hook-failed", phase: "post-install,post-upgrade", foreign: true},
	)
	files := map[string]string{}
	type liveObj struct {
		uid    types.UID
		labels map[string]string
		anns   map[string]string
		data   string // ConfigMap data, or the Job's image
	}
	before := map[string]liveObj{}
	for _, c := range cases {
		hook := c.app + "-hook"
		pol := ""
		if c.policy != "" {
			pol = "\n    helm.sh/hook-delete-policy: " + c.policy
		}
		meta := fmt.Sprintf("metadata:\n  name: %s\n  annotations:\n    helm.sh/hook: %s%s\n", hook, c.phase, pol)
		body := "apiVersion: v1\nkind: ConfigMap\n" + meta + "data:\n  owner: gitpace\n"
		if c.kind == "Job" {
			body = "apiVersion: batch/v1\nkind: Job\n" + meta + "spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: x\n          image: registry.example/hook:1\n"
		}
		files["apps/"+c.app+"/Chart.yaml"] = "apiVersion: v2\nname: " + c.app + "\nversion: 0.1.0\n"
		files["apps/"+c.app+"/templates/hook.yaml"] = body
		files["apps/"+c.app+"/templates/plain.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + c.app + "-plain\ndata:\n  k: v\n"

		om := metav1.ObjectMeta{Name: hook, Labels: map[string]string{"made": "by-hand"}}
		if c.foreign {
			om.Labels, om.Annotations = other, otherAnn
		}
		var got liveObj
		if c.kind == "ConfigMap" {
			cm, err := f.kube.CoreV1().ConfigMaps(f.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: om, Data: map[string]string{"owner": "human"}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got = liveObj{cm.UID, cm.Labels, cm.Annotations, cm.Data["owner"]}
		} else {
			j, err := f.kube.BatchV1().Jobs(f.ns).Create(ctx, &batchv1.Job{ObjectMeta: om, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "x", Image: "by-hand:1"}}}}}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got = liveObj{j.UID, j.Labels, j.Annotations, j.Spec.Template.Spec.Containers[0].Image}
		}
		before[c.app] = got
	}
	f.repo.Commit("hooks over objects gitpace does not own", files)
	f.build(nil)
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.app, func(t *testing.T) {
			ref := fmt.Sprintf("%s/%s/%s-hook", c.kind, f.ns, c.app)
			why := "the live object names no gitpace owner"
			if c.foreign {
				why = "the live object is owned by agent someone-else, app theirs"
			}
			want := ref + ": the object in the cluster cannot be replaced (" + why + ")"
			st := f.appState(c.app)
			got := st.Reason
			if st.Rejected != nil {
				got = st.Rejected.Error
			}
			if st.Phase != state.Failed || !strings.Contains(got, want) {
				t.Errorf("app %s (policy %q): phase %s, message %q; want Failed with %q", c.app, c.policy, st.Phase, got, want)
			}
			if strings.HasPrefix(c.phase, "pre") && (st.Rejected == nil || st.Applied != nil) {
				t.Errorf("app %s: a PreSync hook that cannot run must reject the revision before anything is applied: rejected %v, applied %v", c.app, st.Rejected, st.Applied)
			}
			var now liveObj
			var managers []string
			if c.kind == "ConfigMap" {
				cm, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, c.app+"-hook", metav1.GetOptions{})
				if err != nil {
					t.Fatalf("the live %s: %v", ref, err)
				}
				now = liveObj{cm.UID, cm.Labels, cm.Annotations, cm.Data["owner"]}
				for _, m := range cm.ManagedFields {
					managers = append(managers, m.Manager)
				}
			} else {
				j := f.job(c.app + "-hook")
				if j == nil {
					t.Fatalf("%s was deleted", ref)
				}
				now = liveObj{j.UID, j.Labels, j.Annotations, j.Spec.Template.Spec.Containers[0].Image}
				for _, m := range j.ManagedFields {
					managers = append(managers, m.Manager)
				}
			}
			if diff := cmp.Diff(before[c.app], now, cmp.AllowUnexported(liveObj{})); diff != "" {
				t.Errorf("%s changed (-before +after):\n%s", ref, diff)
			}
			if slices.Contains(managers, appliers.FieldManager) {
				t.Errorf("%s was written by gitpace: managers %v", ref, managers)
			}
		})
	}
}
