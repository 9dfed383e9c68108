package paced

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// DefaultPoll is Engine.Poll's default.
const DefaultPoll = 10 * time.Second

// maxAttempts bounds the observe-decide-persist attempts of one Reconcile
// when persisting meets a conflict (the holder ReplicaSet's status moves
// with its pods, so conflicts are ordinary).
const maxAttempts = 5

// Engine runs the paced rollouts of BCS deployments over ReplicaSets. It
// holds no rollout state of its own: every Reconcile reads the state from
// the cluster, so a fresh Engine (a restarted agent) continues where the
// last one stopped.
type Engine struct {
	// Client talks to the cluster.
	Client kubernetes.Interface
	// Poll is the longest Reconcile asks to wait for pods without a
	// deadline (the agent also calls on ReplicaSet and pod watch events).
	// Zero means DefaultPoll.
	Poll time.Duration

	// afterPersist, if set, runs after the state is persisted and before
	// the action; an error ends Reconcile there, as a crash would. Tests
	// use it.
	afterPersist func(Decision) error
}

// Reconcile performs at most one step of deployment spec's rollout: it
// observes the deployment's ReplicaSets and pods, asks Next, persists the
// decided state (only when it changed) and performs the action. The
// returned Status says what the deployment looks like and when to call
// again (RequeueAfter; Done when nothing is left to do until the spec or
// the controls change).
//
// Errors name the object and wrap the API error. A conflict while
// persisting (the ReplicaSet changed since it was read) is retried with a fresh
// observation.
func (e *Engine) Reconcile(ctx context.Context, spec Spec, c Controls) (Status, error) {
	if err := spec.Validate(); err != nil {
		return Status{}, err
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	var (
		ob  *observation
		d   Decision
		err error
	)
	for attempt := 0; ; attempt++ {
		if ob, err = e.observe(ctx, spec.Namespace, spec.Name); err != nil {
			return Status{}, err
		}
		d = Next(spec, ob.Observed, ob.state, c)
		err = e.persist(ctx, spec, ob, &d)
		if err == nil || !apierrors.IsConflict(err) || attempt == maxAttempts-1 {
			break
		}
	}
	if err != nil {
		return e.status(spec, ob, d, c, false), err
	}
	if e.afterPersist != nil {
		if err := e.afterPersist(d); err != nil {
			return e.status(spec, ob, d, c, false), err
		}
	}
	if err := e.act(ctx, spec, d); err != nil {
		return e.status(spec, ob, d, c, false), err
	}
	return e.status(spec, ob, d, c, true), nil
}

// persist writes d.State, when it differs from the persisted state, to the
// annotation of the application that survives the action: the state's
// Base, else its New. A ReplicaSet the action creates carries the state
// itself. The write is conditional on the observed resourceVersion.
func (e *Engine) persist(ctx context.Context, spec Spec, ob *observation, d *Decision) error {
	if sameState(ob.state, d.State) {
		d.State.Seq = ob.state.Seq
		return nil
	}
	d.State.Seq = ob.state.Seq + 1
	for _, name := range []string{d.State.Base, d.State.New} {
		if name == "" || (name == d.App && d.Action == Delete) {
			continue
		}
		if name == d.App && d.Action == Create {
			return nil
		}
		rs, ok := ob.rs[name]
		if !ok || rs.DeletionTimestamp != nil {
			continue
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": rs.ResourceVersion,
			"annotations":     map[string]string{AnnotationState: encodeState(d.State)},
		}})
		if err != nil {
			return err
		}
		_, err = e.Client.AppsV1().ReplicaSets(spec.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		if err != nil {
			return fmt.Errorf("persisting the rollout state on ReplicaSet %s/%s: %w", spec.Namespace, name, err)
		}
		return nil
	}
	return nil // nothing holds it yet: the next Create carries it
}

// act performs d's action.
func (e *Engine) act(ctx context.Context, spec Spec, d Decision) error {
	rss := e.Client.AppsV1().ReplicaSets(spec.Namespace)
	id := spec.Namespace + "/" + d.App
	switch d.Action {
	case Create:
		data, err := json.Marshal(application(spec, d.App, d.Replicas, d.State))
		if err != nil {
			return fmt.Errorf("encoding ReplicaSet %s: %w", id, err)
		}
		force := true
		if _, err := rss.Patch(ctx, d.App, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
			return fmt.Errorf("creating ReplicaSet %s: %w", id, err)
		}
	case Scale:
		patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, d.Replicas)
		if _, err := rss.Patch(ctx, d.App, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("scaling ReplicaSet %s to %d: %w", id, d.Replicas, err)
		}
	case Delete:
		bg := metav1.DeletePropagationBackground
		if err := rss.Delete(ctx, d.App, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting ReplicaSet %s: %w", id, err)
		}
	}
	return nil
}

// Delete removes every application (ReplicaSet) of BCS deployment ns/name
// that owns accepts (nil: all), the deployment leaving git. It reports
// whether any remained that owns refused (then the deployment is not
// gone: false). Background propagation: the ReplicaSet controller's
// garbage collector removes the pods.
func (e *Engine) Delete(ctx context.Context, ns, name string, owns func(metav1.Object) bool) (bool, error) {
	rss := e.Client.AppsV1().ReplicaSets(ns)
	list, err := rss.List(ctx, metav1.ListOptions{LabelSelector: Selector(name)})
	if err != nil {
		return false, fmt.Errorf("listing the ReplicaSets of BCS deployment %s/%s: %w", ns, name, err)
	}
	bg := metav1.DeletePropagationBackground
	var errs []error
	kept := false
	for _, rs := range list.Items {
		if owns != nil && !owns(&rs) {
			kept = true
			continue
		}
		if err := rss.Delete(ctx, rs.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting ReplicaSet %s/%s: %w", ns, rs.Name, err))
		}
	}
	return !kept, errors.Join(errs...)
}
