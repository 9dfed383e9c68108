package appliers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
)

// RecreateAnnotation, set to "true" on an object in git, lets gitpace
// delete and re-create it when a change cannot be made in place (an
// immutable field), as Flux's kustomize.toolkit.fluxcd.io/force and Argo
// CD's Replace=true sync option do. Without it such a change rejects the
// app's revision.
const RecreateAnnotation = "gitpace.dev/recreate"

// RecreateTimeout bounds the wait for a deleted object to be gone before it
// is created again.
var RecreateTimeout = 2 * time.Minute

// wantsRecreate reports whether o opts into re-creation. Namespaces and
// CRDs never do: deleting them deletes everything in them.
func wantsRecreate(o *unstructured.Unstructured) bool {
	if o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition" {
		return false
	}
	return o.GetAnnotations()[RecreateAnnotation] == "true"
}

// validAsNew dry-runs the creation of send as a new object (generateName,
// same namespace): nil when the server would accept it. An object the
// server refuses as an update but accepts as new carries a change that
// cannot be made in place. It returns the created object, named as send.
func validAsNew(ctx context.Context, ri dynamic.ResourceInterface, send *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	c := send.DeepCopy()
	name := c.GetName()
	prefix := name
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	c.SetName("")
	c.SetGenerateName(prefix + "-")
	c.SetResourceVersion("")
	u, err := ri.Create(ctx, c, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: FieldManager})
	if err != nil {
		return nil, err
	}
	u.SetName(name)
	u.SetGenerateName(send.GetGenerateName())
	return u, nil
}

// headlessKept catches the change the API server drops silently: a Service
// whose live spec.clusterIP is "None" (headless) while git no longer says
// so. On update the server keeps the old clusterIP when the new object has
// none, so the apply "succeeds" and the Service stays headless
// (fluxcd/flux2#5162). It returns an Invalid error for spec.clusterIP, as
// the server returns for the opposite change.
func headlessKept(live, send *unstructured.Unstructured) error {
	if live == nil || send.GetAPIVersion() != "v1" || send.GetKind() != "Service" {
		return nil
	}
	liveIP, _, _ := unstructured.NestedString(live.Object, "spec", "clusterIP")
	gitIP, _, _ := unstructured.NestedString(send.Object, "spec", "clusterIP")
	if liveIP != "None" || gitIP == "None" {
		return nil
	}
	return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, send.GetName(), field.ErrorList{
		field.Invalid(field.NewPath("spec", "clusterIP"), gitIP,
			`the live Service is headless (clusterIP None) and git no longer says so, which the API server keeps on update`),
	})
}

// recreate deletes live (foreground: its dependents, e.g. a Job's pods or a
// Deployment's ReplicaSets, go first) and waits until it is gone, at most
// RecreateTimeout; the caller then applies the object anew. The delete is
// conditioned on live's uid, so a newer object of the same name is kept.
func (a *Applier) recreate(ctx context.Context, ri dynamic.ResourceInterface, live *unstructured.Unstructured) error {
	uid := live.GetUID()
	policy := metav1.DeletePropagationForeground
	err := ri.Delete(ctx, live.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("recreate: deleting: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, RecreateTimeout)
	defer cancel()
	for {
		u, err := ri.Get(ctx, live.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && u.GetUID() != uid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recreate: still being deleted after %s", RecreateTimeout)
		case <-time.After(250 * time.Millisecond): // polling the deleted object
		}
	}
}
