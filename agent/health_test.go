package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
	"github.com/gitpace/gitpace/status"
)

// workloadYAML is a StatefulSet or DaemonSet "db" of image, whose pods take
// 3 s to become Ready (kwok), so that a rollout can be watched and paused.
func workloadYAML(kind, image string) string {
	extra := "  serviceName: db\n  replicas: 3\n"
	if kind == "DaemonSet" {
		extra = ""
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: %s
metadata:
  name: db
spec:
%s  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
      annotations: {pod-ready.stage.kwok.x-k8s.io/delay: "3s"}
    spec:
      containers:
      - name: db
        image: %s
`, kind, extra, image)
}

// statusTable is `gitpace status` as printed for the test's state namespace.
func (f *fixture) statusTable() string {
	f.t.Helper()
	apps, err := status.Collect(context.Background(), f.kube, f.stateNS, "", "")
	if err != nil {
		f.t.Fatal(err)
	}
	var b bytes.Buffer
	status.AppsTable(apps)(&b)
	return b.String()
}

// appRow is the app's line of the apps table, its columns split.
func appRow(table, app string) []string {
	for _, l := range strings.Split(table, "\n") {
		if cols := regexp.MustCompile(`\s{2,}`).Split(l, -1); len(cols) > 4 && cols[0] == app {
			return cols
		}
	}
	return nil
}

// TestStatefulSetRolloutFollowedAndPaused: a StatefulSet's image change is
// followed as `kubectl rollout status` follows it, with health Progressing
// (kstatus InProgress) on the way and Healthy (Current) at the end; PAUSE
// mid-way holds the partition at replicas − updated, so no further pod is
// updated although every pod is Ready (health Suspended), and removing
// PAUSE restores git's partition and finishes the rollout.
func TestStatefulSetRolloutFollowedAndPaused(t *testing.T) {
	testWorkloadRolloutFollowedAndPaused(t, "StatefulSet")
}

// TestDaemonSetRolloutFollowedAndPaused: the same for a DaemonSet (one pod
// on each of the 3 fake nodes); PAUSE switches it to OnDelete.
func TestDaemonSetRolloutFollowedAndPaused(t *testing.T) {
	testWorkloadRolloutFollowedAndPaused(t, "DaemonSet")
}

func testWorkloadRolloutFollowedAndPaused(t *testing.T, kind string) {
	f := newFixture(t)
	f.repo.Commit("db v1", map[string]string{"apps/db/db.yaml": workloadYAML(kind, "db:v1")})
	f.run()
	f.eventually("v1 Synced and Healthy", time.Minute, func() bool {
		st := f.appState("db")
		return st != nil && st.Phase == state.Synced && st.Health == health.Healthy
	})
	ctx := context.Background()
	// live reads the workload's rollout as kubectl would judge it, and what
	// the freeze wrote.
	type live struct {
		updated, ready, desired int32
		observed                bool
		partition               int32
		strategy                string
		annotated               bool
	}
	read := func() live {
		if kind == "StatefulSet" {
			s, err := f.kube.AppsV1().StatefulSets(f.ns).Get(ctx, "db", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, ann := s.Annotations[appliers.PausedPartitionAnnotation]
			return live{s.Status.UpdatedReplicas, s.Status.ReadyReplicas, *s.Spec.Replicas,
				s.Status.ObservedGeneration >= s.Generation, *s.Spec.UpdateStrategy.RollingUpdate.Partition, string(s.Spec.UpdateStrategy.Type), ann}
		}
		d, err := f.kube.AppsV1().DaemonSets(f.ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, ann := d.Annotations[appliers.PausedUpdateStrategyAnnotation]
		return live{d.Status.UpdatedNumberScheduled, d.Status.NumberReady, d.Status.DesiredNumberScheduled,
			d.Status.ObservedGeneration >= d.Generation, 0, string(d.Spec.UpdateStrategy.Type), ann}
	}
	if l := read(); l.desired != 3 {
		t.Fatalf("%s wants %d pods, want 3", kind, l.desired)
	}

	f.repo.Commit("db v2", map[string]string{"apps/db/db.yaml": workloadYAML(kind, "db:v2")})
	f.eventually("app Progressing, health Progressing", time.Minute, func() bool {
		st := f.appState("db")
		return st.Phase == state.Progressing && st.Health == health.Progressing &&
			strings.HasPrefix(st.HealthReason, kind+"/"+f.ns+"/db: ")
	})
	f.eventually("first pod updated", time.Minute, func() bool { return read().updated >= 1 })
	if _, err := sources.Pause(f.repo.Dir, "apps", "db", "check the first v2 pod"); err != nil {
		t.Fatal(err)
	}
	// podsSettled: no pod is being replaced and the status counts the
	// updated pods there are. A DaemonSet pod deleted for the update just
	// before OnDelete landed is re-created from the new template (what
	// OnDelete does for a missing pod), so the frozen count is read only
	// once no pod is missing or terminating.
	podsSettled := func(l live) bool {
		pods, err := f.kube.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
		if err != nil {
			t.Fatal(err)
		}
		updated := int32(0)
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				return false
			}
			if p.Spec.Containers[0].Image == "db:v2" {
				updated++
			}
		}
		return int32(len(pods.Items)) == l.desired && updated == l.updated
	}
	f.eventually("app Paused, rollout frozen", 30*time.Second, func() bool {
		l := read()
		return f.appState("db").Phase == state.Paused && l.annotated && l.observed && podsSettled(l)
	})
	frozen := read()
	if frozen.updated == 3 {
		t.Fatal("rollout finished before the pause could freeze it; the test needs slower pods")
	}
	if kind == "StatefulSet" && frozen.partition != 3-frozen.updated {
		t.Errorf("partition %d while %d of 3 pods are updated, want 3-%d", frozen.partition, frozen.updated, frozen.updated)
	}
	if kind == "DaemonSet" && frozen.strategy != "OnDelete" {
		t.Errorf("frozen DaemonSet's updateStrategy %s, want OnDelete", frozen.strategy)
	}
	// Every pod Ready with the freeze observed: an unfrozen controller
	// would now update the next pod.
	f.eventually("every pod Ready under the freeze", time.Minute, func() bool {
		l := read()
		return l.observed && l.ready == 3
	})
	if l := read(); l.updated != frozen.updated {
		t.Fatalf("rollout moved while paused: %d -> %d pods updated", frozen.updated, l.updated)
	}
	f.eventually("health Suspended", 30*time.Second, func() bool { return f.appState("db").Health == health.Suspended })
	if row := appRow(f.statusTable(), "db"); len(row) < 5 || row[3] != "Paused" || row[4] != "Suspended" {
		t.Errorf("status row %q, want STATE Paused, HEALTH Suspended\n%s", row, f.statusTable())
	}

	// A hand unfreeze while paused (kubectl patch of the partition, or of
	// the DaemonSet's updateStrategy) is frozen again at once, to the
	// partition the freeze recorded, with a line; the app stays Paused and
	// Suspended.
	unfreeze := `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`
	if kind == "DaemonSet" {
		unfreeze = `{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1}}}}`
	}
	byHand := metav1.PatchOptions{FieldManager: "kubectl-patch"}
	var err error
	if kind == "StatefulSet" {
		_, err = f.kube.AppsV1().StatefulSets(f.ns).Patch(ctx, "db", types.MergePatchType, []byte(unfreeze), byHand)
	} else {
		_, err = f.kube.AppsV1().DaemonSets(f.ns).Patch(ctx, "db", types.MergePatchType, []byte(unfreeze), byHand)
	}
	if err != nil {
		t.Fatal(err)
	}
	f.eventually("hand unfreeze frozen again, pods settled", time.Minute, func() bool {
		l := read()
		return l.partition == frozen.partition && l.strategy == frozen.strategy && l.annotated && l.observed && l.ready == 3 && podsSettled(l)
	})
	// Every pod Ready and the re-freeze observed: an unfrozen controller
	// would go on. In the moment between the hand patch and the re-freeze
	// the controller may have replaced one pod (StatefulSet: one ordinal at
	// a time; DaemonSet: maxUnavailable 1), which stays as it is; no other.
	if l := read(); l.updated > frozen.updated+1 || l.updated == 3 {
		t.Fatalf("rollout moved after a hand unfreeze while paused: %d -> %d pods updated", frozen.updated, l.updated)
	}
	if out := f.out.String(); !strings.Contains(out, "app db: drift: "+kind+" "+f.ns+"/db unfrozen by hand while paused") {
		t.Errorf("no line says the hand unfreeze was undone:\n%s", out)
	}
	f.eventually("Paused and Suspended after the re-freeze", 10*time.Second, func() bool {
		st := f.appState("db")
		return st.Phase == state.Paused && st.Health == health.Suspended
	})

	if _, err := sources.Resume(f.repo.Dir, "apps", "db"); err != nil {
		t.Fatal(err)
	}
	f.eventually("v2 Synced and Healthy after resume", 2*time.Minute, func() bool {
		st := f.appState("db")
		return st.Phase == state.Synced && st.Health == health.Healthy && read().updated == 3
	})
	l := read()
	if l.annotated || (kind == "StatefulSet" && l.partition != 0) || l.strategy != "RollingUpdate" {
		t.Errorf("after resume: annotation kept %v, partition %d, strategy %s; want git's (no annotation, 0, RollingUpdate)", l.annotated, l.partition, l.strategy)
	}
	st := f.appState("db")
	if n := len(st.History); n != 2 || st.History[1].Outcome != state.RolledOut {
		t.Errorf("history %+v, want 2 entries, the second rolled out", st.History)
	}
	done := `partitioned roll out complete: 3 new pods have been updated...`
	progress := `Waiting for partitioned roll out to finish: `
	if kind == "DaemonSet" {
		done, progress = `daemon set "db" successfully rolled out`, `Waiting for daemon set "db" rollout to finish: `
	}
	if out := f.out.String(); !strings.Contains(out, done) || !strings.Contains(out, progress) || !strings.Contains(out, "(paused)") {
		t.Errorf("agent output lacks kubectl's wording (%q, %q, paused):\n%s", progress, done, out)
	}
	table := f.statusTable()
	if row := appRow(table, "db"); len(row) < 5 || row[3] != "Synced" || row[4] != "Healthy" {
		t.Errorf("status row %q, want STATE Synced, HEALTH Healthy\n%s", row, table)
	}
	if !strings.Contains(table, "WORKLOAD") || !strings.Contains(table, kind+"/"+f.ns+"/db") || !strings.Contains(table, done) {
		t.Errorf("status lacks the workload table with %s:\n%s", done, table)
	}
	t.Logf("gitpace status:\n%s", table)
}

// migrateJob is a Job named migrate whose pod kwok completes after 4 s.
const migrateJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: {pod-complete.stage.kwok.x-k8s.io/delay: "4s"}
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: migrate:v1
`

// TestJobHealthyWhenComplete: a Job (its pod completed by kwok's
// pod-complete stage, the Job controller marking it Complete) leaves the
// app Progressing on the health axis while it runs (kstatus already says
// Current then) and Healthy once it has completed, with no commit or
// resync: the health of a Progressing app is read again by itself.
func TestJobHealthyWhenComplete(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("migrate", map[string]string{"apps/db/job.yaml": migrateJob})
	f.run()
	f.eventually("health Progressing while the Job runs", time.Minute, func() bool {
		st := f.appState("db")
		return st != nil && st.Health == health.Progressing && strings.HasPrefix(st.HealthReason, "Job/"+f.ns+"/migrate: ")
	})
	f.eventually("health Healthy once the Job completed", time.Minute, func() bool {
		return f.appState("db").Health == health.Healthy
	})
	j, err := f.kube.BatchV1().Jobs(f.ns).Get(context.Background(), "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	complete := false
	for _, c := range j.Status.Conditions {
		complete = complete || c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue
	}
	if !complete || j.Status.Succeeded != 1 {
		t.Errorf("Job status %+v, want Complete with 1 succeeded", j.Status)
	}
}

// TestCustomResourceReadyCondition: a custom resource's health follows its
// conditions as kstatus reads them (Ready=False → Progressing, Stalled=True
// → Degraded, Ready=True → Healthy) while the sync phase stays Synced: two
// axes. The test plays the resource's controller.
func TestCustomResourceReadyCondition(t *testing.T) {
	f := newFixture(t)
	group, dyn := crdTest(t, f, "widgets")
	crd := strings.Replace(crdYAML(group, "Widget", "x-kubernetes-preserve-unknown-fields: true"),
		"    storage: true\n", "    storage: true\n    subresources: {status: {}}\n", 1)
	widget := fmt.Sprintf("apiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 2\n", group)
	f.repo.Commit("widget", map[string]string{"apps/w/crd.yaml": crd, "apps/w/widget.yaml": widget})
	f.build(nil)
	f.cfg.Resync = time.Nanosecond // every pass reads the app again (custom resources are not watched)
	f.rebuild()
	f.pass(f.agent)
	widgets := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(f.ns)
	setConditions := func(conds ...map[string]any) {
		t.Helper()
		ctx := context.Background()
		u, err := widgets.Get(ctx, "w", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var list []any
		for _, c := range conds {
			list = append(list, c)
		}
		if err := unstructured.SetNestedSlice(u.Object, list, "status", "conditions"); err != nil {
			t.Fatal(err)
		}
		if _, err := widgets.UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ref := "Widget/" + f.ns + "/w: "
	for _, step := range []struct {
		name   string
		conds  []map[string]any
		health health.Health
		reason string
	}{
		{"no conditions yet", nil, health.Healthy, ""},
		{"Ready=False", []map[string]any{{"type": "Ready", "status": "False", "reason": "Waiting", "message": "backend not reachable"}},
			health.Progressing, ref + "backend not reachable"},
		{"Stalled=True", []map[string]any{{"type": "Ready", "status": "False", "reason": "Waiting", "message": "backend not reachable"},
			{"type": "Stalled", "status": "True", "reason": "BadSpec", "message": "size must be odd"}},
			health.Degraded, ref + "size must be odd"},
		{"Ready=True", []map[string]any{{"type": "Ready", "status": "True", "reason": "Up", "message": "serving"}}, health.Healthy, ""},
	} {
		if step.conds != nil {
			setConditions(step.conds...)
		}
		f.pass(f.agent)
		st := f.appState("w")
		if st.Health != step.health || st.HealthReason != step.reason || st.Phase != state.Synced {
			t.Errorf("%s: phase %s, health %s %q; want Synced, %s %q", step.name, st.Phase, st.Health, st.HealthReason, step.health, step.reason)
		}
		if step.health == health.Degraded {
			if row := appRow(f.statusTable(), "w"); len(row) < 8 || row[3] != "Synced" || row[4] != "Degraded" || row[7] != step.reason {
				t.Errorf("status row %q, want Synced, Degraded and the reason as MESSAGE", row)
			}
		}
	}
}

// TestStatefulSetRolloutFailsOnStuckPod: a StatefulSet's new pod that no
// node can take (a nodeSelector no fake node matches) stops its rollout
// for good (OrderedReady); once the scheduler has refused it for kstatus's
// 15 s, the app is Failed, Degraded, with the pod named, and the history
// entry says failed: the StatefulSet's own failure signal (it has no
// progress deadline).
func TestStatefulSetRolloutFailsOnStuckPod(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("db v1", map[string]string{"apps/db/db.yaml": workloadYAML("StatefulSet", "db:v1")})
	f.run()
	f.eventually("v1 Synced", time.Minute, func() bool {
		st := f.appState("db")
		return st != nil && st.Phase == state.Synced
	})
	stuck := strings.Replace(workloadYAML("StatefulSet", "db:v2"), "      containers:\n", "      nodeSelector: {disk: none}\n      containers:\n", 1)
	f.repo.Commit("db v2 on no node", map[string]string{"apps/db/db.yaml": stuck})
	f.eventually("app Failed and Degraded", time.Minute, func() bool {
		st := f.appState("db")
		return st.Phase == state.Failed && st.Health == health.Degraded
	})
	st := f.appState("db")
	if !strings.Contains(st.Reason, "not Ready: db-2 (Unschedulable: ") || !strings.HasPrefix(st.HealthReason, "StatefulSet/"+f.ns+"/db: rollout cannot finish; not Ready: db-2 (Unschedulable: ") {
		t.Errorf("reason %q, health reason %q: want the unschedulable pod db-2 named", st.Reason, st.HealthReason)
	}
	if len(st.FailingPods) != 1 || st.FailingPods[0].Name != "db-2" {
		t.Errorf("failing pods %+v, want db-2", st.FailingPods)
	}
	if e := st.Last(); e == nil || e.Outcome != state.FailedOut {
		t.Errorf("newest history entry %+v, want failed", e)
	}
}

// TestPausedDeploymentRolledOutIsHealthy: PAUSE on a Deployment whose
// rollout had finished leaves the app Paused but Healthy. The Deployment
// controller then sets Progressing=Unknown/DeploymentPaused, which kstatus
// reads as "ReplicaSet not Available" (InProgress); only a rollout frozen
// before it finished is Suspended (TestPauseMarkerFreezesRollout).
func TestPausedDeploymentRolledOutIsHealthy(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("v1.1.0", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml")})
	a := f.build(nil)
	ctx := context.Background()
	// pass reconciles web as a watch event would (diff, phase, health).
	pass := func() *state.App {
		a.MarkDirty("web")
		if err := a.ReconcileOnce(ctx); err != nil {
			t.Fatal(err)
		}
		return f.appState("web")
	}
	f.eventually("v1.1.0 Synced and Healthy", time.Minute, func() bool {
		st := pass()
		return rolledOut(f.deployment("test"), imageV0) && st.Phase == state.Synced && st.Health == health.Healthy
	})
	if _, err := sources.Pause(f.repo.Dir, "apps", "web", "freeze for the audit"); err != nil {
		t.Fatal(err)
	}
	if st := pass(); st.Phase != state.Paused {
		t.Fatalf("phase %s %q after PAUSE, want Paused", st.Phase, st.Reason)
	}
	f.eventually("the controller marks the Deployment paused", 30*time.Second, func() bool {
		d := f.deployment("test")
		for _, c := range d.Status.Conditions {
			if c.Type == "Progressing" && c.Reason == "DeploymentPaused" {
				return d.Spec.Paused && d.Status.ObservedGeneration >= d.Generation
			}
		}
		return false
	})
	if st := pass(); st.Phase != state.Paused || st.Health != health.Healthy {
		t.Errorf("paused after its rollout: %s/%s %q, want Paused/Healthy", st.Phase, st.Health, st.HealthReason)
	}
	if row := appRow(f.statusTable(), "web"); len(row) < 5 || row[3] != "Paused" || row[4] != "Healthy" {
		t.Errorf("status row %q, want STATE Paused, HEALTH Healthy\n%s", row, f.statusTable())
	}
}
