package agent

import (
	"context"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/state"
)

// pause freezes the app's in-flight Deployment rollouts with spec.paused
// (what `kubectl rollout pause` does) and applies nothing newer. It writes
// only when the app was not paused yet, or when force says the cluster may
// have drifted (someone unpaused behind git's back).
func (a *Agent) pause(ctx context.Context, st *state.App, reason string, force bool) error {
	already := st.PausedBy != nil
	if !already || force {
		for _, ref := range deployments(st.Inventory) {
			if r, ok := a.cachedRollout(ref); ok && r.Paused {
				continue
			}
			gen, err := a.applier.SetPaused(ctx, ref, true)
			if err != nil {
				return err
			}
			a.expect(ref, gen)
		}
	}
	if !already {
		a.printf("app %s: %s; in-flight rollouts frozen", st.Name, reason)
		a.cfg.Log.Info("paused", "app", st.Name, "reason", reason)
	}
	st.PausedBy = &reason
	st.Phase, st.Reason = state.Paused, reason
	return a.save(ctx, st)
}

// resume lifts the freeze; the caller then applies the newest revision.
func (a *Agent) resume(ctx context.Context, st *state.App) error {
	for _, ref := range deployments(st.Inventory) {
		gen, err := a.applier.SetPaused(ctx, ref, false)
		if err != nil {
			return err
		}
		a.expect(ref, gen)
	}
	a.printf("app %s: resumed (PAUSE marker removed)", st.Name)
	a.cfg.Log.Info("resumed", "app", st.Name)
	st.PausedBy = nil
	st.Phase, st.Reason = state.OutOfSync, ""
	return a.save(ctx, st)
}

// expect records the generation gitpace itself gave an object, so the watch
// does not mistake gitpace's own change for drift.
func (a *Agent) expect(ref appliers.ObjectRef, gen int64) {
	if gen <= 0 {
		return
	}
	a.mu.Lock()
	if gen > a.expected[ref.Key()] {
		a.expected[ref.Key()] = gen
	}
	a.mu.Unlock()
}

func deployments(refs []appliers.ObjectRef) []appliers.ObjectRef {
	var out []appliers.ObjectRef
	for _, r := range refs {
		if r.Kind == "Deployment" && r.Group == "apps" {
			out = append(out, r)
		}
	}
	return out
}
