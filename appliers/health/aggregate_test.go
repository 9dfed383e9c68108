package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
)

func ref(kind, name string) appliers.ObjectRef {
	return appliers.ObjectRef{Group: "apps", Version: "v1", Kind: kind, Namespace: "shop", Name: name}
}

func obj(kind, name string, h Health, msg string) Object {
	return Object{Ref: ref(kind, name), Health: h, Message: msg}
}

func TestAggregate(t *testing.T) {
	for _, tc := range []struct {
		name string
		objs []Object
		want App
	}{
		{"no objects: Healthy", nil, App{Health: Healthy}},
		{"all Healthy", []Object{obj("Deployment", "web", Healthy, "ok"), obj("ConfigMap", "c", Healthy, "")}, App{Health: Healthy}},
		{"Progressing beats Healthy and Suspended",
			[]Object{obj("Deployment", "a", Suspended, "paused"), obj("StatefulSet", "db", Progressing, "Ready: 2/3"), obj("ConfigMap", "c", Healthy, "")},
			App{Health: Progressing, Reason: "StatefulSet/shop/db: Ready: 2/3",
				Objects: []Object{obj("StatefulSet", "db", Progressing, "Ready: 2/3"), obj("Deployment", "a", Suspended, "paused")}}},
		{"Missing beats Progressing",
			[]Object{obj("StatefulSet", "db", Progressing, "Ready: 2/3"), obj("Service", "web", Missing, "not found")},
			App{Health: Missing, Reason: "Service/shop/web: not found",
				Objects: []Object{obj("Service", "web", Missing, "not found"), obj("StatefulSet", "db", Progressing, "Ready: 2/3")}}},
		{"Degraded beats Missing; two Degraded: the first named, one more counted",
			[]Object{obj("Service", "web", Missing, "not found"), obj("Deployment", "web", Degraded, "Progress deadline exceeded"), obj("Job", "migrate", Degraded, "Job Failed. failed: 1/1")},
			App{Health: Degraded, Reason: "Deployment/shop/web: Progress deadline exceeded (and 1 more Degraded)",
				Objects: []Object{obj("Deployment", "web", Degraded, "Progress deadline exceeded"), obj("Job", "migrate", Degraded, "Job Failed. failed: 1/1"), obj("Service", "web", Missing, "not found")}}},
		{"Unknown is the worst (Argo CD's order)",
			[]Object{obj("Deployment", "web", Degraded, "x"), obj("Widget", "w", Unknown, "bad status")},
			App{Health: Unknown, Reason: "Widget/shop/w: bad status",
				Objects: []Object{obj("Widget", "w", Unknown, "bad status"), obj("Deployment", "web", Degraded, "x")}}},
		{"only Suspended",
			[]Object{obj("Deployment", "web", Suspended, "Updated: 1/3")},
			App{Health: Suspended, Reason: "Deployment/shop/web: Updated: 1/3", Objects: []Object{obj("Deployment", "web", Suspended, "Updated: 1/3")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, Aggregate(tc.objs)); d != "" {
				t.Errorf("Aggregate (-want +got):\n%s", d)
			}
		})
	}
}

func parse(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestOfObject covers gitpace's rules on top of kstatus: Jobs, frozen
// workloads, terminating and missing objects, and conditions of custom
// resources.
func TestOfObject(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		health     Health
		msg        string
	}{
		{"missing", "", Missing, "not found"},
		{"Job running: kstatus Current, gitpace Progressing", `
apiVersion: batch/v1
kind: Job
metadata: {name: j, generation: 1}
status: {startTime: "2026-11-30T00:00:00Z", active: 1}`, Progressing, "Job in progress. success:0, active: 1, failed: 0"},
		{"Job complete", `
apiVersion: batch/v1
kind: Job
metadata: {name: j, generation: 1}
spec: {completions: 1}
status: {startTime: "2026-11-30T00:00:00Z", succeeded: 1, conditions: [{type: Complete, status: "True"}]}`, Healthy, "Job Completed. succeeded: 1/1"},
		{"Job failed", `
apiVersion: batch/v1
kind: Job
metadata: {name: j, generation: 1}
spec: {completions: 1}
status: {startTime: "2026-11-30T00:00:00Z", failed: 2, conditions: [{type: Failed, status: "True"}]}`, Degraded, "Job Failed. failed: 2/1"},
		{"Job suspended", `
apiVersion: batch/v1
kind: Job
metadata: {name: j, generation: 1}
spec: {suspend: true}`, Suspended, "Job suspended"},
		{"Deployment paused mid-rollout", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, generation: 2}
spec: {replicas: 3, paused: true}
status: {observedGeneration: 2, replicas: 4, updatedReplicas: 1, availableReplicas: 3}`, Suspended, `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated... (paused)`},
		{"Deployment paused after its rollout finished: kstatus InProgress by the DeploymentPaused condition, gitpace Healthy", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, generation: 2}
spec: {replicas: 2, paused: true, progressDeadlineSeconds: 600}
status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2,
  conditions: [{type: Available, status: "True"}, {type: Progressing, status: "Unknown", reason: DeploymentPaused}]}`, Healthy, `deployment "web" successfully rolled out`},
		{"Deployment paused, pause not observed yet: Suspended", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, generation: 3}
spec: {replicas: 2, paused: true, progressDeadlineSeconds: 600}
status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2,
  conditions: [{type: Available, status: "True"}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}]}`, Suspended, "Waiting for deployment spec update to be observed... (paused)"},
		{"Deployment past its deadline", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, generation: 2}
spec: {replicas: 3}
status: {observedGeneration: 2, conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded}]}`, Degraded, "Progress deadline exceeded"},
		{"StatefulSet frozen by gitpace", `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, generation: 3, annotations: {gitpace.dev/paused-partition: "0"}}
spec: {replicas: 3, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}}
status: {observedGeneration: 3, replicas: 3, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 1}`, Suspended, "Waiting for 1 pods to be ready... (paused)"},
		{"StatefulSet frozen, every pod Ready: kstatus Current by the frozen partition, Suspended by git's", `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, generation: 3, annotations: {gitpace.dev/paused-partition: "0"}}
spec: {replicas: 3, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}}
status: {observedGeneration: 3, replicas: 3, readyReplicas: 3, currentReplicas: 2, updatedReplicas: 1}`, Suspended, "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated... (paused)"},
		{"custom resource Ready=False", `
apiVersion: example.gitpace.dev/v1
kind: Widget
metadata: {name: w, generation: 1}
status: {observedGeneration: 1, conditions: [{type: Ready, status: "False", reason: Waiting, message: "backend not reachable"}]}`, Progressing, "backend not reachable"},
		{"custom resource Ready=True", `
apiVersion: example.gitpace.dev/v1
kind: Widget
metadata: {name: w, generation: 1}
status: {observedGeneration: 1, conditions: [{type: Ready, status: "True"}]}`, Healthy, "Resource is Ready"},
		{"custom resource Stalled=True", `
apiVersion: example.gitpace.dev/v1
kind: Widget
metadata: {name: w, generation: 1}
status: {conditions: [{type: Stalled, status: "True", reason: BadSpec, message: "size must be even"}]}`, Degraded, "size must be even"},
		{"custom resource generation not observed", `
apiVersion: example.gitpace.dev/v1
kind: Widget
metadata: {name: w, generation: 2}
status: {observedGeneration: 1, conditions: [{type: Ready, status: "True"}]}`, Progressing, "Widget generation is 2, but latest observed generation is 1"},
		{"terminating", `
apiVersion: v1
kind: ConfigMap
metadata: {name: c, deletionTimestamp: "2026-11-30T00:00:00Z"}`, Progressing, "Resource scheduled for deletion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u *unstructured.Unstructured
			if tc.yaml != "" {
				u = parse(t, tc.yaml)
			}
			got := OfObject(ref("X", "x"), u)
			if got.Health != tc.health || got.Message != tc.msg {
				t.Errorf("got %s %q (kstatus %s), want %s %q", got.Health, got.Message, got.Status, tc.health, tc.msg)
			}
		})
	}
}

func TestOfBCS(t *testing.T) {
	r := appliers.ObjectRef{Group: "bcs.gitpace.dev", Version: "v4", Kind: "deployment", Namespace: "defaultgroup", Name: "test"}
	for _, tc := range []struct {
		status, reason string
		health         Health
		msg            string
	}{
		{paced.StatusRunning, "", Healthy, "Running"},
		{paced.StatusRollingUpdate, "cycle 2 of 2 starts at 2026-11-27T00:01:24Z (upgradeDuration 1m0s)", Progressing, "RollingUpdate: cycle 2 of 2 starts at 2026-11-27T00:01:24Z (upgradeDuration 1m0s)"},
		{paced.StatusUpdatePaused, "paused by web/PAUSE", Suspended, "UpdatePaused: paused by web/PAUSE"},
		{paced.StatusUpdateSuspend, "start phase over 6m0s", Degraded, "UpdateSuspend: start phase over 6m0s"},
	} {
		got := OfBCS(r, paced.Status{Status: tc.status, Reason: tc.reason})
		if got.Health != tc.health || got.Message != tc.msg {
			t.Errorf("%s: got %s %q, want %s %q", tc.status, got.Health, got.Message, tc.health, tc.msg)
		}
	}
}
