package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// testGroup is an API group of the test's own.
func testGroup(f *fixture) string {
	return "t" + strings.ReplaceAll(f.ns[max(0, len(f.ns)-12):], "-", "") + ".gitpace.dev"
}

// crdTest returns the test's API group and a dynamic client, and deletes
// the CRD <plural>.<group> when the test ends.
func crdTest(t *testing.T, f *fixture, plural string) (string, dynamic.Interface) {
	t.Helper()
	group := testGroup(f)
	dyn, err := dynamic.NewForConfig(testenv.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(crdGVR).Delete(context.Background(), plural+"."+group, metav1.DeleteOptions{})
	})
	return group, dyn
}

// TestClusterScopedCustomResourceWithStrayNamespace (case 10): a CRD with
// scope Cluster and, in the same revision, a resource of it carrying a
// stray metadata.namespace. It is keyed as the server keys it (no
// namespace): a commit to another app, and an agent restart, neither
// delete it nor add to its app's history.
func TestClusterScopedCustomResourceWithStrayNamespace(t *testing.T) {
	f := newFixture(t)
	group, dyn := crdTest(t, f, "zones")
	crd := strings.Replace(crdYAML(group, "Zone", "x-kubernetes-preserve-unknown-fields: true"), "scope: Namespaced", "scope: Cluster", 1)
	zone := fmt.Sprintf("apiVersion: %s/v1\nkind: Zone\nmetadata:\n  name: shop-example\n  namespace: %s\nspec:\n  ttl: 300\n", group, f.ns)
	f.repo.Commit("dns", map[string]string{"apps/dns/crd.yaml": crd, "apps/dns/zone.yaml": zone, "apps/other/cm.yaml": cm})
	f.build(nil)
	f.pass(f.agent)
	zones := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "zones"})
	ctx := context.Background()
	z, err := zones.Get(ctx, "shop-example", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := zones.Watch(ctx, metav1.ListOptions{ResourceVersion: z.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, ref := range f.appState("dns").Inventory {
		if ref.Kind == "Zone" && ref.Namespace != "" {
			t.Errorf("inventory keys the cluster-scoped Zone with namespace %q", ref.Namespace)
		}
	}
	f.repo.Commit("touch other", map[string]string{"apps/other/cm.yaml": strings.Replace(cm, "hello", "hi", 1)})
	f.pass(f.agent)
	f.agent = f.rebuild() // the restart
	f.pass(f.agent)
	f.repo.Commit("touch other again", map[string]string{"apps/other/cm.yaml": cm})
	f.pass(f.agent)
	if got, err := zones.Get(ctx, "shop-example", metav1.GetOptions{}); err != nil || got.GetUID() != z.GetUID() {
		t.Fatalf("Zone after a commit elsewhere and a restart: %v (uid %v, want %v)\n%s", err, got.GetUID(), z.GetUID(), f.out.String())
	}
	for drained := false; !drained; {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Deleted {
				t.Fatalf("the Zone was deleted\n%s", f.out.String())
			}
		default:
			drained = true
		}
	}
	st := f.appState("dns")
	if len(st.History) != 1 || st.Phase != state.Synced || len(st.Inventory) != 2 {
		t.Errorf("dns: history %d entries (want 1), %s, inventory %v", len(st.History), st.Phase, st.Inventory)
	}
}

// TestCRDScopeChangedWithoutRestart (case 11): a namespaced CRD and its
// resource leave git; then the CRD comes back cluster-scoped with its
// resource. Discovery's memory of the old scope does not reject it: the
// running agent applies it, no restart needed.
func TestCRDScopeChangedWithoutRestart(t *testing.T) {
	f := newFixture(t)
	group, dyn := crdTest(t, f, "gadgets")
	crd := crdYAML(group, "Gadget", "x-kubernetes-preserve-unknown-fields: true")
	g1 := fmt.Sprintf("apiVersion: %s/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  size: 1\n", group)
	f.repo.Commit("gadgets", map[string]string{"apps/gadgets/crd.yaml": crd, "apps/gadgets/g1.yaml": g1, "apps/other/cm.yaml": cm})
	f.build(nil)
	f.pass(f.agent)
	gadgets := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "gadgets"})
	ctx := context.Background()
	if _, err := gadgets.Namespace(f.ns).Get(ctx, "g1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("remove gadgets", map[string]string{"apps/gadgets/crd.yaml": gittest.Delete, "apps/gadgets/g1.yaml": gittest.Delete})
	f.pass(f.agent)
	f.eventually("CRD gone", time.Minute, func() bool {
		_, err := dyn.Resource(crdGVR).Get(ctx, "gadgets."+group, metav1.GetOptions{})
		return err != nil
	})
	f.repo.Commit("gadgets, cluster-scoped", map[string]string{
		"apps/gadgets/crd.yaml": strings.Replace(crd, "scope: Namespaced", "scope: Cluster", 1), "apps/gadgets/g1.yaml": g1})
	f.pass(f.agent)
	if _, err := gadgets.Get(ctx, "g1", metav1.GetOptions{}); err != nil {
		t.Fatalf("cluster-scoped g1: %v\n%s", err, f.out.String())
	}
	if st := f.appState("gadgets"); st.Phase != state.Synced || st.Rejected != nil {
		t.Fatalf("gadgets: %s %s", st.Phase, st.Reason)
	}
	// A fresh process and the running agent agree: nothing to change.
	_, diffs, err := f.rebuild().Diff(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		if d.Error != "" || d.Changes.Changed() {
			t.Errorf("fresh diff of %s: %s %v", d.App, d.Error, d.Changes.Summary())
		}
	}
}

// TestRemotePollAfterBCSRollout (issue 8 §5): with a remote repository
// (file://, so no fsnotify) and a BCS deployment, commits pushed after its
// rollout are still picked up at the poll interval: a ReplicaSet event
// must not push the next poll back to the paced engine's next due time.
func TestRemotePollAfterBCSRollout(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("bcs", map[string]string{"apps/web/test.json": bcsSeed(t, "test1-1-0.json", f.ns), "apps/other/cm.yaml": cm})
	src, err := sources.NewGitSource(sources.GitConfig{URL: "file://" + f.repo.Dir, Branch: "main", Path: "apps", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = agent.Config{Source: src, Rest: testenv.Config(t), StateNamespace: f.stateNS, DefaultNamespace: f.ns,
		Interval: time.Second, Resync: time.Hour, Out: f.out, Log: f.logger()}
	f.rebuild()
	f.run()
	f.eventually("BCS application test Ready", time.Minute, func() bool {
		rs, err := f.kube.AppsV1().ReplicaSets(f.ns).Get(context.Background(), "test", metav1.GetOptions{})
		st := f.appState("web")
		return err == nil && rs.Status.ReadyReplicas == 2 && st != nil && st.Phase == state.Synced
	})
	for i := range 3 {
		want := fmt.Sprintf("v%d", i)
		f.repo.Commit("cm "+want, map[string]string{"apps/other/cm.yaml": strings.Replace(cm, "hello", want, 1)})
		// A ReplicaSet event between polls (what the finished rollout's
		// pods do): the poll must still come within its interval.
		if _, err := f.kube.AppsV1().ReplicaSets(f.ns).Patch(context.Background(), "test", "application/merge-patch+json",
			[]byte(fmt.Sprintf(`{"metadata":{"annotations":{"poke":%q}}}`, want)), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		f.eventually("commit "+want+" applied within a few poll intervals", 10*time.Second, func() bool {
			c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "test-config", metav1.GetOptions{})
			return err == nil && c.Data["greeting"] == want
		})
	}
}

// TestCustomResourceWaitsForAnotherAppsCRD: a custom resource in one app
// (aa-widgets, first by name) whose CRD another app of the same revision
// brings (zz-crds). The apps are reconciled concurrently; the custom
// resource's app waits for the CRD instead of being rejected, and one
// `--once` pass applies both.
func TestCustomResourceWaitsForAnotherAppsCRD(t *testing.T) {
	f := newFixture(t)
	group, dyn := crdTest(t, f, "widgets")
	widget := fmt.Sprintf("apiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n", group)
	f.repo.Commit("crd and widget in two apps", map[string]string{
		"apps/aa-widgets/widget.yaml": widget,
		"apps/zz-crds/crd.yaml":       crdYAML(group, "Widget", "x-kubernetes-preserve-unknown-fields: true"),
	})
	f.build(nil)
	f.pass(f.agent)
	if _, err := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(f.ns).Get(context.Background(), "w1", metav1.GetOptions{}); err != nil {
		t.Fatalf("Widget w1 not applied in the pass: %v\n%s", err, f.out.String())
	}
	for _, app := range []string{"aa-widgets", "zz-crds"} {
		if st := f.appState(app); st == nil || st.Phase != state.Synced || st.Rejected != nil {
			t.Errorf("app %s: %s", app, describe(st))
		}
	}
	if !strings.Contains(f.out.String(), "app aa-widgets: revision") || !strings.Contains(f.out.String(), "which app zz-crds brings") {
		t.Errorf("the wait is not reported:\n%s", f.out.String())
	}
}

// TestHandEditsOnCustomResourceUndone (fresh-user report 6, fault 3): a
// label, an annotation and a spec field added by hand to a custom resource
// (merge patches by kubectl-label, kubectl-annotate and kubectl-patch, as
// `kubectl label|annotate|patch --type merge` send them) are drift, as on a
// built-in kind: one full pass removes them, the app stays Synced, and a
// later commit applies. Before the fix, the takeover's dry-run update sent
// no resourceVersion, which the API server refuses for custom resources,
// and every later revision was rejected as invalid.
func TestHandEditsOnCustomResourceUndone(t *testing.T) {
	f := newFixture(t)
	group, dyn := crdTest(t, f, "gizmos")
	gizmo := fmt.Sprintf("apiVersion: %s/v1\nkind: Gizmo\nmetadata:\n  name: g1\n  labels:\n    tier: web\nspec:\n  size: 1\n", group)
	f.repo.Commit("gizmos", map[string]string{"apps/gizmos/crd.yaml": crdYAML(group, "Gizmo", "x-kubernetes-preserve-unknown-fields: true"),
		"apps/gizmos/g1.yaml": gizmo, "apps/gizmos/cm.yaml": cm})
	f.build(nil)
	f.pass(f.agent)
	ctx := context.Background()
	gizmos := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "gizmos"}).Namespace(f.ns)
	edits := []struct{ manager, patch string }{
		{"kubectl-label", `{"metadata":{"labels":{"hacked":"yes"}}}`},
		{"kubectl-annotate", `{"metadata":{"annotations":{"oncall":"paged"}}}`},
		{"kubectl-patch", `{"spec":{"debug":true}}`},
	}
	for _, e := range edits {
		if _, err := gizmos.Patch(ctx, "g1", types.MergePatchType, []byte(e.patch), metav1.PatchOptions{FieldManager: e.manager}); err != nil {
			t.Fatal(err)
		}
	}
	// The same on a built-in kind of the same app.
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Patch(ctx, "test-config", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"hacked":"yes"}}}`), metav1.PatchOptions{FieldManager: "kubectl-label"}); err != nil {
		t.Fatal(err)
	}
	b := f.rebuild() // a full pass, as at a --resync
	f.pass(b)
	st := f.appState("gizmos")
	if st == nil || st.Phase != state.Synced || st.Rejected != nil {
		t.Fatalf("gizmos after the hand edits: %s\n%s", describe(st), f.out.String())
	}
	g, err := gizmos.Get(ctx, "g1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.GetLabels()["hacked"]; ok {
		t.Errorf("label hacked=yes not removed: %v", g.GetLabels())
	}
	if _, ok := g.GetAnnotations()["oncall"]; ok {
		t.Errorf("annotation oncall not removed: %v", g.GetAnnotations())
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(g.Object, "spec", "debug"); ok {
		t.Errorf("spec.debug not removed: %v", g.Object["spec"])
	}
	if c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "test-config", metav1.GetOptions{}); err != nil || c.Labels["hacked"] != "" {
		t.Errorf("ConfigMap label hacked=yes not removed: %v %v", err, c.Labels)
	}
	if want := "drift: ConfigMap/" + f.ns + "/test-config, Gizmo/" + f.ns + "/g1 differed from git"; strings.Count(f.out.String(), "drift:") != 1 ||
		!strings.Contains(f.out.String(), want) {
		t.Errorf("want one drift line %q:\n%s", want, f.out.String())
	}
	f.assertNoWrites(b)

	next := f.repo.Commit("gizmo size 2", map[string]string{"apps/gizmos/g1.yaml": strings.Replace(gizmo, "size: 1", "size: 2", 1)})
	f.pass(b)
	if st := f.appState("gizmos"); st.Phase != state.Synced || st.Rejected != nil || st.Applied == nil || st.Applied.Commit != next {
		t.Fatalf("gizmos after the next commit: %s", describe(st))
	}
	if g, err := gizmos.Get(ctx, "g1", metav1.GetOptions{}); err != nil || g.Object["spec"].(map[string]any)["size"] != int64(2) {
		t.Errorf("next commit not applied: %v %v", err, g)
	}
}
