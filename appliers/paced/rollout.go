package paced

import (
	"fmt"
	"time"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// rollout handles a deployment with a rollout in flight.
func (p *planner) rollout() Decision {
	base, hasBase := p.obs.live(p.st.Base)
	nw, hasNew := p.obs.live(p.st.New)
	switch {
	case p.spec.TemplateHash == p.st.BaseHash:
		return p.cancel(base, hasBase, nw, hasNew, true)
	case p.spec.TemplateHash != p.st.NewHash:
		return p.cancel(base, hasBase, nw, hasNew, false)
	}
	if !hasNew {
		if p.obs.taken(p.st.New) {
			return p.wait(time.Time{}, StatusRollingUpdate, fmt.Sprintf("waiting for ReplicaSet %s/%s to be deleted", p.spec.Namespace, p.st.New))
		}
		return p.act(Create, p.st.New, 0, StatusRollingUpdate, fmt.Sprintf("creating application %s with 0 instances", p.st.New))
	}
	// Every cycle that is not the last changes a replica count, so this
	// loop returns an action or a wait within a few state transitions.
	for range 8 {
		var d Decision
		var done bool
		switch p.st.Phase {
		case PhaseStarting:
			d, done = p.starting(nw)
		case PhaseDeleting:
			d, done = p.deleting(base, hasBase)
		default:
			d, done = p.between(base, hasBase, nw)
		}
		if done {
			return d
		}
	}
	return p.wait(p.now, StatusRollingUpdate, "state machine did not settle; trying again")
}

// between handles a rollout between cycles: finish, or gate and start the
// next cycle. It returns done=false after starting a cycle.
func (p *planner) between(base App, hasBase bool, nw App) (Decision, bool) {
	s, st := p.spec, &p.st
	if st.Phase != PhaseIdle {
		st.Phase = PhaseIdle
	}
	oldR := int32(0)
	if hasBase {
		oldR = base.Replicas
	}
	if oldR == 0 && nw.Replicas >= s.Instance {
		if p.c.Paused {
			return p.wait(time.Time{}, StatusUpdatePaused, fmt.Sprintf("paused (%s): all cycles done; old application %s is kept, so that a revert cancels at once, until the pause is lifted", p.c.PauseReason, st.Base)), true
		}
		return p.finish(hasBase, nw), true
	}
	next := st.Cycle + 1
	of := st.Cycle + cyclesLeft(nw.Replicas, oldR, s.Instance, s.Strategy)
	if p.c.Paused {
		return p.wait(time.Time{}, StatusUpdatePaused, fmt.Sprintf("paused (%s): cycle %d of %d does not start until the pause is lifted", p.c.PauseReason, next, of)), true
	}
	consumed := 0
	if st.PromotedFor == st.New {
		consumed = st.Promoted
	}
	manual := s.Strategy.Manually && st.Cycle >= 1
	if manual {
		pr := p.c.Promote
		if pr == nil || pr.Rollout != st.New || pr.Cycles <= consumed {
			return p.wait(time.Time{}, StatusUpdatePaused, fmt.Sprintf("rollingManually: cycle %d of %d waits for a promote of rollout %s with cycles %d", next, of, st.New, consumed+1)), true
		}
	}
	if st.Cycle >= 1 {
		if at := st.LastCycleEnd.Add(s.Strategy.UpgradeDuration); p.now.Before(at) {
			return p.wait(at, StatusRollingUpdate, fmt.Sprintf("cycle %d of %d starts at %s (upgradeDuration %s)", next, of, at.Format(time.RFC3339), s.Strategy.UpgradeDuration)), true
		}
	}
	if manual {
		st.Promoted, st.PromotedFor = consumed+1, st.New
	}
	st.Cycle = next
	st.Target = CycleTargets(nw.Replicas, oldR, s.Instance, s.Strategy)
	st.CycleStart, st.PhaseStart = p.now, p.now
	st.Phase = PhaseStarting
	if s.Strategy.Order == vocab.OrderDeleteFirst {
		st.Phase = PhaseDeleting
	}
	return Decision{}, false
}

// starting handles a cycle's start phase.
func (p *planner) starting(nw App) (Decision, bool) {
	st := &p.st
	t := st.Target.New
	if nw.Replicas != t {
		return p.act(Scale, st.New, t, StatusRollingUpdate, fmt.Sprintf("%s: scaling new application %s from %d up to %d", p.cycleOf(), st.New, nw.Replicas, t)), true
	}
	if nw.Ready >= t {
		if p.spec.Strategy.Order == vocab.OrderDeleteFirst {
			p.endCycle()
		} else {
			st.Phase, st.PhaseStart = PhaseDeleting, p.now
		}
		return Decision{}, false
	}
	return p.waitPhase(p.c.StartTimeout, "start", fmt.Sprintf("%d of %d pods of new application %s Ready", nw.Ready, t, st.New)), true
}

// deleting handles a cycle's delete phase.
func (p *planner) deleting(base App, hasBase bool) (Decision, bool) {
	st := &p.st
	t := st.Target.Old
	if hasBase && base.Replicas != t {
		return p.act(Scale, st.Base, t, StatusRollingUpdate, fmt.Sprintf("%s: scaling old application %s from %d down to %d", p.cycleOf(), st.Base, base.Replicas, t)), true
	}
	if !hasBase || base.Pods <= t {
		if p.spec.Strategy.Order == vocab.OrderDeleteFirst {
			st.Phase, st.PhaseStart = PhaseStarting, p.now
		} else {
			p.endCycle()
		}
		return Decision{}, false
	}
	return p.waitPhase(p.c.DeleteTimeout, "delete", fmt.Sprintf("%d pods of old application %s left, waiting for %d", base.Pods, st.Base, t)), true
}

// waitPhase waits for the current phase's condition, reporting
// UpdateSuspend once the phase has run for timeout.
func (p *planner) waitPhase(timeout time.Duration, phase, what string) Decision {
	deadline := p.st.PhaseStart.Add(timeout)
	if !p.now.Before(deadline) {
		return p.wait(time.Time{}, StatusUpdateSuspend, fmt.Sprintf("%s: %s phase has run %s, over its %s limit: %s; it continues when that clears, or a new commit reverts or replaces the template",
			p.cycleOf(), phase, p.now.Sub(p.st.PhaseStart).Round(time.Second), timeout, what))
	}
	return p.wait(deadline, StatusRollingUpdate, fmt.Sprintf("%s, %s phase: %s", p.cycleOf(), phase, what))
}

func (p *planner) endCycle() {
	p.st.Phase, p.st.LastCycleEnd = PhaseIdle, p.now
}

// cycleOf is "cycle k of n" for the cycle in flight.
func (p *planner) cycleOf() string {
	s := p.spec
	return fmt.Sprintf("cycle %d of %d", p.st.Cycle, p.st.Cycle+cyclesLeft(p.st.Target.New, p.st.Target.Old, s.Instance, s.Strategy))
}

// finish makes the new application the deployment's and deletes the old.
func (p *planner) finish(hasBase bool, nw App) Decision {
	old, cycles := p.st.Base, p.st.Cycle
	p.st = State{Phase: PhaseSteady, Base: p.st.New, BaseHash: p.st.NewHash, BaseInstance: nw.Replicas,
		BaseRevision: p.st.Revision, Revision: p.st.Revision}
	reason := fmt.Sprintf("rolling update done after %d cycles: the deployment now runs application %s", cycles, p.st.Base)
	if !hasBase {
		return p.wait(p.now, StatusRunning, reason)
	}
	return p.act(Delete, old, 0, StatusRunning, reason+"; deleting old application "+old)
}
