package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/state"
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
		"apps/platform/c-crd.yaml":    crdYAML(group, "Widget", "x-kubernetes-preserve-unknown-fields: true"),
		"apps/platform/d-ns.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + newNS + "\n",
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

// TestRefusedAtApplyUndone: an object that passes the dry run but is refused
// when applied (here by a ValidatingAdmissionPolicy that lets dry runs
// through) rejects the revision, and what the attempt had applied before it
// is undone: the changed ConfigMap has its previous data again, the new one
// is deleted. The agent does not retry at every pass; the next commit
// applies.
func TestRefusedAtApplyUndone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cmYAML := func(name, value string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  v: %q\n", name, value)
	}
	good := f.repo.Commit("v1", map[string]string{"apps/web/a-keep.yaml": cmYAML("keep", "1")})
	f.build(nil)
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}

	refuseOutsideDryRun(t, f.ns, "explode")
	refused := f.repo.Commit("v2 with an object the policy refuses", map[string]string{
		"apps/web/a-keep.yaml":    cmYAML("keep", "2"),
		"apps/web/b-fresh.yaml":   cmYAML("fresh", "new"),
		"apps/web/c-explode.yaml": cmYAML("explode", "boom"),
	})
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatalf("a refusal is not a transient error: %v", err)
	}
	st := f.appState("web")
	if st.Rejected == nil || st.Rejected.Revision.Commit != refused || !st.Rejected.AtApply ||
		!strings.Contains(st.Rejected.Error, "apps/web/c-explode.yaml") || !strings.Contains(st.Rejected.Error, "refused outside dry run") ||
		!strings.Contains(st.Rejected.Error, "undid the 2 change(s)") {
		t.Fatalf("rejection = %+v; want the refused file, the policy's message and 2 changes undone", st.Rejected)
	}
	if st.Applied.Commit != good || st.Phase != state.Failed {
		t.Errorf("applied %s phase %s; want %s in force, Failed", st.Applied.Commit, st.Phase, good)
	}
	keep, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "keep", metav1.GetOptions{})
	if err != nil || keep.Data["v"] != "1" {
		t.Errorf("keep = %v, %v; want its previous data v=1 restored", keep.Data, err)
	}
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "fresh", metav1.GetOptions{}); err == nil {
		t.Error("the ConfigMap the refused revision created is still there")
	}

	// Another pass with nothing new neither writes nor undoes again.
	before := keep.ResourceVersion
	f.agent.MarkDirty("web")
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if keep, _ := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "keep", metav1.GetOptions{}); keep.ResourceVersion != before {
		t.Errorf("a drift pass retried the refused revision: keep resourceVersion %s -> %s", before, keep.ResourceVersion)
	}
	if st := f.appState("web"); st.Phase != state.Failed || !strings.Contains(st.Reason, "rejected") {
		t.Errorf("after a drift pass: %s %q; want still Failed with the rejection", st.Phase, st.Reason)
	}

	fixed := f.repo.Commit("v3 without it", map[string]string{"apps/web/c-explode.yaml": gittest.Delete})
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.appState("web"); st.Rejected != nil || st.Applied.Commit != fixed {
		t.Fatalf("after the fix: rejected %+v applied %s", st.Rejected, st.Applied.Commit)
	}
	if keep, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "keep", metav1.GetOptions{}); err != nil || keep.Data["v"] != "2" {
		t.Errorf("keep = %v, %v; want v=2", keep.Data, err)
	}
}

// refuseOutsideDryRun installs a ValidatingAdmissionPolicy that refuses
// ConfigMaps named name in namespace ns unless the request is a dry run, and
// waits until the API server enforces it.
func refuseOutsideDryRun(t *testing.T, ns, name string) {
	t.Helper()
	cs := testenv.Client(t)
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	admissionPolicy(t, ns, []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		fmt.Sprintf("request.dryRun || object.metadata.name != %q", name), name+" refused outside dry run",
		func(ctx context.Context) error {
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, probe, metav1.CreateOptions{})
			if err == nil {
				_ = cs.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{})
			}
			return err
		})
}

// admissionPolicy installs a ValidatingAdmissionPolicy on ConfigMaps in
// namespace ns for ops, allowing a request only when expression (CEL) holds
// and refusing it with message, removes it when the test ends, and waits
// until probe is refused with message.
func admissionPolicy(t *testing.T, ns string, ops []admissionregistrationv1.OperationType, expression, message string, probe func(context.Context) error) {
	t.Helper()
	ctx := context.Background()
	cs := testenv.Client(t)
	fail := admissionregistrationv1.Fail
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-refuse"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: ops,
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: expression, Message: message}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-refuse"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			}},
		},
	}
	if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAdmissionPolicy(t, ns) })
	if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The API server loads policies asynchronously: probe until refused.
	deadline := time.Now().Add(time.Minute)
	for {
		err := probe(ctx)
		if err != nil && strings.Contains(err.Error(), message) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy not enforced after a minute (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func removeAdmissionPolicy(t *testing.T, ns string) {
	cs := testenv.Client(t)
	_ = cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), ns+"-refuse", metav1.DeleteOptions{})
	_ = cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), ns+"-refuse", metav1.DeleteOptions{})
}

// TestInvalidCustomResourceUndoesItsCRD: a custom resource cannot be
// dry-run before its CRD (same revision) exists, so it is validated when
// applied (in the default namespace, as it names none); when the API server
// refuses it for its schema, the CRD the attempt created is deleted again
// and the revision is rejected naming the file and the field.
func TestInvalidCustomResourceUndoesItsCRD(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	group := "t" + strings.ReplaceAll(strings.TrimPrefix(f.ns, "testinvalidcustomresourceundoesitscrd-"), "-", "") + ".gitpace.dev"
	crd := crdYAML(group, "Gadget", "properties:\n  spec:\n    type: object\n    properties:\n      size: {type: integer}")
	refused := f.repo.Commit("crd and a bad gadget", map[string]string{
		"apps/platform/crd.yaml":    crd,
		"apps/platform/gadget.yaml": fmt.Sprintf("apiVersion: %s/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  size: three\n", group),
	})
	f.build(nil)
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatalf("bad input must not be a transient error: %v", err)
	}
	st := f.appState("platform")
	if st.Rejected == nil || st.Rejected.Revision.Commit != refused || !strings.Contains(st.Rejected.Error, "apps/platform/gadget.yaml") ||
		!strings.Contains(st.Rejected.Error, "spec.size") || !strings.Contains(st.Rejected.Error, "undid the 1 change(s)") {
		t.Fatalf("rejection = %+v; want one naming apps/platform/gadget.yaml and the CRD undone", st.Rejected)
	}
	dyn, err := dynamic.NewForConfig(testenv.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	t.Cleanup(func() {
		_ = dyn.Resource(crdGVR).Delete(context.Background(), "gadgets."+group, metav1.DeleteOptions{})
	})
	f.eventually("the CRD of the refused revision deleted", 30*time.Second, func() bool {
		_, err := dyn.Resource(crdGVR).Get(ctx, "gadgets."+group, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// crdYAML is a namespaced CRD for kind in group, served at v1, whose
// openAPIV3Schema is "type: object" plus schema (YAML, one level in).
func crdYAML(group, kind, schema string) string {
	lower := strings.ToLower(kind)
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[2]ss.%[1]s
spec:
  group: %[1]s
  names: {kind: %[3]s, plural: %[2]ss, singular: %[2]s, listKind: %[3]sList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
%[4]s
`, group, lower, kind, indent(schema, "        "))
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// TestPruneRefusedKeepsInventory: when a prune is refused (here by a policy
// on DELETE), the revision is still recorded as applied, the error is
// returned for a retry, and the object stays in the inventory, so that the
// next full pass prunes it once the refusal is lifted.
func TestPruneRefusedKeepsInventory(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cmYAML := func(name string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  v: x\n", name)
	}
	f.repo.Commit("two", map[string]string{"apps/web/sticky.yaml": cmYAML("sticky"), "apps/web/loose.yaml": cmYAML("loose")})
	f.build(nil)
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	cs := testenv.Client(t)
	exists := func(name string) bool {
		_, err := cs.CoreV1().ConfigMaps(f.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil
	}
	admissionPolicy(t, f.ns, []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
		"oldObject.metadata.name != 'sticky'", "sticky stays",
		func(ctx context.Context) error {
			return cs.CoreV1().ConfigMaps(f.ns).Delete(ctx, "sticky", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		})

	dropped := f.repo.Commit("drop both", map[string]string{"apps/web/sticky.yaml": gittest.Delete, "apps/web/loose.yaml": gittest.Delete, "apps/web/keep.yaml": cmYAML("keep")})
	err := f.agent.ReconcileOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), "pruning failed") || !strings.Contains(err.Error(), "sticky stays") {
		t.Fatalf("ReconcileOnce = %v; want the refused prune", err)
	}
	st := f.appState("web")
	if st.Applied == nil || st.Applied.Commit != dropped || st.Rejected != nil {
		t.Fatalf("applied %+v rejected %+v; want %s recorded as applied", st.Applied, st.Rejected, dropped[:7])
	}
	if !exists("keep") || exists("loose") || !exists("sticky") || !inInventory(st.Inventory, "sticky") || inInventory(st.Inventory, "loose") {
		t.Fatalf("keep %v, loose %v, sticky %v (in inventory: sticky %v, loose %v)", exists("keep"), exists("loose"), exists("sticky"),
			inInventory(st.Inventory, "sticky"), inInventory(st.Inventory, "loose"))
	}

	removeAdmissionPolicy(t, f.ns)
	f.eventually("the policy no longer enforced", time.Minute, func() bool {
		return cs.CoreV1().ConfigMaps(f.ns).Delete(ctx, "sticky", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}) == nil
	})
	restarted := f.rebuild() // a new process: its first pass is a full one
	if err := restarted.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if exists("sticky") || inInventory(f.appState("web").Inventory, "sticky") {
		t.Error("the refused prune was not retried by the next full pass")
	}
}

func inInventory(refs []appliers.ObjectRef, name string) bool {
	for _, r := range refs {
		if r.Name == name {
			return true
		}
	}
	return false
}
