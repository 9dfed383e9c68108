package plan

import (
	"time"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/sources"
)

// Plan is what merging one revision would do to the cluster.
type Plan struct {
	Revision sources.Revision `json:"revision"`
	// Now is the time the plan was made; rollout times count from it.
	Now time.Time `json:"now"`
	// Error is a problem of the whole revision (its gitpace.yaml), which
	// the agent would reject for every app.
	Error string `json:"error,omitempty"`
	// Warning says when what gitpace knows of the cluster may be missing
	// (revision.StateWarning): the plan then shows false changes.
	Warning string    `json:"warning,omitempty"`
	Apps    []AppPlan `json:"apps"`
	// Waves are gitpace.yaml's waves as this revision rolls them.
	Waves []WavePlan `json:"waves,omitempty"`
}

// AppPlan is what the revision would do to one app.
type AppPlan struct {
	App string `json:"app"`
	// Error says why the app's revision is invalid (the agent would reject
	// it and change nothing); Changes and Rollouts may then be partial.
	Error   string             `json:"error,omitempty"`
	Changes appliers.ChangeSet `json:"changes,omitempty"`
	// Rollouts are the rollouts the changes trigger, in the order of Changes,
	// then the app's BCS deployments in file order.
	Rollouts []Rollout `json:"rollouts,omitempty"`
	// Start is the earliest time the agent applies the revision (now, or
	// when the app's sync windows next allow it); zero when it never can or
	// nothing changes. Wait says why it is later than now.
	Start time.Time `json:"start,omitzero"`
	Wait  string    `json:"wait,omitempty"`
	// Paused names the PAUSE marker that holds the app, with its reason:
	// nothing is rolled until it is removed.
	Paused string `json:"paused,omitempty"`
	// Hooks are the app's Helm hooks, as the agent runs them around the
	// apply of changed content (agent/hooks.go): PreSync then PostSync, each
	// by weight, e.g. "PreSync Job/web/web-migrate (weight 0, apps/web/templates/migrate.yaml;
	// delete policy hook-succeeded)", named Kind/namespace/name.
	Hooks []string `json:"hooks,omitempty"`
}

// Rollout is what one workload change rolls.
type Rollout struct {
	// Kind is "Deployment" or "BCS deployment".
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Summary says what happens in one line, e.g. "rolls 3 pods to the new
	// template in 3 steps".
	Summary string `json:"summary"`
	// Strategy describes the resolved strategy, e.g. "RollingUpdate,
	// maxSurge 1, maxUnavailable 1".
	Strategy string `json:"strategy,omitempty"`
	// Changed is false when the workload keeps its pods as they are.
	Changed bool `json:"changed"`
	// Steps are a Deployment's rolling steps.
	Steps []Step `json:"steps,omitempty"`
	// Cycles are a BCS deployment's update cycles.
	Cycles []Cycle `json:"cycles,omitempty"`
	// Finish is the earliest time a BCS rollout can finish (the start of
	// its last cycle); zero when it never can or for Deployments, which
	// Kubernetes rolls as fast as the pods become Ready.
	Finish time.Time `json:"finish,omitzero"`
	// Notes are further facts for the reviewer.
	Notes []string `json:"notes,omitempty"`
}

// Changed reports whether the app's objects or pods would change.
func (a *AppPlan) Changed() bool {
	if a.Changes.Changed() {
		return true
	}
	for _, r := range a.Rollouts {
		if r.Changed {
			return true
		}
	}
	return false
}

// Changed reports whether any app would change.
func (p *Plan) Changed() bool {
	for i := range p.Apps {
		if p.Apps[i].Changed() {
			return true
		}
	}
	return false
}

// Failed reports whether the revision, or any app's revision, is invalid.
func (p *Plan) Failed() bool {
	if p.Error != "" {
		return true
	}
	for _, a := range p.Apps {
		if a.Error != "" {
			return true
		}
	}
	return false
}

// ExitCode is `gitpace plan`'s exit status, as `gitpace diff`'s: 1 when
// something is invalid, else 2 when something would change, else 0.
func (p *Plan) ExitCode() int {
	switch {
	case p.Failed():
		return 1
	case p.Changed():
		return 2
	}
	return 0
}
