package appliers

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// RolloutState is where a native Deployment's rollout stands.
type RolloutState string

// The states of a Deployment rollout.
const (
	RolloutProgressing RolloutState = "Progressing"
	RolloutComplete    RolloutState = "Complete"
	RolloutFailed      RolloutState = "Failed"
	RolloutPaused      RolloutState = "Paused"
)

// DeploymentRollout is a Deployment's rollout as `kubectl get deployment` and
// `kubectl rollout status` show it; StatefulSets and DaemonSets (Kind set)
// use it too (workloads.go): Current is status.replicas /
// currentNumberScheduled, UpToDate the updated pods, Available the available ones.
type DeploymentRollout struct {
	// Kind is "StatefulSet" or "DaemonSet"; "" for a Deployment.
	Kind      string       `json:"kind,omitempty"`
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	Desired   int32        `json:"desired"`
	Current   int32        `json:"current"`
	UpToDate  int32        `json:"upToDate"`
	Available int32        `json:"available"`
	Revision  string       `json:"revision,omitempty"`
	State     RolloutState `json:"state"`
	Paused    bool         `json:"paused,omitempty"`
	// Generation is metadata.generation: a change gitpace did not make is drift.
	Generation int64 `json:"-"`
	// Message is kubectl rollout status's wording, e.g. `Waiting for
	// deployment "test" rollout to finish: 2 of 3 updated replicas are
	// available...` or `deployment "test" successfully rolled out`.
	Message string `json:"message"`
}

// DeploymentStatus evaluates a Deployment exactly as `kubectl rollout
// status` does: done when the controller observed the newest generation and
// updated = replicas = available; failed when the Progressing condition says
// ProgressDeadlineExceeded. A paused Deployment that is not done is Paused.
func DeploymentStatus(u *unstructured.Unstructured) (DeploymentRollout, error) {
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
		return DeploymentRollout{}, fmt.Errorf("Deployment %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return deploymentStatus(&d), nil
}

// TypedDeploymentStatus is DeploymentStatus for a typed Deployment.
func TypedDeploymentStatus(d *appsv1.Deployment) DeploymentRollout { return deploymentStatus(d) }

func deploymentStatus(d *appsv1.Deployment) DeploymentRollout {
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	r := DeploymentRollout{
		Namespace: d.Namespace, Name: d.Name, Desired: desired,
		Current: d.Status.Replicas, UpToDate: d.Status.UpdatedReplicas, Available: d.Status.AvailableReplicas,
		Revision: d.Annotations["deployment.kubernetes.io/revision"],
		Paused:   d.Spec.Paused, Generation: d.Generation,
	}
	st := d.Status
	switch {
	case d.Generation > st.ObservedGeneration:
		r.State, r.Message = RolloutProgressing, "Waiting for deployment spec update to be observed..."
	case progressDeadlineExceeded(d):
		r.State, r.Message = RolloutFailed, fmt.Sprintf("deployment %q exceeded its progress deadline", d.Name)
	case st.UpdatedReplicas < desired:
		r.State, r.Message = RolloutProgressing, fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, st.UpdatedReplicas, desired)
	case st.Replicas > st.UpdatedReplicas:
		r.State, r.Message = RolloutProgressing, fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		r.State, r.Message = RolloutProgressing, fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, st.AvailableReplicas, st.UpdatedReplicas)
	default:
		r.State, r.Message = RolloutComplete, fmt.Sprintf("deployment %q successfully rolled out", d.Name)
	}
	if d.Spec.Paused && r.State == RolloutProgressing {
		r.State = RolloutPaused
		r.Message += " (paused)"
	}
	return r
}

func progressDeadlineExceeded(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing {
			return c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded"
		}
	}
	return false
}
