package appliers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDeploymentStatusMessages(t *testing.T) {
	three := int32(3)
	mk := func(gen, observed int64, replicas, updated, available int32, paused bool, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "test", Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: &three, Paused: paused},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas,
				UpdatedReplicas: updated, AvailableReplicas: available, Conditions: conds},
		}
	}
	deadline := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}
	for _, tc := range []struct {
		name  string
		d     *appsv1.Deployment
		state RolloutState
		msg   string
	}{
		{"not observed", mk(2, 1, 3, 3, 3, false), RolloutProgressing, "Waiting for deployment spec update to be observed..."},
		{"updating", mk(2, 2, 4, 1, 3, false), RolloutProgressing, `Waiting for deployment "test" rollout to finish: 1 out of 3 new replicas have been updated...`},
		{"old pending", mk(2, 2, 4, 3, 3, false), RolloutProgressing, `Waiting for deployment "test" rollout to finish: 1 old replicas are pending termination...`},
		{"seed wording", mk(2, 2, 3, 3, 2, false), RolloutProgressing, `Waiting for deployment "test" rollout to finish: 2 of 3 updated replicas are available...`},
		{"done", mk(2, 2, 3, 3, 3, false), RolloutComplete, `deployment "test" successfully rolled out`},
		{"deadline", mk(2, 2, 4, 1, 3, false, deadline), RolloutFailed, `deployment "test" exceeded its progress deadline`},
		{"paused mid-way", mk(2, 2, 4, 1, 3, true), RolloutPaused, `Waiting for deployment "test" rollout to finish: 1 out of 3 new replicas have been updated... (paused)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := deploymentStatus(tc.d)
			if got.State != tc.state || got.Message != tc.msg {
				t.Errorf("got %s %q, want %s %q", got.State, got.Message, tc.state, tc.msg)
			}
		})
	}
}
