package agent

import (
	"context"
	"strings"
	"time"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/state"
)

// freeze stops the app's in-flight Deployment rollouts with spec.paused
// (what `kubectl rollout pause` does), StatefulSets and DaemonSets with
// appliers.FreezeWorkload, while a PAUSE marker (phase Paused) or
// a closed rollout window (phase Held) holds the app; nothing newer is
// applied. It writes only when the app was not frozen yet, or when force says
// the cluster may have drifted (someone unpaused behind git's back).
func (a *Agent) freeze(ctx context.Context, st *state.App, phase state.Phase, reason string, force bool) error {
	// The frozen objects' health still moves; read before the freeze
	// writes, so that the state is saved right after them (the watch's
	// next event reads it again).
	if err := a.refreshHealth(ctx, st); err != nil {
		return err
	}
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
		for _, ref := range rolledWorkloads(st.Inventory) { // StatefulSet: partition held; DaemonSet: OnDelete
			gen, again, err := a.applier.FreezeWorkload(ctx, ref)
			if err != nil {
				return err
			}
			a.expect(ref, gen) // gitpace's own write, not drift
			// A hand unfreeze (kubectl patch) the watch marked as drift.
			if again != "" {
				a.printf("app %s: drift: %s %s/%s unfrozen by hand while %s (%s)", st.Name, ref.Kind, ref.Namespace, ref.Name, strings.ToLower(string(phase)), again)
				a.cfg.Log.Info("re-frozen", "app", st.Name, "object", ref.String(), "was", again)
			}
		}
	}
	if !already || *st.PausedBy != reason {
		a.printf("app %s: %s; in-flight rollouts frozen", st.Name, reason)
		a.cfg.Log.Info("frozen", "app", st.Name, "phase", phase, "reason", reason)
	}
	st.PausedBy = &reason
	st.Phase, st.Reason = phase, reason
	return a.save(ctx, st)
}

// resume lifts a freeze; the caller then applies the newest revision.
func (a *Agent) resume(ctx context.Context, st *state.App) error {
	for _, ref := range deployments(st.Inventory) {
		gen, err := a.applier.SetPaused(ctx, ref, false)
		if err != nil {
			return err
		}
		a.expect(ref, gen)
	}
	for _, ref := range rolledWorkloads(st.Inventory) {
		gen, err := a.applier.UnfreezeWorkload(ctx, ref)
		if err != nil {
			return err
		}
		a.expect(ref, gen)
	}
	a.printf("app %s: resumed (was: %s)", st.Name, *st.PausedBy)
	a.cfg.Log.Info("resumed", "app", st.Name, "was", *st.PausedBy)
	st.PausedBy = nil
	st.Phase, st.Reason = state.OutOfSync, ""
	return a.save(ctx, st)
}

// wakeAt asks for a full pass over every app at t (a window's next
// change): under Run the source is queued for t, and the pass it makes then
// is a full one.
func (a *Agent) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	a.mu.Lock()
	if a.wake.IsZero() || t.Before(a.wake) {
		a.wake = t
	}
	a.mu.Unlock()
	if l := a.loop.Load(); l != nil {
		l.q.AddAfter(keySource, max(t.Sub(a.cfg.Now()), 0)+10*time.Millisecond)
	}
}

// wakeTime is the pending window edge, zero if none.
func (a *Agent) wakeTime() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wake
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
