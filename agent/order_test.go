package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/gitpace/gitpace/internal/testenv"
)

// TestNamespaceAndCRDFirst: one revision holding a Namespace, a CRD and
// objects that need both (a ConfigMap in the new namespace, a custom
// resource of the new kind) applies: Namespaces and CRDs go first.
func TestNamespaceAndCRDFirst(t *testing.T) {
	f := newFixture(t)
	suffix := strings.TrimPrefix(f.ns, "testnamespaceandcrdfirst-")
	group := "t" + strings.ReplaceAll(suffix, "-", "") + ".gitpace.dev"
	newNS := "fresh-" + suffix
	files := map[string]string{
		"apps/platform/a-widget.yaml": fmt.Sprintf("apiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: %s\nspec:\n  size: 3\n", group, newNS),
		"apps/platform/b-cm.yaml":     fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inside\n  namespace: %s\ndata:\n  a: b\n", newNS),
		"apps/platform/c-crd.yaml": fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.%[1]s
spec:
  group: %[1]s
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, group),
		"apps/platform/d-ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + newNS + "\n",
	}
	f.repo.Commit("platform", files)
	t.Cleanup(func() {
		cs := testenv.Client(t)
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), newNS, metav1.DeleteOptions{})
	})
	f.run()
	dyn, err := dynamic.NewForConfig(testenv.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	f.eventually("widget and ConfigMap applied", time.Minute, func() bool {
		_, err1 := dyn.Resource(gvr).Namespace(newNS).Get(context.Background(), "w1", metav1.GetOptions{})
		_, err2 := f.kube.CoreV1().ConfigMaps(newNS).Get(context.Background(), "inside", metav1.GetOptions{})
		return err1 == nil && err2 == nil
	})
	f.eventually("app Synced", 30*time.Second, func() bool {
		st := f.appState("platform")
		return st != nil && st.Rejected == nil && st.Phase == "Synced"
	})
}

// TestInvalidObjectInNewNamespace: a revision creating a Namespace and, in
// it, a ConfigMap and an invalid Service is rejected before anything is
// applied (the objects are dry-run in the state namespace, standing in for
// the one that does not exist yet): no Namespace, no ConfigMap, an error
// naming the file. The fixed revision then applies whole.
func TestInvalidObjectInNewNamespace(t *testing.T) {
	f := newFixture(t)
	newNS := "fresh-" + strings.TrimPrefix(f.ns, "testinvalidobjectinnewnamespace-")
	t.Cleanup(func() {
		_ = testenv.Client(t).CoreV1().Namespaces().Delete(context.Background(), newNS, metav1.DeleteOptions{})
	})
	svc := func(port int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: %s\nspec:\n  selector: {app: web}\n  ports:\n  - port: %d\n", newNS, port)
	}
	bad := f.repo.Commit("new namespace, bad service", map[string]string{
		"apps/platform/ns.yaml":  "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + newNS + "\n",
		"apps/platform/cm.yaml":  fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inside\n  namespace: %s\ndata:\n  a: b\n", newNS),
		"apps/platform/svc.yaml": svc(99999),
	})
	f.build(nil)
	ctx := context.Background()
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatalf("bad input must not be a transient error: %v", err)
	}
	st := f.appState("platform")
	if st.Rejected == nil || st.Rejected.Revision.Commit != bad || !strings.Contains(st.Rejected.Error, "apps/platform/svc.yaml") ||
		!strings.Contains(st.Rejected.Error, "Service/"+newNS+"/web") || !strings.Contains(st.Rejected.Error, "99999") {
		t.Fatalf("rejection = %+v; want one naming apps/platform/svc.yaml, the Service and the bad port", st.Rejected)
	}
	if _, err := f.kube.CoreV1().Namespaces().Get(ctx, newNS, metav1.GetOptions{}); err == nil {
		t.Error("the Namespace of the rejected revision was created")
	}
	if _, err := f.kube.CoreV1().Services(f.stateNS).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		t.Error("the dry run left a Service in the state namespace")
	}

	fixed := f.repo.Commit("fix the port", map[string]string{"apps/platform/svc.yaml": svc(8080)})
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st = f.appState("platform")
	if st.Rejected != nil || st.Applied == nil || st.Applied.Commit != fixed {
		t.Fatalf("fixed revision: %+v", st)
	}
	if _, err := f.kube.CoreV1().Services(newNS).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("Service of the fixed revision: %v", err)
	}
	if _, err := f.kube.CoreV1().ConfigMaps(newNS).Get(ctx, "inside", metav1.GetOptions{}); err != nil {
		t.Errorf("ConfigMap of the fixed revision: %v", err)
	}
}
