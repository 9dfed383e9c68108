package paced

import (
	"fmt"
	"sort"
	"time"
)

// Status is what one Reconcile leaves behind: the deployment line and one
// line per application, the columns of `bcs-client list -t app`.
type Status struct {
	Namespace, Name string
	// Status is the deployment's status (Status* constants).
	Status string
	// Phase is the rollout phase after this step.
	Phase Phase
	// Rollout is the new application of the rollout in flight: the name a
	// PROMOTE must carry. Empty when steady.
	Rollout string
	// Cycle and Cycles read "cycle Cycle of Cycles"; Cycles is the count
	// the current replica counts need, so it may change with instance.
	Cycle, Cycles int32
	// NextCycleAt is when the next cycle may start, if it waits only for
	// upgradeDuration.
	NextCycleAt time.Time
	// Reason says what is awaited, or why the rollout is paused or suspended.
	Reason string
	// Revision is the git revision last acted on.
	Revision string
	// Action says what this call did ("" for none).
	Action string
	// Apps are the deployment's applications, oldest first.
	Apps []AppStatus
	// Done: nothing to do until the spec or the controls change.
	Done bool
	// RequeueAfter is when to call Reconcile again if no watch event comes
	// first (0: at once, unless Done).
	RequeueAfter time.Duration
}

// AppStatus is one application, as `bcs-client list -t app` shows it.
type AppStatus struct {
	Name            string
	Status          string
	Instance        int32
	RunningInstance int32
	Message         string
	CreateTime      time.Time
	Namespace       string
}

// status builds the Status of decision d taken on observation ob; acted
// says whether d's action was performed, so that the counts show its effect.
func (e *Engine) status(spec Spec, ob *observation, d Decision, c Controls, acted bool) Status {
	st := d.State
	s := Status{
		Namespace: spec.Namespace, Name: spec.Name,
		Status: d.Status, Phase: st.Phase, Rollout: st.New, Reason: d.Reason, Revision: st.Revision,
		Done: d.Action == Done && acted,
	}
	apps := map[string]App{}
	deleted := map[string]bool{}
	for _, a := range ob.Apps {
		apps[a.Name] = a
		deleted[a.Name] = a.Deleting
	}
	if acted {
		s.Action = describe(spec.Namespace, d)
		switch d.Action {
		case Create:
			apps[d.App] = App{Name: d.App, Replicas: d.Replicas, TemplateHash: spec.TemplateHash, Created: c.Now.UTC()}
			deleted[d.App] = false
		case Scale:
			a := apps[d.App]
			a.Replicas = d.Replicas
			apps[d.App] = a
		case Delete:
			deleted[d.App] = true
		}
	}
	if st.InRollout() && st.Phase != PhaseCancelling {
		// A cancel restores the old application: no cycle is counted
		// (counting the cycles left as a forward rollout read "cycle 2 of 5").
		s.Cycle = st.Cycle
		if st.Phase == PhaseStarting || st.Phase == PhaseDeleting {
			s.Cycles = st.Cycle + cyclesLeft(st.Target.New, st.Target.Old, spec.Instance, spec.Strategy)
		} else {
			var oldR int32
			if a, ok := apps[st.Base]; ok && !deleted[st.Base] {
				oldR = a.Replicas
			}
			s.Cycles = st.Cycle + cyclesLeft(apps[st.New].Replicas, oldR, spec.Instance, spec.Strategy)
		}
		if st.Phase == PhaseIdle && d.Status == StatusRollingUpdate && s.Cycle < s.Cycles {
			s.NextCycleAt = c.Now.UTC()
			if st.Cycle >= 1 {
				s.NextCycleAt = max64(st.LastCycleEnd.Add(spec.Strategy.UpgradeDuration), s.NextCycleAt)
			}
		}
	}
	for _, a := range apps {
		as := AppStatus{Name: a.Name, Instance: a.Replicas, RunningInstance: a.Ready, CreateTime: a.Created,
			Namespace: spec.Namespace, Message: d.Reason}
		if st.InRollout() && (a.Name == st.Base || a.Name == st.New) {
			// As bcs-client showed it: during an update both applications
			// report the deployment's instance; RUNNING_INSTANCE moves.
			as.Instance = spec.Instance
		}
		switch {
		case deleted[a.Name] || (a.Name != st.Base && a.Name != st.New):
			as.Status, as.Message = StatusDeleting, ""
		case st.InRollout() && (d.Status == StatusUpdatePaused || d.Status == StatusUpdateSuspend):
			as.Status = d.Status
		case st.InRollout():
			as.Status = StatusRollingUpdate
		case a.Ready >= a.Replicas && a.Pods <= a.Replicas && !(acted && d.App == a.Name):
			as.Status = StatusRunning
		default:
			as.Status = StatusDeploying
		}
		s.Apps = append(s.Apps, as)
	}
	sort.Slice(s.Apps, func(i, j int) bool {
		if !s.Apps[i].CreateTime.Equal(s.Apps[j].CreateTime) {
			return s.Apps[i].CreateTime.Before(s.Apps[j].CreateTime)
		}
		return s.Apps[i].Name < s.Apps[j].Name
	})
	s.RequeueAfter = e.requeueAfter(d, c.Now, acted)
	return s
}

func max64(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// requeueAfter is when to look again after decision d.
func (e *Engine) requeueAfter(d Decision, now time.Time, acted bool) time.Duration {
	poll := e.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	switch {
	case !acted:
		return poll
	case d.Action == Wait && d.Until.IsZero():
		return poll
	case d.Action == Wait:
		return min(max(d.Until.Sub(now), 0), poll)
	default:
		return 0
	}
}

// describe says what d's action did.
func describe(ns string, d Decision) string {
	switch d.Action {
	case Create:
		return fmt.Sprintf("created ReplicaSet %s/%s with %d replicas", ns, d.App, d.Replicas)
	case Scale:
		return fmt.Sprintf("scaled ReplicaSet %s/%s to %d replicas", ns, d.App, d.Replicas)
	case Delete:
		return fmt.Sprintf("deleted ReplicaSet %s/%s", ns, d.App)
	}
	return ""
}
