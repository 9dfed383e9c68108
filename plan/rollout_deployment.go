package plan

import (
	"errors"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gitpace/gitpace/appliers"
)

// isDeployment reports whether ref names an apps Deployment.
func isDeployment(ref appliers.ObjectRef) bool {
	return ref.Group == "apps" && ref.Kind == "Deployment"
}

// deploymentRollout plans what change c of a Deployment rolls. live is the
// live object the change was diffed against (appliers.Change.Live); it is
// only read for a Configured change.
//
// A Deployment rolls only when its pod template changes. c.Desired is the
// server-side dry run's result as Apply will leave the object (server
// defaults included), the very object c.Diff shows against the live one:
// its spec.template is compared with the live one, normalized both, and its
// replicas and strategy drive the steps.
func deploymentRollout(c appliers.Change, live *unstructured.Unstructured) (Rollout, error) {
	r := Rollout{Kind: "Deployment", Namespace: c.Ref.Namespace, Name: c.Ref.Name}
	switch c.Action {
	case appliers.Deleted:
		r.Summary, r.Changed = "deleted (pruned): its pods are deleted", true
		return r, nil
	case appliers.Created:
		desired, err := asDeployment(c.Desired)
		if err != nil {
			return r, fmt.Errorf("%s: dry-run result: %w", c.Ref, err)
		}
		replicas := replicasOf(desired.Spec.Replicas)
		r.Summary, r.Changed = fmt.Sprintf("created: starts %s (no rolling update)", plural(int(replicas), "pod")), replicas > 0
		return r, nil
	case appliers.Recreated:
		r.Summary, r.Changed = "re-created (gitpace.dev/recreate): deleted with its pods, then created anew (no rolling update)", true
		return r, nil
	case appliers.Configured:
	default:
		r.Summary = "unchanged"
		return r, nil
	}
	if live == nil {
		return r, fmt.Errorf("%s: the diff holds no live object", c.Ref)
	}
	desired, err := asDeployment(c.Desired)
	if err != nil {
		return r, fmt.Errorf("%s: dry-run result: %w", c.Ref, err)
	}
	current, err := asDeployment(live)
	if err != nil {
		return r, fmt.Errorf("%s: live object: %w", c.Ref, err)
	}
	templateChanged := !reflect.DeepEqual(
		nested(appliers.Normalize(live), "spec", "template"), nested(appliers.Normalize(c.Desired), "spec", "template"))
	from, to := replicasOf(current.Spec.Replicas), replicasOf(desired.Spec.Replicas)
	if !templateChanged {
		if from != to {
			r.Summary, r.Changed = fmt.Sprintf("scales from %d to %d pods (pod template unchanged: no rolling update)", from, to), true
		} else {
			r.Summary = "no rollout: the pod template is unchanged"
		}
		return r, nil
	}
	r.Strategy, err = describeStrategy(to, desired.Spec.Strategy)
	if err != nil {
		return r, fmt.Errorf("%s: %w", c.Ref, err)
	}
	r.Steps, r.Changed = stepsFrom(from, to, desired.Spec.Strategy), true
	r.Summary = "rolls to the new pod template in " + plural(len(r.Steps), "step")
	if from != to {
		r.Summary += fmt.Sprintf(", from %d to %d pods", from, to)
	}
	if desired.Spec.Paused {
		r.Notes = append(r.Notes, "spec.paused is true: Kubernetes does not roll until it is unpaused")
	}
	if desired.Spec.MinReadySeconds > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("each new pod counts as available %ds after it is Ready", desired.Spec.MinReadySeconds))
	}
	return r, nil
}

func nested(u *unstructured.Unstructured, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	return v
}

// asDeployment converts u to a typed Deployment; nil is an error (a Change
// read back from JSON carries no objects).
func asDeployment(u *unstructured.Unstructured) (*appsv1.Deployment, error) {
	if u == nil {
		return nil, errors.New("no object")
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// replicasOf is spec.replicas with the API's default of 1.
func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// describeStrategy says e.g. "RollingUpdate, maxSurge 25% (1), maxUnavailable 25% (0 → 1)".
func describeStrategy(replicas int32, s appsv1.DeploymentStrategy) (string, error) {
	if s.Type == appsv1.RecreateDeploymentStrategyType {
		return "Recreate", nil
	}
	fp, err := ResolveFenceposts(replicas, s.RollingUpdate)
	if err != nil {
		return "", err
	}
	def := intstr.FromString("25%")
	surge, unavailable := def, def
	if ru := s.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surge = *ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailable = *ru.MaxUnavailable
		}
	}
	show := func(v intstr.IntOrString, n int32) string {
		if v.Type == intstr.Int && v.IntVal == n {
			return v.String()
		}
		return fmt.Sprintf("%s (%d)", v.String(), n)
	}
	return fmt.Sprintf("RollingUpdate, maxSurge %s, maxUnavailable %s: at most %d pods, at least %d available",
		show(surge, fp.Surge), show(unavailable, fp.Unavailable), replicas+fp.Surge, max(replicas-fp.Unavailable, 0)), nil
}
