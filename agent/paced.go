package agent

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/manifest"
	"github.com/gitpace/gitpace/state"
)

// bcsKind is the inventory kind of a BCS v4 deployment: not a Kubernetes
// resource but the pair of ReplicaSets package paced drives.
const (
	bcsGroup = "bcs.gitpace.dev"
	bcsKind  = "BCSDeployment"
)

func bcsRef(ns, name string) appliers.ObjectRef {
	return appliers.ObjectRef{Group: bcsGroup, Version: "v4", Kind: bcsKind, Namespace: ns, Name: name}
}

// pacedItem is one BCS deployment the agent drives: the spec in force, its
// controls (PAUSE, window, PROMOTE) and when to step it next. The rollout's
// own state lives in the cluster (package paced), so this is only a cache of
// what git says.
type pacedItem struct {
	app  string
	spec paced.Spec
	ctl  paced.Controls
	due  time.Time
	last *paced.Status
	// gen counts changes of spec and controls: a step taken on an older
	// generation (the engine runs beside the app workers) must not settle
	// the newer one.
	gen int
}

// bcsDesired parses an app's BCS v4 files into engine specs, plus each
// application template as an object for the policy gates. Errors name the
// file and JSON path.
func bcsDesired(app *manifest.App, commit string) ([]paced.Spec, []*unstructured.Unstructured, error) {
	var specs []paced.Spec
	var objs []*unstructured.Unstructured
	for _, f := range app.BCS {
		d, err := bcs.Parse(f.File, f.Data)
		if err != nil {
			return nil, nil, err
		}
		rs, err := d.ReplicaSet(d.Name())
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.File, err)
		}
		s := d.Strategy()
		spec := paced.Spec{
			Namespace: d.Namespace(), Name: d.Name(), Instance: d.Instance(),
			Strategy: paced.Strategy{MaxSurge: s.MaxSurge, MaxUnavailable: s.MaxUnavailable,
				UpgradeDuration: s.UpgradeDuration, Order: s.Order, Manually: s.Manually},
			Template: rs, TemplateHash: d.TemplateHash(), Revision: commit,
		}
		if err := spec.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.File, err)
		}
		specs = append(specs, spec)
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(rs)
		if err != nil {
			return nil, nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetAPIVersion("apps/v1")
		u.SetKind("ReplicaSet")
		objs = append(objs, u)
	}
	return specs, objs, nil
}

// setPaced makes specs the app's BCS deployments in force (nil: none; the
// removed ones are deleted by prune) and marks them due.
func (a *Agent) setPaced(app string, specs []paced.Spec, promote *manifest.Promote) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range specs {
		key := bcsRef(s.Namespace, s.Name).Key()
		it := a.paced[key]
		if it == nil {
			it = &pacedItem{app: app}
			a.paced[key] = it
		}
		if it.spec.TemplateHash != s.TemplateHash || it.spec.Instance != s.Instance {
			it.last = nil // a new rollout: not settled before its first step
		}
		it.gen++
		it.spec = s
		it.ctl.Paused, it.ctl.PauseReason = false, ""
		it.ctl.Promote = toPromote(promote)
		it.due = time.Time{}
	}
	if len(specs) > 0 {
		a.kickPaced()
	}
}

// controlPaced pauses (or releases) the app's BCS rollouts in force and
// updates their PROMOTE approval: a pause lets the cycle in flight finish.
func (a *Agent) controlPaced(app string, paused bool, reason string, promote *manifest.Promote) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, it := range a.paced {
		if it.app != app {
			continue
		}
		p := toPromote(promote)
		if it.ctl.Paused != paused || it.ctl.PauseReason != reason || fmt.Sprint(it.ctl.Promote) != fmt.Sprint(p) {
			it.ctl.Paused, it.ctl.PauseReason, it.ctl.Promote = paused, reason, p
			it.due = time.Time{}
			it.gen++
			a.kickPaced()
		}
	}
}

func toPromote(p *manifest.Promote) *paced.Promote {
	if p == nil {
		return nil
	}
	return &paced.Promote{Rollout: p.Rollout, Cycles: p.Cycles}
}

// dropPaced forgets a BCS deployment (pruned).
func (a *Agent) dropPaced(ref appliers.ObjectRef) {
	a.mu.Lock()
	delete(a.paced, ref.Key())
	a.mu.Unlock()
}

// drivePaced steps every due BCS rollout until it waits, and returns when
// the next one is due (zero: none). One step is one engine decision, so a
// killed agent resumes exactly where the cluster says it is.
func (a *Agent) drivePaced(ctx context.Context) time.Time {
	a.pacedRun.Lock()
	defer a.pacedRun.Unlock()
	a.mu.Lock()
	keys := make([]string, 0, len(a.paced))
	for k := range a.paced {
		keys = append(keys, k)
	}
	a.mu.Unlock()
	sort.Strings(keys)
	var next time.Time
	for _, k := range keys {
		a.mu.Lock()
		it, ok := a.paced[k]
		var spec paced.Spec
		var ctl paced.Controls
		due, gen := time.Time{}, 0
		if ok {
			spec, ctl, due, gen = it.spec, it.ctl, it.due, it.gen
		}
		ctl.StartTimeout, ctl.DeleteTimeout = a.cfg.BCSStartTimeout, a.cfg.BCSDeleteTimeout
		a.mu.Unlock()
		if !ok {
			continue
		}
		now := a.cfg.Now()
		if due.After(now) {
			next = earliest(next, due)
			continue
		}
		if err := a.ensureNamespace(ctx, spec.Namespace); err != nil {
			a.cfg.Log.Error("BCS namespace", "namespace", spec.Namespace, "err", err)
			next = earliest(next, now.Add(5*time.Second))
			continue
		}
		var st paced.Status
		var err error
		for step := 0; step < 50; step++ {
			ctl.Now = a.cfg.Now()
			st, err = a.engine.Reconcile(ctx, spec, ctl)
			if err != nil || st.Done || st.RequeueAfter > 0 {
				break
			}
			a.reportPaced(it.app, &st, gen)
		}
		a.mu.Lock()
		stale := it.gen != gen // git changed it meanwhile: step again at once
		switch {
		case stale:
			it.due = time.Time{}
		case err != nil:
			a.cfg.Log.Error("BCS rollout step failed; retrying", "deployment", spec.Namespace+"/"+spec.Name, "err", err)
			it.due = a.cfg.Now().Add(2 * time.Second)
		case st.Done:
			it.due = a.cfg.Now().Add(a.cfg.Resync) // re-check now and then; watch events come first
		default:
			it.due = a.cfg.Now().Add(st.RequeueAfter)
		}
		next = earliest(next, it.due)
		a.mu.Unlock()
		if err == nil {
			a.reportPaced(it.app, &st, gen)
		}
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// reportPaced prints a line when a BCS deployment's line changes and asks
// the loop to re-evaluate the app's phase.
func (a *Agent) reportPaced(app string, st *paced.Status, gen int) {
	key := bcsRef(st.Namespace, st.Name).Key()
	line := pacedLine(st)
	a.mu.Lock()
	changed := a.outLines[key] != line
	a.outLines[key] = line
	if it := a.paced[key]; it != nil && it.gen == gen {
		cp := *st
		it.last = &cp
	}
	a.mu.Unlock()
	if changed {
		a.printf("app %s: BCS deployment %s/%s: %s", app, st.Namespace, st.Name, line)
	}
	a.enqueue(app, wantStatus)
}

// pacedLine is a BCS deployment's status line: status, cycle k of n, what
// it waits for.
func pacedLine(st *paced.Status) string {
	s := st.Status
	if st.Cycles > 0 && st.Rollout != "" {
		s += fmt.Sprintf(", cycle %d of %d (rollout %s)", st.Cycle, st.Cycles, st.Rollout)
	}
	if !st.NextCycleAt.IsZero() && st.Rollout != "" {
		s += ", next cycle at " + st.NextCycleAt.Format(time.TimeOnly)
	}
	if st.Reason != "" {
		s += ": " + st.Reason
	}
	for _, ap := range st.Apps {
		s += fmt.Sprintf(" [%s %s %d/%d]", ap.Name, ap.Status, ap.RunningInstance, ap.Instance)
	}
	return s
}

// pacedStatuses returns the last status of each of the app's BCS rollouts.
func (a *Agent) pacedStatuses(app string) []paced.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []paced.Status
	for _, k := range sortedKeys(a.paced) {
		if it := a.paced[k]; it.app == app && it.last != nil {
			out = append(out, *it.last)
		}
	}
	return out
}

// ensureNamespace creates a BCS deployment's namespace when missing (BCS
// namespaces existed implicitly). It is not pruned.
func (a *Agent) ensureNamespace(ctx context.Context, ns string) error {
	a.mu.Lock()
	known := a.namespaces[ns]
	a.mu.Unlock()
	if known {
		return nil
	}
	_, err := a.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = a.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{appliers.ManagedByLabel: appliers.ManagedByValue}}}, metav1.CreateOptions{FieldManager: appliers.FieldManager})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.namespaces[ns] = true
	a.mu.Unlock()
	return nil
}

// pacedPhase folds the app's BCS rollouts into its phase; one that has not
// taken its first step yet is Progressing. A suspended rollout is Failed,
// with the new application's not-Ready pods.
func (a *Agent) pacedPhase(ctx context.Context, app string) (state.Phase, string, []state.PodIssue) {
	a.mu.Lock()
	for _, it := range a.paced {
		if it.app == app && it.last == nil {
			a.mu.Unlock()
			return state.Progressing, fmt.Sprintf("BCS deployment %s/%s: starting", it.spec.Namespace, it.spec.Name), nil
		}
	}
	a.mu.Unlock()
	sts := a.pacedStatuses(app)
	for _, st := range sts {
		if st.Status == paced.StatusUpdateSuspend {
			pods := a.bcsFailingPods(ctx, &st)
			return state.Failed, fmt.Sprintf("BCS deployment %s/%s suspended: %s%s", st.Namespace, st.Name, st.Reason, notReadyText(pods)), pods
		}
		a.forgetFailure(bcsRef(st.Namespace, st.Name).Key())
	}
	for _, st := range sts {
		if !st.Done || st.Rollout != "" {
			return state.Progressing, fmt.Sprintf("BCS deployment %s/%s: %s", st.Namespace, st.Name, pacedLine(&st)), nil
		}
	}
	return state.Synced, "", nil
}
