package paced

import (
	"fmt"
	"time"
)

// cancel ends the rollout in flight at once: it restores the old
// application to its instance count from before the rollout, then deletes
// the new one. revert says why: the spec's template is the old one again
// (cancel); otherwise a newer template arrived (restart: a fresh rollout to
// it follows from the restored old application).
func (p *planner) cancel(base App, hasBase bool, nw App, hasNew bool, revert bool) Decision {
	st := &p.st
	why := fmt.Sprintf("template reverted to that of %s: cancelling rollout %s", st.Base, st.New)
	if !revert {
		why = fmt.Sprintf("newer template %s arrived during rollout %s: cancelling it, a fresh rollout follows", p.spec.TemplateHash, st.New)
	}
	if st.Phase != PhaseCancelling {
		st.Phase, st.PhaseStart = PhaseCancelling, p.now
	}
	if !hasBase {
		if !revert { // the old application is gone: the in-flight one becomes the base
			p.st = State{Phase: PhaseSteady, Base: st.New, BaseHash: st.NewHash, BaseInstance: nw.Replicas,
				BaseRevision: st.Revision, Revision: st.Revision}
			return p.steady()
		}
		if p.obs.taken(st.Base) {
			return p.wait(time.Time{}, StatusRollingUpdate, fmt.Sprintf("%s; waiting for ReplicaSet %s/%s to be deleted", why, p.spec.Namespace, st.Base))
		}
		return p.act(Create, st.Base, st.BaseInstance, StatusRollingUpdate, fmt.Sprintf("%s; recreating old application %s with %d instances", why, st.Base, st.BaseInstance))
	}
	if base.Replicas != st.BaseInstance {
		return p.act(Scale, st.Base, st.BaseInstance, StatusRollingUpdate, fmt.Sprintf("%s; restoring old application %s from %d to %d instances", why, st.Base, base.Replicas, st.BaseInstance))
	}
	rev := st.BaseRevision
	if revert {
		rev = p.spec.Revision
	}
	newApp := st.New
	p.st = State{Phase: PhaseSteady, Base: st.Base, BaseHash: st.BaseHash, BaseInstance: st.BaseInstance, BaseRevision: rev, Revision: rev}
	if !hasNew {
		return p.steady()
	}
	return p.act(Delete, newApp, 0, StatusRollingUpdate, fmt.Sprintf("%s; deleting new application %s", why, newApp))
}
