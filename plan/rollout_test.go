package plan

import (
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// seedDeployment is testdata/seed/test1-1-0.yaml as the API server returns
// it (status and server fields included).
const seedDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: test
  namespace: ns
  labels: {app: test}
  annotations: {deployment.kubernetes.io/revision: "1", kubernetes.io/change-cause: "gitpace 73a104e: deploy"}
  generation: 1
  resourceVersion: "42"
spec:
  replicas: 3
  progressDeadlineSeconds: 600
  revisionHistoryLimit: 10
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  selector: {matchLabels: {app: test}}
  template:
    metadata: {labels: {app: test}}
    spec:
      containers:
      - name: test
        image: hub.docker.com:xxxx/xxxxxx:v1.1.0
        args: [-m, SimpleHTTPServer]
        ports: [{containerPort: 8000, protocol: TCP}]
      restartPolicy: Always
status: {replicas: 3, availableReplicas: 3}
`

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// configured is the Change revision.Diff reports when the dry run of the
// desired object gives dry (the live object goes to deploymentRollout
// alongside, as appliers.Change.Live).
func configured(live, dry *unstructured.Unstructured) appliers.Change {
	ref := appliers.RefOf(live)
	return appliers.Change{Ref: ref, Action: appliers.Configured,
		Diff: appliers.UnifiedDiff(ref, appliers.Normalize(live), appliers.Normalize(dry)), Desired: dry}
}

// setContainer sets a field of the Deployment's first container.
func setContainer(u *unstructured.Unstructured, field string, v any) {
	cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	cs[0].(map[string]any)[field] = v
	if err := unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers"); err != nil {
		panic(err)
	}
}

func TestDeploymentRollout(t *testing.T) {
	set := func(path string, v any) func(*unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) {
			if err := unstructured.SetNestedField(u.Object, v, strings.Split(path, ".")...); err != nil {
				panic(err)
			}
		}
	}
	image := func(u *unstructured.Unstructured) { setContainer(u, "image", "hub.docker.com:xxxx/xxxxxx:v1.1.1") }
	cause := func(u *unstructured.Unstructured) {
		u.SetAnnotations(map[string]string{appliers.ChangeCause: "gitpace 4ca8b8a: v1.1.1"})
	}
	tests := []struct {
		name    string
		edits   []func(*unstructured.Unstructured)
		summary string
		steps   int
		changed bool
	}{
		{"image: rolls in 3 steps", []func(*unstructured.Unstructured){image, cause},
			"rolls to the new pod template in 3 steps", 3, true},
		{"image and replicas 3→5", []func(*unstructured.Unstructured){image, set("spec.replicas", int64(5))},
			"rolls to the new pod template in 4 steps, from 3 to 5 pods", 4, true},
		{"replicas only: scales", []func(*unstructured.Unstructured){set("spec.replicas", int64(5))},
			"scales from 3 to 5 pods (pod template unchanged: no rolling update)", 0, true},
		// The hunk's context reaches into spec.template, but the template
		// does not change.
		{"strategy only: no rollout", []func(*unstructured.Unstructured){set("spec.strategy.rollingUpdate.maxSurge", int64(2))},
			"no rollout: the pod template is unchanged", 0, false},
		{"a label on the Deployment only: no rollout", []func(*unstructured.Unstructured){set("metadata.labels.team", "a")},
			"no rollout: the pod template is unchanged", 0, false},
		{"a pod label: rolls", []func(*unstructured.Unstructured){set("spec.template.metadata.labels.team", "a")},
			"rolls to the new pod template in 3 steps", 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := obj(t, seedDeployment)
			dry := live.DeepCopy()
			for _, e := range tt.edits {
				e(dry)
			}
			r, err := deploymentRollout(configured(live, dry), live)
			if err != nil {
				t.Fatal(err)
			}
			if r.Summary != tt.summary || len(r.Steps) != tt.steps || r.Changed != tt.changed {
				t.Errorf("got %q, %d steps, changed %v; want %q, %d steps, changed %v", r.Summary, len(r.Steps), r.Changed, tt.summary, tt.steps, tt.changed)
			}
		})
	}
}

func TestDeploymentRolloutCreated(t *testing.T) {
	dry := appliers.Normalize(obj(t, seedDeployment))
	ref := appliers.RefOf(dry)
	c := appliers.Change{Ref: ref, Action: appliers.Created, Diff: appliers.UnifiedDiff(ref, nil, dry), Desired: dry}
	r, err := deploymentRollout(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "created: starts 3 pods (no rolling update)"; r.Summary != want || len(r.Steps) != 0 {
		t.Errorf("got %q with %d steps, want %q", r.Summary, len(r.Steps), want)
	}
}

// seedBCS parses testdata/seed/test1-1-0.json, or test1-1-1.json for "v1.1.1".
func seedBCS(t *testing.T, version string) *bcs.Deployment {
	t.Helper()
	file := "../testdata/seed/test1-1-0.json"
	if version == "v1.1.1" {
		file = "../testdata/seed/test1-1-1.json"
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := bcs.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// liveRS is application name of d as the rollout engine leaves it, with
// replicas pods, created hours after t0.
func liveRS(name string, replicas int32, d *bcs.Deployment, hours int) appsv1.ReplicaSet {
	return appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{vocab.AnnotationTemplateHash: d.TemplateHash()},
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(hours) * time.Hour))},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas},
	}
}

func TestBCSRollout(t *testing.T) {
	d110 := seedBCS(t, "")
	d111 := seedBCS(t, "v1.1.1")
	rs := liveRS
	tests := []struct {
		name    string
		d       *bcs.Deployment
		live    []appsv1.ReplicaSet
		summary string
		cycles  int
		changed bool
	}{
		{"no application: creates one", d110, nil,
			"creates application test with 2 instances (no rolling update)", 0, true},
		{"same template and instance: nothing", d110, []appsv1.ReplicaSet{rs("test", 2, d110, 0)},
			"no change: application test runs 2 instances of this template", 0, false},
		{"same template, other instance: scales", d110, []appsv1.ReplicaSet{rs("test", 4, d110, 0)},
			"scales application test from 4 to 2 instances (template unchanged: no rolling update)", 0, true},
		{"new template: rolls in 2 cycles", d111, []appsv1.ReplicaSet{rs("test", 2, d110, 0)},
			"rolls application test (2 instances) to a new application test-v<unix seconds> with 2 instances in 2 cycles", 2, true},
		{"in flight to this template: goes on", d111, []appsv1.ReplicaSet{rs("test-v9", 1, d111, 1), rs("test", 1, d110, 0)},
			"a rollout from test to test-v9 is in flight and goes on: 1 cycle left", 1, false},
		{"in flight, back to the old template: cancels", d110, []appsv1.ReplicaSet{rs("test", 1, d110, 0), rs("test-v9", 1, d111, 1)},
			"cancels the rollout in flight: restores application test and deletes test-v9 (not paced)", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bcsRollout(tt.d, tt.live, t0, nil)
			if r.Summary != tt.summary || len(r.Cycles) != tt.cycles || r.Changed != tt.changed {
				t.Errorf("got %q, %d cycles, changed %v; want %q, %d cycles, changed %v", r.Summary, len(r.Cycles), r.Changed, tt.summary, tt.cycles, tt.changed)
			}
			if tt.cycles > 0 && !r.Finish.Equal(r.Cycles[len(r.Cycles)-1].Start) {
				t.Errorf("Finish = %v, want the last cycle's start %v", r.Finish, r.Cycles[len(r.Cycles)-1].Start)
			}
		})
	}
}
