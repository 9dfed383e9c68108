package appliers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// rig is one test's namespace, clients and applier (its writes counted).
type rig struct {
	t      *testing.T
	ns     string
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	ap     *appliers.Applier
	writes *testenv.Writes
}

func newRig(t *testing.T) *rig { return newRigWrapped(t, nil) }

// newRigWrapped is newRig whose applier's requests go through wrap too
// (when not nil).
func newRigWrapped(t *testing.T, wrap func(http.RoundTripper) http.RoundTripper) *rig {
	t.Helper()
	r := &rig{t: t, ns: testenv.Namespace(t), kube: testenv.Client(t)}
	var err error
	if r.dyn, err = dynamic.NewForConfig(testenv.Config(t)); err != nil {
		t.Fatal(err)
	}
	rc := testenv.Config(t)
	if wrap != nil {
		rc.Wrap(wrap)
	}
	r.writes = testenv.CountWrites(rc)
	if r.ap, err = appliers.New(rc); err != nil {
		t.Fatal(err)
	}
	r.ap.DefaultNamespace = r.ns
	return r
}

// objects reads a fixture of testdata/fields, prepared as the agent does.
func (r *rig) objects(file string) []*unstructured.Unstructured {
	r.t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "fields", file))
	if err != nil {
		r.t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			r.t.Fatalf("%s: %v", file, err)
		}
		out = append(out, u)
	}
	if err := r.ap.Prepare(out); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// kubectlApply creates objs as client-side `kubectl apply` does: a create
// by the field manager kubectl-client-side-apply, carrying the
// last-applied-configuration annotation.
func (r *rig) kubectlApply(objs []*unstructured.Unstructured) {
	r.t.Helper()
	for _, o := range objs {
		o = o.DeepCopy()
		last, err := json.Marshal(o.Object)
		if err != nil {
			r.t.Fatal(err)
		}
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[appliers.LastAppliedAnnotation] = string(last) + "\n"
		o.SetAnnotations(ann)
		if _, err := r.res(o).Create(context.Background(), o, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rig) res(o *unstructured.Unstructured) dynamic.ResourceInterface {
	r.t.Helper()
	m, err := r.ap.Mapping(appliers.RefOf(o))
	if err != nil {
		r.t.Fatal(err)
	}
	return r.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
}

func (r *rig) get(kind, name string) *unstructured.Unstructured {
	r.t.Helper()
	ref := appliers.ObjectRef{Version: "v1", Kind: kind, Namespace: r.ns, Name: name}
	if kind == "Deployment" {
		ref.Group = "apps"
	}
	u, err := r.ap.Get(context.Background(), ref)
	if err != nil || u == nil {
		r.t.Fatalf("reading %s %s: %v", kind, name, err)
	}
	return u
}

// sync diffs and applies objs, and returns the diff.
func (r *rig) sync(objs []*unstructured.Unstructured) appliers.ChangeSet {
	r.t.Helper()
	ctx := context.Background()
	diff, err := r.ap.Diff(ctx, objs)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.ap.Apply(ctx, objs, diff); err != nil {
		r.t.Fatal(err)
	}
	return diff
}

// assertIdle diffs objs again: every object Unchanged, and applying that
// diff writes nothing.
func (r *rig) assertIdle(objs []*unstructured.Unstructured) {
	r.t.Helper()
	before := r.writes.Load()
	diff := r.sync(objs)
	for _, c := range diff {
		if c.Action != appliers.Unchanged {
			r.t.Errorf("second pass: %s %s, want unchanged:\n%s", c.Ref, c.Action, c.Diff)
		}
	}
	if n := r.writes.Load() - before; n != 0 {
		r.t.Errorf("second pass made %d writes, want 0", n)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func managers(u *unstructured.Unstructured) []string {
	var out []string
	for _, e := range u.GetManagedFields() {
		out = append(out, e.Manager+"/"+string(e.Operation)+"/"+e.Subresource)
	}
	return out
}

// TestTakeoverAdoptsKubectlApply (case 05): objects made by client-side
// kubectl apply are adopted: what git leaves out (a ConfigMap key, an env
// var, a label) is removed, the diff says so beforehand without writing,
// the last-applied annotation and kubectl's manager entry go, and a second
// pass writes nothing. A later removal in git is applied too.
func TestTakeoverAdoptsKubectlApply(t *testing.T) {
	r := newRig(t)
	r.kubectlApply(r.objects("adopt-kubectl-pre.yaml"))
	cmRV := r.get("ConfigMap", "orders-settings").GetResourceVersion()
	v1 := r.objects("adopt-kubectl-v1.yaml")

	diff, err := r.ap.Diff(context.Background(), v1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range diff {
		if c.Action != appliers.Configured {
			t.Errorf("diff of %s = %s, want configured (kubectl's fields not in git go away)", c.Ref, c.Action)
		}
		for _, gone := range []string{"tier: backend", map[string]string{"ConfigMap": "LEGACY_ENDPOINT", "Deployment": "LEGACY_MODE"}[c.Ref.Kind]} {
			if !strings.Contains(c.Diff, "-") || !slices.ContainsFunc(strings.Split(c.Diff, "\n"), func(l string) bool { return strings.HasPrefix(l, "-") && strings.Contains(l, gone) }) {
				t.Errorf("diff of %s does not show %q going away:\n%s", c.Ref, gone, c.Diff)
			}
		}
	}
	if got := r.get("ConfigMap", "orders-settings").GetResourceVersion(); got != cmRV {
		t.Fatal("Diff wrote to the cluster")
	}

	r.sync(v1)
	cm := r.get("ConfigMap", "orders-settings")
	data, _, _ := unstructured.NestedMap(cm.Object, "data")
	if got := keys(data); !slices.Equal(got, []string{"FEATURE_SPLIT_SHIPPING", "LOG_LEVEL"}) {
		t.Errorf("ConfigMap keys = %v, want [FEATURE_SPLIT_SHIPPING LOG_LEVEL]", got)
	}
	d := r.get("Deployment", "orders")
	env, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if got, _ := json.Marshal(env[0].(map[string]any)["env"]); string(got) != `[{"name":"LOG_FORMAT","value":"json"}]` {
		t.Errorf("env = %s, want only LOG_FORMAT=json", got)
	}
	for _, u := range []*unstructured.Unstructured{cm, d} {
		if _, ok := u.GetLabels()["tier"]; ok {
			t.Errorf("%s keeps label tier", u.GetKind())
		}
		if _, ok := u.GetAnnotations()[appliers.LastAppliedAnnotation]; ok {
			t.Errorf("%s keeps %s", u.GetKind(), appliers.LastAppliedAnnotation)
		}
		if ms := managers(u); slices.ContainsFunc(ms, func(m string) bool { return strings.HasPrefix(m, "kubectl-client-side-apply/") }) {
			t.Errorf("%s managers %v still list kubectl-client-side-apply", u.GetKind(), ms)
		}
	}
	r.assertIdle(v1)

	r.sync(r.objects("adopt-kubectl-v2.yaml"))
	cm = r.get("ConfigMap", "orders-settings")
	data, _, _ = unstructured.NestedMap(cm.Object, "data")
	if got := keys(data); !slices.Equal(got, []string{"LOG_LEVEL"}) {
		t.Errorf("after git dropped FEATURE_SPLIT_SHIPPING: keys = %v, want [LOG_LEVEL]", got)
	}
}

// TestTakeoverLeavesOthers: fields of managers not on the takeover list (a
// controller's Update, the scale subresource) stay when git leaves them out.
func TestTakeoverLeavesOthers(t *testing.T) {
	r := newRig(t)
	v1 := r.objects("adopt-kubectl-v1.yaml")
	r.sync(v1)
	ctx := context.Background()
	cm := r.get("ConfigMap", "orders-settings")
	if _, err := r.res(cm).Patch(ctx, cm.GetName(), types.MergePatchType, []byte(`{"data":{"INJECTED":"yes"}}`),
		metav1.PatchOptions{FieldManager: "some-operator"}); err != nil {
		t.Fatal(err)
	}
	r.assertIdle(v1)
	data, _, _ := unstructured.NestedMap(r.get("ConfigMap", "orders-settings").Object, "data")
	if _, ok := data["INJECTED"]; !ok {
		t.Error("a key owned by a manager not on the takeover list was removed")
	}
}

// TestStringDataAppliedByOlderGitpace (case 13, the older gitpace): a
// Secret that gitpace applied with stringData (so its manager owns
// stringData.<key>, and data.<key> has no owner) loses a key that git drops
// once applied by this gitpace, which owns data keys.
func TestStringDataAppliedByOlderGitpace(t *testing.T) {
	r := newRig(t)
	v1 := r.objects("stringdata-v1.yaml")
	body, err := json.Marshal(v1[0].Object)
	if err != nil {
		t.Fatal(err)
	}
	force := true
	if _, err := r.res(v1[0]).Patch(context.Background(), "smtp", types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: appliers.FieldManager, Force: &force}); err != nil {
		t.Fatal(err)
	}
	r.assertIdle(v1) // the same keys as data: no change
	r.sync(r.objects("stringdata-v2.yaml"))
	data, _, _ := unstructured.NestedMap(r.get("Secret", "smtp").Object, "data")
	if got := keys(data); !slices.Equal(got, []string{"HOST", "PASSWORD", "USER"}) {
		t.Errorf("keys after LEGACY_RELAY left git = %v, want [HOST PASSWORD USER]", got)
	}
	r.assertIdle(r.objects("stringdata-v3.yaml")) // same values written as data
}

// TestTakeoverKeepsUndeclaredReplicas: adopting a Deployment that kubectl
// applied with replicas 2, from git that does not declare replicas: the
// takeover makes gitpace's manager own spec.replicas, so it is handed over
// first (gitpace-handover) and stays 2, not the default 1.
func TestTakeoverKeepsUndeclaredReplicas(t *testing.T) {
	r := newRig(t)
	r.kubectlApply(r.objects("adopt-kubectl-pre.yaml"))
	v1 := r.objects("adopt-kubectl-v1.yaml")
	for _, o := range v1 {
		unstructured.RemoveNestedField(o.Object, "spec", "replicas")
	}
	r.sync(v1)
	d := r.get("Deployment", "orders")
	if n, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); n != 2 {
		t.Errorf("spec.replicas = %d after adoption, want 2 (kept)", n)
	}
	if ms := managers(d); !slices.Contains(ms, appliers.HandoverFieldManager+"/Apply/") {
		t.Errorf("managers %v: no %s", ms, appliers.HandoverFieldManager)
	}
	r.assertIdle(v1)
}

// TestTakeoverDryRunAfterConcurrentWrite: the dry-run update that predicts
// a takeover carries the live resourceVersion (custom resources refuse an
// update without one); when another writer changed the object between the
// read and that dry run, the conflict reads the current resourceVersion
// and tries again instead of failing the diff.
func TestTakeoverDryRunAfterConcurrentWrite(t *testing.T) {
	var r *rig
	var bumped atomic.Bool
	r = newRigWrapped(t, func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut && req.URL.Query().Has("dryRun") && bumped.CompareAndSwap(false, true) {
				// Another writer, between the diff's read and its dry run.
				if _, err := r.kube.CoreV1().ConfigMaps(r.ns).Patch(req.Context(), "settings", types.MergePatchType,
					[]byte(`{"metadata":{"annotations":{"other":"x"}}}`), metav1.PatchOptions{FieldManager: "other"}); err != nil {
					t.Error(err)
				}
			}
			return rt.RoundTrip(req)
		})
	})
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "settings", "namespace": r.ns}, "data": map[string]any{"a": "1"}}}
	objs := []*unstructured.Unstructured{cm}
	r.sync(objs)
	if _, err := r.kube.CoreV1().ConfigMaps(r.ns).Patch(context.Background(), "settings", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"hacked":"yes"}}}`), metav1.PatchOptions{FieldManager: "kubectl-label"}); err != nil {
		t.Fatal(err)
	}
	diff, err := r.ap.Diff(context.Background(), objs)
	if err != nil {
		t.Fatalf("diff after a concurrent write: %v", err)
	}
	if !bumped.Load() || len(diff) != 1 || diff[0].Action != appliers.Configured || !strings.Contains(diff[0].Diff, "hacked") {
		t.Fatalf("bumped %v; diff %+v, want the label going away", bumped.Load(), diff)
	}
}
