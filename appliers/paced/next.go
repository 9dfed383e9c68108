package paced

import (
	"fmt"
	"sort"
	"time"
)

// Next decides the next step of one deployment's rollout. It is a pure
// function of the spec at the current revision, what the cluster holds, the
// persisted state and the controls (PAUSE, PROMOTE, clock). See the package
// documentation for the rules and worked examples.
//
// The order of checks is fixed:
//
//  1. adopt: if neither application the state names exists, start from
//     what the cluster holds (the application named like the deployment,
//     else the oldest) or from nothing;
//  2. strays: delete one application that is neither Base nor New;
//  3. rollout in flight: revert (spec = old template) → cancel; newer
//     template → cancel-like restart; else the cycle machine (finish →
//     pause → manual approval → upgradeDuration → start a cycle → its
//     start/delete phases, each with its timeout);
//  4. steady: create → template change starts a rollout → instance change
//     scales → wait until Ready → done.
func Next(spec Spec, obs Observed, st State, c Controls) Decision {
	c = c.withDefaults()
	p := &planner{spec: spec, obs: obs, st: st, c: c, now: c.Now.UTC()}
	p.adopt()
	if d, ok := p.deleteStray(); ok {
		return d
	}
	if p.st.InRollout() {
		return p.rollout()
	}
	return p.steady()
}

// planner carries one Next call; st evolves as the state machine moves and
// is what the returned Decision persists.
type planner struct {
	spec Spec
	obs  Observed
	st   State
	c    Controls
	now  time.Time
}

func (p *planner) act(a Action, app string, n int32, status, reason string) Decision {
	return Decision{Action: a, App: app, Replicas: n, State: p.st, Status: status, Reason: reason}
}

func (p *planner) wait(until time.Time, status, reason string) Decision {
	return Decision{Action: Wait, Until: until, State: p.st, Status: status, Reason: reason}
}

// adopt replaces a state whose applications are all gone (or an empty one)
// with one built from what the cluster holds.
func (p *planner) adopt() {
	if _, ok := p.obs.live(p.st.Base); ok {
		return
	}
	if _, ok := p.obs.live(p.st.New); ok {
		return
	}
	var apps []App
	for _, a := range p.obs.Apps {
		if !a.Deleting {
			apps = append(apps, a)
		}
	}
	if len(apps) == 0 {
		p.st = State{}
		return
	}
	sort.Slice(apps, func(i, j int) bool {
		if (apps[i].Name == p.spec.Name) != (apps[j].Name == p.spec.Name) {
			return apps[i].Name == p.spec.Name
		}
		if !apps[i].Created.Equal(apps[j].Created) {
			return apps[i].Created.Before(apps[j].Created)
		}
		return apps[i].Name < apps[j].Name
	})
	a := apps[0]
	p.st = State{Phase: PhaseSteady, Base: a.Name, BaseHash: a.TemplateHash, BaseInstance: a.Replicas,
		BaseRevision: p.st.Revision, Revision: p.st.Revision}
}

// deleteStray deletes an application that belongs to no rollout: the
// leftover of a finish, cancel or restart interrupted after its state was
// persisted, or one adopted state does not name.
func (p *planner) deleteStray() (Decision, bool) {
	for _, a := range p.obs.Apps {
		if a.Deleting || a.Name == p.st.Base || a.Name == p.st.New {
			continue
		}
		status := StatusDeploying
		if p.st.InRollout() {
			status = StatusRollingUpdate
		}
		return p.act(Delete, a.Name, 0, status, fmt.Sprintf("deleting application %s: it is neither the current application nor a rollout's new one", a.Name)), true
	}
	return Decision{}, false
}

// steady handles a deployment with one application and no rollout.
func (p *planner) steady() Decision {
	s := p.spec
	base, ok := p.obs.live(p.st.Base)
	if !ok {
		if p.obs.taken(s.Name) {
			return p.wait(time.Time{}, StatusDeploying, fmt.Sprintf("waiting for the old ReplicaSet %s/%s to be deleted", s.Namespace, s.Name))
		}
		p.st = State{Phase: PhaseSteady, Base: s.Name, BaseHash: s.TemplateHash, BaseInstance: s.Instance,
			BaseRevision: s.Revision, Revision: s.Revision}
		return p.act(Create, s.Name, s.Instance, StatusDeploying, fmt.Sprintf("creating application %s with %d instances", s.Name, s.Instance))
	}
	p.st.Phase = PhaseSteady
	if s.TemplateHash != p.st.BaseHash {
		return p.startRollout(base)
	}
	if base.Replicas != s.Instance {
		p.st.BaseInstance, p.st.BaseRevision, p.st.Revision = s.Instance, s.Revision, s.Revision
		return p.act(Scale, base.Name, s.Instance, StatusDeploying, fmt.Sprintf("scaling application %s from %d to %d instances", base.Name, base.Replicas, s.Instance))
	}
	if base.Ready < base.Replicas || base.Pods > base.Replicas {
		return p.wait(time.Time{}, StatusDeploying, fmt.Sprintf("%d of %d pods of %s Ready, %d exist", base.Ready, base.Replicas, base.Name, base.Pods))
	}
	return Decision{Action: Done, State: p.st, Status: StatusRunning}
}

// startRollout creates the new application with 0 instances. Cycles start
// on the following calls.
func (p *planner) startRollout(base App) Decision {
	name := appName(p.spec.Name, p.now, func(n string) bool { return n == base.Name || p.obs.taken(n) })
	p.st = State{Phase: PhaseIdle, Base: base.Name, BaseHash: p.st.BaseHash, BaseInstance: base.Replicas,
		BaseRevision: p.st.Revision, New: name, NewHash: p.spec.TemplateHash, Revision: p.spec.Revision,
		RolloutStart: p.now, PromotedFor: name}
	return p.act(Create, name, 0, StatusRollingUpdate, fmt.Sprintf("rolling update started: application %s created with 0 of %d instances", name, p.spec.Instance))
}
