package appliers

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// spec.replicas and HorizontalPodAutoscalers.
//
// A workload that an HPA targets has its spec.replicas written by the HPA
// controller (through the scale subresource); if gitpace applied git's value
// too, each would undo the other (fluxcd/flux2#1842). So gitpace leaves the
// field to the HPA: it drops spec.replicas from what it applies and says so
// (Change.Warning). An HPA counts when the same revision holds it or when it
// is live in the workload's namespace; its scaleTargetRef names the workload
// by group, kind and name.
//
// When a revision stops declaring spec.replicas (or leaves it to an HPA)
// while gitpace's manager owns the live field, a plain apply would remove it
// and the workload would fall to the default of 1 replica
// (kubernetes/kubernetes#67135). gitpace first hands the live value over:
// it applies {spec.replicas: live} under HandoverFieldManager, not forced
// (the documented migration, kubernetes/website#29739), so the field keeps
// an owner and its value; `kubectl scale` and HPAs then take it from there.

var (
	hpaGVR       = schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}
	replicasPath = fieldpath.MakePathOrDie("spec", "replicas")
)

// hpaIndex finds the HPA that targets a workload; it lists each namespace's
// live HPAs at most once. Safe for concurrent use.
type hpaIndex struct {
	dyn dynamic.Interface
	git map[string]string // target key → HPA, from the revision (read only)

	mu   sync.Mutex // held while listing: each namespace once
	live map[string]map[string]string
}

func targetKey(group, kind, ns, name string) string {
	return group + "/" + kind + "/" + ns + "/" + name
}

func newHPAIndex(dyn dynamic.Interface, objs []*unstructured.Unstructured) *hpaIndex {
	x := &hpaIndex{dyn: dyn, git: map[string]string{}, live: map[string]map[string]string{}}
	for _, o := range objs {
		if o.GetKind() == "HorizontalPodAutoscaler" && RefOf(o).Group == "autoscaling" {
			if k, ok := hpaTarget(o); ok {
				x.git[k] = RefOf(o).String()
			}
		}
	}
	return x
}

func hpaTarget(hpa *unstructured.Unstructured) (string, bool) {
	apiVersion, _, _ := unstructured.NestedString(hpa.Object, "spec", "scaleTargetRef", "apiVersion")
	kind, _, _ := unstructured.NestedString(hpa.Object, "spec", "scaleTargetRef", "kind")
	name, _, _ := unstructured.NestedString(hpa.Object, "spec", "scaleTargetRef", "name")
	if kind == "" || name == "" {
		return "", false
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return "", false
	}
	return targetKey(gv.Group, kind, hpa.GetNamespace(), name), true
}

// targeting returns the HPA (Kind/namespace/name) that targets ref, or "".
// An API server that serves no autoscaling/v2, or forbids listing it, has
// no live HPA to count.
func (x *hpaIndex) targeting(ctx context.Context, ref ObjectRef) (string, error) {
	if h := x.inRevision(ref); h != "" {
		return h, nil
	}
	if ref.Namespace == "" {
		return "", nil
	}
	key := targetKey(ref.Group, ref.Kind, ref.Namespace, ref.Name)
	x.mu.Lock()
	defer x.mu.Unlock()
	live, ok := x.live[ref.Namespace]
	if !ok {
		live = map[string]string{}
		l, err := x.dyn.Resource(hpaGVR).Namespace(ref.Namespace).List(ctx, metav1.ListOptions{})
		switch {
		case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		case err != nil:
			return "", fmt.Errorf("listing HorizontalPodAutoscalers in %s: %w", ref.Namespace, err)
		default:
			for i := range l.Items {
				if k, ok := hpaTarget(&l.Items[i]); ok {
					live[k] = RefOf(&l.Items[i]).String()
				}
			}
		}
		x.live[ref.Namespace] = live
	}
	return live[key], nil
}

// inRevision returns the HPA of the revision that targets ref, or "".
func (x *hpaIndex) inRevision(ref ObjectRef) string {
	return x.git[targetKey(ref.Group, ref.Kind, ref.Namespace, ref.Name)]
}

// declaresReplicas reports whether u sets spec.replicas.
func declaresReplicas(u *unstructured.Unstructured) bool {
	_, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas")
	return found
}

// withoutReplicas returns a copy of u without spec.replicas.
func withoutReplicas(u *unstructured.Unstructured) *unstructured.Unstructured {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "spec", "replicas")
	return c
}

// needsHandover reports whether applying send would make the live
// spec.replicas lose its value: send does not declare it, live has it, and
// gitpace's manager owns it (or will, by taking it over: t).
func needsHandover(live, send *unstructured.Unstructured, t *takeover) (bool, error) {
	if live == nil || declaresReplicas(send) || !declaresReplicas(live) {
		return false, nil
	}
	if t != nil && t.fields.Has(replicasPath) {
		return true, nil
	}
	for _, e := range live.GetManagedFields() {
		if isGitpaceEntry(e) {
			s, err := entrySet(e)
			if err != nil {
				return false, err
			}
			return s.Has(replicasPath), nil
		}
	}
	return false, nil
}

// handOver applies the live spec.replicas under HandoverFieldManager, not
// forced: gitpace's manager and it then share the field with the same
// value, and gitpace's next apply, which leaves it out, drops only its own
// share. A conflict means another manager owns the field already (an HPA
// scaled meanwhile): nothing to hand over.
func (a *Applier) handOver(ctx context.Context, ri dynamic.ResourceInterface, live *unstructured.Unstructured) error {
	n, _, _ := unstructured.NestedFieldNoCopy(live.Object, "spec", "replicas")
	body, err := json.Marshal(map[string]any{
		"apiVersion": live.GetAPIVersion(), "kind": live.GetKind(),
		"metadata": map[string]any{"name": live.GetName(), "namespace": live.GetNamespace()},
		"spec":     map[string]any{"replicas": n},
	})
	if err != nil {
		return err
	}
	_, err = ri.Patch(ctx, live.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: HandoverFieldManager})
	if apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("handing spec.replicas (%v) over to %s: %w", n, HandoverFieldManager, err)
	}
	return nil
}
