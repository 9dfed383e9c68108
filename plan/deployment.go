package plan

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Step is one decision of the Deployment controller during a rollout: the
// new ReplicaSet is scaled up, then the old one down.
type Step struct {
	// New and Old are the replicas of the new and old ReplicaSets after the step.
	New int32 `json:"new"`
	Old int32 `json:"old"`
	// Total is the pod count at the step's peak: after the new ReplicaSet
	// is scaled up and before the old one is scaled down. It never exceeds
	// replicas + maxSurge.
	Total int32 `json:"total"`
	// MinAvailable is the available pod count at the step's low point:
	// after the old ReplicaSet is scaled down and before the pods created
	// in the step become Ready. It never falls below replicas −
	// maxUnavailable (0 for Recreate).
	MinAvailable int32 `json:"minAvailable"`
	// Action says what the step does, e.g. "scale new up to 1, old down to 2".
	Action string `json:"action"`
}

// Fenceposts are a RollingUpdate strategy's maxSurge and maxUnavailable
// resolved against a replica count.
type Fenceposts struct {
	Surge, Unavailable int32
}

// ResolveFenceposts resolves maxSurge and maxUnavailable as Kubernetes does
// (deployment_util.ResolveFenceposts): integers, or percents of replicas
// with surge rounded up and unavailable rounded down; unset means 25%; if
// both resolve to 0, unavailable is 1.
//
//	replicas  maxSurge  maxUnavailable  →  surge  unavailable
//	3         1         1                  1      1
//	10        25%       25%                3      2     (2.5 up, 2.5 down)
//	3         0         0                  0      1
//	5         10%       10%                1      0     (0.5 up, 0.5 down)
func ResolveFenceposts(replicas int32, ru *appsv1.RollingUpdateDeployment) (Fenceposts, error) {
	def := intstr.FromString("25%")
	surge, unavailable := &def, &def
	if ru != nil {
		if ru.MaxSurge != nil {
			surge = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailable = ru.MaxUnavailable
		}
	}
	s, err := intstr.GetScaledValueFromIntOrPercent(surge, int(replicas), true)
	if err != nil {
		return Fenceposts{}, fmt.Errorf("maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(unavailable, int(replicas), false)
	if err != nil {
		return Fenceposts{}, fmt.Errorf("maxUnavailable: %w", err)
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return Fenceposts{Surge: int32(s), Unavailable: int32(u)}, nil
}

// DeploymentSteps simulates the Deployment controller rolling replicas pods
// from all-old to all-new, assuming that every new pod becomes Ready (and
// available: minReadySeconds is not modelled) before the controller's next
// decision. Each RollingUpdate step scales the new ReplicaSet up by
// min(replicas + surge − total, replicas − new), then the old one down by
// min(old, available − (replicas − unavailable)), where available counts the
// old pods and the new pods of earlier steps. Recreate is two steps: old to
// 0, then new to replicas. An invalid maxSurge or maxUnavailable (a string
// that is not a percent) yields no steps; the API server rejects it anyway.
//
// The seed's Deployment: 3 replicas, maxSurge 1, maxUnavailable 1, so at
// most 4 pods and at least 2 available:
//
//	step  new  old  total  min-available  action
//	1     1    2    4      2              scale new up to 1, old down to 2
//	2     2    1    4      2              scale new up to 2, old down to 1
//	3     3    0    4      2              scale new up to 3, old down to 0
//
// 10 replicas with the defaults (25%/25%: surge 3, unavailable 2; at most 13
// pods, at least 8 available) takes 4 steps: new 3/old 8, 5/5, 8/3, 10/0.
func DeploymentSteps(replicas int32, strategy appsv1.DeploymentStrategy) []Step {
	return stepsFrom(replicas, replicas, strategy)
}

// stepsFrom is DeploymentSteps starting from old pods of the old template
// (the live Deployment's replicas, which may differ from the desired ones).
func stepsFrom(old, replicas int32, strategy appsv1.DeploymentStrategy) []Step {
	if strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return []Step{
			{New: 0, Old: 0, Total: old, MinAvailable: 0, Action: "scale old down to 0, wait until its pods are gone"},
			{New: replicas, Old: 0, Total: replicas, MinAvailable: 0, Action: fmt.Sprintf("scale new up to %d", replicas)},
		}
	}
	fp, err := ResolveFenceposts(replicas, strategy.RollingUpdate)
	if err != nil {
		return nil
	}
	maxTotal, minAvailable := replicas+fp.Surge, replicas-fp.Unavailable
	var steps []Step
	newR := int32(0)
	// Every step either creates or deletes at least one pod, so
	// old + replicas + 1 steps always suffice; the bound only guards
	// against a mistake looping forever.
	for i, limit := int32(0), old+replicas+1; (old > 0 || newR < replicas) && i < limit; i++ {
		ready := newR // the new pods of earlier steps are Ready by now
		up := max(min(maxTotal-(old+newR), replicas-newR), 0)
		newR += up
		total := old + newR
		down := max(min(old, old+ready-minAvailable), 0)
		old -= down
		if up == 0 && down == 0 {
			break // cannot happen with resolved fenceposts
		}
		steps = append(steps, Step{New: newR, Old: old, Total: total, MinAvailable: old + ready, Action: stepAction(up, down, newR, old)})
	}
	return steps
}

func stepAction(up, down, newR, old int32) string {
	switch {
	case up > 0 && down > 0:
		return fmt.Sprintf("scale new up to %d, old down to %d", newR, old)
	case up > 0:
		return fmt.Sprintf("scale new up to %d", newR)
	default:
		return fmt.Sprintf("scale old down to %d", old)
	}
}
