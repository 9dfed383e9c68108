package agent

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
	"github.com/gitpace/gitpace/state"
)

// followDeployments watches every Deployment, StatefulSet and DaemonSet
// gitpace manages. Each change updates the rollout cache, prints a line
// when `kubectl rollout status` would print a new one, asks the loop to
// re-evaluate the app's phase, and marks the app for a drift check when
// the spec changed (a generation gitpace did not produce: kubectl scale,
// kubectl set image; specChangedLocked). A deletion forgets what was known
// of the object and marks its app (the diff re-creates it).
func (a *Agent) followDeployments(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(a.kube, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = appliers.ManagedByLabel + "=" + appliers.ManagedByValue
		}))
	inf := factory.Apps().V1().Deployments().Informer()
	stores := map[string]cache.Store{"Deployment": inf.GetStore(),
		"StatefulSet": factory.Apps().V1().StatefulSets().Informer().GetStore(),
		"DaemonSet":   factory.Apps().V1().DaemonSets().Informer().GetStore()}
	a.watched.Store(&stores)
	defer a.watched.Store(nil)
	defer a.following.Store(false)
	handle := func(obj any) {
		d, ok := obj.(*appsv1.Deployment)
		if !ok {
			return
		}
		a.observeDeployment(d)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, n any) { handle(n) },
		DeleteFunc: func(obj any) { a.workloadDeleted(obj, "Deployment") },
	})
	// BCS applications: a ReplicaSet gitpace drives changed (pods Ready or
	// gone), so its rollout may take its next step.
	_, _ = factory.Apps().V1().ReplicaSets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    a.signalPaced,
		UpdateFunc: func(_, n any) { a.signalPaced(n) },
		DeleteFunc: a.signalPaced,
	})
	// StatefulSets and DaemonSets: followed like Deployments (workloads.go).
	for kind, inf := range map[string]cache.SharedIndexInformer{"StatefulSet": factory.Apps().V1().StatefulSets().Informer(), "DaemonSet": factory.Apps().V1().DaemonSets().Informer()} {
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: a.observeWorkload, UpdateFunc: func(_, n any) { a.observeWorkload(n) },
			DeleteFunc: func(obj any) { a.workloadDeleted(obj, kind) }})
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}

func (a *Agent) observeDeployment(d *appsv1.Deployment) {
	r := appliers.TypedDeploymentStatus(d)
	key := appliers.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: d.Namespace, Name: d.Name}.Key()
	a.mu.Lock()
	prev, seen := a.rollouts[key]
	// Cached even before the app owns it (the apply is still returning):
	// this is the newest status, which a seeded one must not hide.
	a.rollouts[key] = r
	if id, ok := deadlineID(d); ok {
		a.deadlines[key] = id
	} else {
		delete(a.deadlines, key)
	}
	app, mine := a.owned[key]
	if !mine {
		a.mu.Unlock()
		return // another agent's, or not applied by this one yet
	}
	drift := a.specChangedLocked(key, d.Generation, prev, seen)
	line := fmt.Sprintf("%s %d/%d/%d/%d %s", r.State, r.Desired, r.Current, r.UpToDate, r.Available, r.Message)
	changed := a.outLines[key] != line
	a.outLines[key] = line
	a.mu.Unlock()
	if changed && app != "" {
		a.printf("app %s: Deployment %s/%s: %s (desired %d, current %d, up-to-date %d, available %d)",
			app, d.Namespace, d.Name, r.Message, r.Desired, r.Current, r.UpToDate, r.Available)
	}
	if drift {
		a.specChanged(app, key, d.Generation)
	}
	if app != "" {
		a.enqueue(app, wantStatus)
	}
}

// specChangedLocked caches r, the watched rollout of the workload at key,
// and reports whether its generation is a spec change gitpace did not
// write: above the generation gitpace last wrote (expect) and not seen by
// the watch before (a status update keeps the generation). The first
// generation seen of an object gitpace has not written in this process
// becomes the expected one. prev and seen are the cache's entry before.
// Callers hold a.mu.
func (a *Agent) specChangedLocked(key string, gen int64, prev appliers.DeploymentRollout, seen bool) bool {
	exp, known := a.expected[key]
	if !known {
		a.expected[key] = gen
		return false
	}
	return gen > exp && !(seen && prev.Generation == gen)
}

// specChanged marks app for a drift check of the workload at key, whose
// generation gen gitpace has not recorded: someone changed the spec, or
// gitpace's own apply is still returning. The diff that follows tells the
// two apart and reports a real correction.
func (a *Agent) specChanged(app, key string, gen int64) {
	a.cfg.Log.Debug("workload spec changed; diffing", "app", app, "object", key, "generation", gen)
	a.markDirty(app)
}

// workloadDeleted handles a watched Deployment, StatefulSet or DaemonSet
// deleted behind git's back (a prune has already disowned it): a
// re-creation starts from generation 1, so what was known of the old
// object must not judge the new one; its app is marked for a diff.
func (a *Agent) workloadDeleted(obj any, kind string) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	key := appliers.ObjectRef{Group: "apps", Version: "v1", Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()}.Key()
	a.mu.Lock()
	app := a.owned[key]
	a.forgetLocked(key, false)
	a.mu.Unlock()
	a.markDirty(app)
}

// signalPaced makes the BCS deployment whose ReplicaSet changed due now
// (pods Ready or gone) and wakes the loop; other deployments are not stepped.
func (a *Agent) signalPaced(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	name := rs.Labels[vocab.LabelDeployment]
	if name == "" {
		return
	}
	a.mu.Lock()
	it := a.paced[revision.BCSRef(rs.Namespace, name).Key()]
	if it != nil {
		it.due = time.Time{}
	}
	a.mu.Unlock()
	if it == nil {
		return
	}
	a.kickPaced()
}

// markDirty queues app for a drift check.
func (a *Agent) markDirty(app string) { a.enqueue(app, wantDiff) }

// cachedRollout returns the Deployment's rollout as last watched. A status
// older than the generation gitpace last wrote is not an answer: the
// controller has not seen that change yet.
func (a *Agent) cachedRollout(ref appliers.ObjectRef) (appliers.DeploymentRollout, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.rollouts[ref.Key()]
	if ok && r.Generation < a.expected[ref.Key()] {
		return r, false
	}
	return r, ok
}

// seedRollout caches a Deployment's rollout from the object an apply (or
// the diff's read) returned, unless the watch already has that generation
// or a newer one: refreshPhase then needs no read of its own. The watch
// replaces it with every later change.
func (a *Agent) seedRollout(c appliers.Change) {
	if !a.following.Load() || c.Object == nil || c.Ref.Group != "apps" || c.Ref.Kind != "Deployment" {
		// Without the watch nothing would replace the seeded status, and
		// refreshPhase must read the Deployment each time.
		return
	}
	r, err := appliers.DeploymentStatus(c.Object)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.rollouts[c.Ref.Key()]; !ok || prev.Generation < r.Generation {
		a.rollouts[c.Ref.Key()] = r
	}
}

// forgetLocked drops what the agent knows of an object: the generation it
// wrote, the watched rollout, the printed line and, with disown, its app.
// Callers hold a.mu.
func (a *Agent) forgetLocked(key string, disown bool) {
	delete(a.expected, key)
	delete(a.rollouts, key)
	delete(a.deadlines, key)
	delete(a.outLines, key)
	if disown {
		delete(a.owned, key)
	}
}

// own records which app each inventory object belongs to, for the watch.
func (a *Agent) own(st *state.App) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ref := range st.Inventory {
		a.owned[ref.Key()] = st.Name
	}
}

// refreshPhase derives the app's phase from its Deployments' rollouts (as
// last seen by the watch; read once when not seen yet) and settles the
// newest history entry's outcome. A Deployment it cannot read (the API
// server unreachable, RBAC) is an error, never "no information": the phase
// stays as it was and the caller retries.
func (a *Agent) refreshPhase(ctx context.Context, st *state.App) error {
	ctx = withReads(ctx) // health and rollouts: one read per object
	st.BCS = a.pacedStatuses(st.Name)
	if err := a.refreshHealth(ctx, st); err != nil {
		return err
	}
	if st.PausedBy != nil || st.Rejected != nil || st.Phase == state.Held {
		return nil
	}
	phase, reason := state.Synced, ""
	var failing []state.PodIssue
	for _, ref := range deployments(st.Inventory) {
		r, ok := a.cachedRollout(ref)
		if !ok {
			u, err := justWrittenOr(ctx, ref, a.applier.Get)
			if err != nil {
				return fmt.Errorf("reading the rollout of %s: %w", ref, err)
			}
			if u == nil {
				// Deleted behind git's back: the watch marks the app for a
				// diff, which re-creates it.
				phase, reason = state.OutOfSync, ref.String()+" is missing"
				continue
			}
			if r, err = appliers.DeploymentStatus(u); err != nil {
				return fmt.Errorf("reading the rollout of %s: %w", ref, err)
			}
		}
		if r.State != appliers.RolloutFailed {
			a.forgetFailure(ref.Key())
		} else {
			n := a.deploymentFailure(ctx, ref, r)
			if n.stale {
				// The deadline passed for an earlier ReplicaSet: a rollback
				// the controller has not made progress on yet.
				r.State, r.Message = appliers.RolloutProgressing, progressMessage(r)
			} else {
				phase, reason = state.Failed, r.Message+notReadyText(n.pods)
				failing = append(failing, n.pods...)
			}
		}
		switch r.State {
		case appliers.RolloutProgressing, appliers.RolloutPaused:
			if phase != state.Failed {
				phase, reason = state.Progressing, r.Message
			}
		}
	}
	p, r, pods, err := a.workloadsPhase(ctx, st) // StatefulSets, DaemonSets
	if err != nil {
		return err
	}
	if phase != state.Failed && p != state.Synced && !(p == state.Progressing && phase == state.Progressing) {
		phase, reason, failing = p, r, pods
	}
	if phase == state.Synced || phase == state.Progressing {
		if p, r, pods := a.pacedPhase(ctx, st.Name); p != state.Synced && !(p == state.Progressing && phase == state.Progressing) {
			phase, reason, failing = p, r, pods
		}
	}
	if p, r, err := a.postSyncHooks(ctx, st, phase); err != nil {
		return err
	} else if p != "" && phase != state.Failed {
		phase, reason = p, r
	}
	if st.Phase != phase {
		a.cfg.Log.Info("app phase", "app", st.Name, "phase", phase, "reason", reason)
	}
	st.Phase, st.Reason, st.FailingPods = phase, reason, failing
	if e := st.Last(); e != nil && e.Outcome == state.RollingOut {
		switch phase {
		case state.Synced:
			e.Outcome = state.RolledOut
			if e.RollbackTo > 0 {
				e.Outcome = state.RolledBack
			}
			a.printf("app %s: revision %d (%s) %s in %s", st.Name, e.N, e.Revision.Short(), e.Outcome, a.cfg.Now().Sub(e.Applied).Round(100*time.Millisecond))
		case state.Failed:
			e.Outcome = state.FailedOut
			e.Message = reason
			a.printf("app %s: revision %d (%s) failed: %s", st.Name, e.N, e.Revision.Short(), reason)
		}
	}
	if phase == state.Failed {
		a.handleFailure(ctx, st)
	}
	a.cfg.Metrics.phase(st.Name, phase)
	return nil
}
