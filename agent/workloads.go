package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/state"
)

// Hooks of the health work (appliers/health, appliers/workloads.go) into the
// loop: refreshHealth and workloadsPhase are called by refreshPhase,
// observeWorkload by the watch (followDeployments), FreezeWorkload and
// UnfreezeWorkload by freeze and resume.

// refreshHealth sets the app's health (the second axis beside its phase)
// from its live objects and its BCS deployments' paced status (st.BCS), read through the applier (a GET per inventory
// object; an informer cache can stand in: health.Getter), and its metric.
// A read error is returned (the health stays as it was), as refreshPhase
// treats a Deployment it cannot read.
func (a *Agent) refreshHealth(ctx context.Context, st *state.App) error {
	var refs []appliers.ObjectRef
	for _, ref := range st.Inventory {
		if !revision.IsBCS(ref) { // BCS deployments: their paced status, below
			refs = append(refs, ref)
		}
	}
	objs, err := health.Objects(ctx, justWritten{next: cachedHealth{a: a}}, refs)
	if err != nil {
		return err
	}
	for _, b := range st.BCS {
		objs = append(objs, health.OfBCS(revision.BCSRef(b.Namespace, b.Name), b))
	}
	h := health.Aggregate(objs)
	if st.Health != h.Health {
		a.cfg.Log.Info("app health", "app", st.Name, "health", h.Health, "reason", h.Reason)
	}
	st.Health, st.HealthReason = h.Health, h.Reason
	a.cfg.Metrics.health(st.Name, h.Health)
	if h.Health == health.Progressing {
		a.recheckHealth(st.Name)
	}
	return nil
}

// healthRecheck is when the health of a Progressing app is read again,
// whatever else happens: Jobs and custom resources are not watched, and
// nothing else would notice that they became Healthy or Degraded.
const healthRecheck = 3 * time.Second

// recheckHealth queues app to have its phase and health refreshed
// healthRecheck from now (the work queue's AddAfter; the delaying queue
// keeps one entry per app). Only under Run: a ReconcileOnce pass has no
// timers, and an idle pass must make no request.
func (a *Agent) recheckHealth(app string) {
	l := a.loop.Load()
	if l == nil {
		return
	}
	a.mu.Lock()
	a.work[app] |= wantStatus
	a.mu.Unlock()
	l.q.AddAfter(app, healthRecheck)
}

// rolledWorkloads are the StatefulSets and DaemonSets of an inventory: the
// workloads besides Deployments whose rollouts gitpace follows and freezes.
func rolledWorkloads(refs []appliers.ObjectRef) []appliers.ObjectRef {
	var out []appliers.ObjectRef
	for _, r := range refs {
		if r.Group == "apps" && (r.Kind == "StatefulSet" || r.Kind == "DaemonSet") {
			out = append(out, r)
		}
	}
	return out
}

// workloadsPhase is what the app's StatefulSets and DaemonSets say of its
// phase: Failed (with the stuck pods of the new revision,
// appliers.RolloutPodFailure) before Progressing (a rollout not finished,
// or frozen) before Synced. It reads each one, and lists its pods only
// while its rollout is in flight; a read error is returned, a missing one
// makes the app OutOfSync (as a missing Deployment does). A failed rollout
// makes the app Degraded
// on the health axis too, naming the workload (kstatus, which reads no
// pods, still says InProgress; a Deployment past its deadline is Failed
// there, hence Degraded).
func (a *Agent) workloadsPhase(ctx context.Context, st *state.App) (state.Phase, string, []state.PodIssue, error) {
	phase, reason := state.Synced, ""
	for _, ref := range rolledWorkloads(st.Inventory) {
		u, err := a.applier.Get(ctx, ref)
		if err != nil {
			return "", "", nil, fmt.Errorf("reading the rollout of %s: %w", ref, err)
		}
		if u == nil {
			phase, reason = state.OutOfSync, ref.String()+" is missing"
			continue
		}
		r, _, err := appliers.WorkloadStatus(u)
		if err != nil {
			return "", "", nil, fmt.Errorf("reading the rollout of %s: %w", ref, err)
		}
		if r.State == appliers.RolloutComplete {
			continue
		}
		if r.State == appliers.RolloutProgressing {
			stuck, err := a.stuckPods(ctx, ref, u)
			if err != nil {
				return "", "", nil, err
			}
			if len(stuck) > 0 {
				var issues []state.PodIssue
				var names []string
				for _, p := range stuck {
					issues = append(issues, state.PodIssue{Name: p.Name, Reason: p.Reason})
					names = append(names, p.Name+" ("+p.Reason+")")
				}
				notReady := strings.Join(names, ", ")
				msg := fmt.Sprintf("%s %s/%s rollout cannot finish: %s; not Ready: %s", strings.ToLower(ref.Kind), ref.Namespace, ref.Name,
					strings.TrimSuffix(r.Message, "..."), notReady)
				st.Health, st.HealthReason = health.Degraded, ref.String()+": rollout cannot finish; not Ready: "+notReady
				a.cfg.Metrics.health(st.Name, health.Degraded)
				return state.Failed, msg, issues, nil
			}
		}
		if phase == state.Synced {
			phase, reason = state.Progressing, r.Message
		}
	}
	return phase, reason, nil, nil
}

// stuckPods lists the pods of workload u (ref) and returns those of its new
// revision that cannot become Ready (appliers.RolloutPodFailure).
func (a *Agent) stuckPods(ctx context.Context, ref appliers.ObjectRef, u *unstructured.Unstructured) ([]appliers.PodFailure, error) {
	sel, err := podSelector(u)
	if err != nil {
		return nil, fmt.Errorf("%s: spec.selector: %w", ref, err)
	}
	pods, err := a.kube.CoreV1().Pods(ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", ref, err)
	}
	return appliers.RolloutPodFailure(pods.Items, appliers.NewRevisionPod(u), a.cfg.Now()), nil
}

// podSelector is a workload's spec.selector as a label selector string.
func podSelector(u *unstructured.Unstructured) (string, error) {
	m, _, err := unstructured.NestedMap(u.Object, "spec", "selector")
	if err != nil {
		return "", err
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ls); err != nil {
		return "", err
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return "", err
	}
	return sel.String(), nil
}

// observeWorkload is the watch's handler for StatefulSets and DaemonSets,
// as observeDeployment for Deployments: it prints a line when `kubectl
// rollout status` would print a new one, marks the owning app for a drift
// check when the spec changed behind gitpace's back (kubectl scale sts,
// kubectl set image ds: specChangedLocked), and asks the loop to
// re-evaluate the app's phase and health.
func (a *Agent) observeWorkload(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	var r appliers.DeploymentRollout
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		r = appliers.TypedStatefulSetStatus(o)
	case *appsv1.DaemonSet:
		r = appliers.TypedDaemonSetStatus(o)
	default:
		return
	}
	key := appliers.ObjectRef{Group: "apps", Version: "v1", Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}.Key()
	line := fmt.Sprintf("%s %d/%d/%d/%d %s", r.State, r.Desired, r.Current, r.UpToDate, r.Available, r.Message)
	a.mu.Lock()
	prev, seen := a.rollouts[key]
	a.rollouts[key] = r // for specChangedLocked; refreshPhase reads these kinds itself
	app, mine := a.owned[key]
	changed := mine && a.outLines[key] != line
	drift := false
	if mine {
		a.outLines[key] = line
		drift = a.specChangedLocked(key, r.Generation, prev, seen)
	}
	a.mu.Unlock()
	if !mine || app == "" {
		return
	}
	if changed {
		a.printf("app %s: %s %s/%s: %s (desired %d, current %d, up-to-date %d, available %d)",
			app, r.Kind, r.Namespace, r.Name, r.Message, r.Desired, r.Current, r.UpToDate, r.Available)
	}
	if drift {
		a.specChanged(app, key, r.Generation)
	}
	a.enqueue(app, wantStatus)
}

// justWrittenKey marks a context carrying the objects an apply returned a
// moment ago (by ObjectRef.Key): the health read right after an apply
// takes them instead of reading each object again.
type justWrittenKey struct{}

// withJustWritten returns ctx carrying the objects cs returned.
func withJustWritten(ctx context.Context, cs appliers.ChangeSet) context.Context {
	known := map[string]*unstructured.Unstructured{}
	for _, c := range cs {
		if c.Object != nil && (c.Action == appliers.Created || c.Action == appliers.Configured || c.Action == appliers.Recreated) {
			known[c.Ref.Key()] = c.Object
		}
	}
	return context.WithValue(ctx, justWrittenKey{}, known)
}

// justWrittenOr returns the object an apply just returned (ctx from
// withJustWritten), or what get reads; under withReads, an object read
// once is not read again.
func justWrittenOr(ctx context.Context, ref appliers.ObjectRef, get func(context.Context, appliers.ObjectRef) (*unstructured.Unstructured, error)) (*unstructured.Unstructured, error) {
	if known, ok := ctx.Value(justWrittenKey{}).(map[string]*unstructured.Unstructured); ok {
		if u, ok := known[ref.Key()]; ok {
			return u, nil
		}
	}
	r, _ := ctx.Value(readsKey{}).(*reads)
	if r != nil {
		r.mu.Lock()
		u, ok := r.objs[ref.Key()]
		r.mu.Unlock()
		if ok {
			return u, nil
		}
	}
	u, err := get(ctx, ref)
	if err == nil && r != nil {
		r.mu.Lock()
		r.objs[ref.Key()] = u
		r.mu.Unlock()
	}
	return u, err
}

// readsKey marks a context carrying the objects read during one phase
// refresh (reads, by ObjectRef.Key; nil for one found missing): health and
// the rollout of a Deployment the watch does not hold yet take one read,
// not two.
type readsKey struct{}

type reads struct {
	mu   sync.Mutex
	objs map[string]*unstructured.Unstructured
}

// withReads returns ctx carrying an empty set of reads.
func withReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, readsKey{}, &reads{objs: map[string]*unstructured.Unstructured{}})
}

// justWritten is a health.Getter that answers from the objects an apply
// just returned, and asks next for the others.
type justWritten struct{ next health.Getter }

func (j justWritten) Get(ctx context.Context, ref appliers.ObjectRef) (*unstructured.Unstructured, error) {
	return justWrittenOr(ctx, ref, j.next.Get)
}

// cachedHealth is the health.Getter of the agent: what the watches hold
// before any request. Deployments, StatefulSets and DaemonSets come from
// the workload watch's stores (gitpace's workloads, every change);
// Services that are not of type LoadBalancer, whose kstatus is Current
// whatever their spec, and kinds without status come from the live-object
// cache (appliers.Applier.CachedObject); anything else, or what the caches
// do not hold yet, is read (appliers.Applier.HealthObject).
type cachedHealth struct{ a *Agent }

func (c cachedHealth) Get(ctx context.Context, ref appliers.ObjectRef) (*unstructured.Unstructured, error) {
	if stores := c.a.watched.Load(); stores != nil && ref.Group == "apps" {
		if st, ok := (*stores)[ref.Kind]; ok {
			if obj, ok, err := st.GetByKey(ref.Namespace + "/" + ref.Name); err == nil && ok {
				m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
				c.a.mu.Lock()
				behind := err == nil && (&unstructured.Unstructured{Object: m}).GetGeneration() < c.a.expected[ref.Key()]
				c.a.mu.Unlock()
				if err == nil && !behind { // not behind what gitpace last wrote
					u := &unstructured.Unstructured{Object: m}
					u.SetAPIVersion("apps/v1")
					u.SetKind(ref.Kind)
					return u, nil
				}
			}
		}
	}
	if ref.Group == "" && ref.Kind == "Service" {
		c.a.mu.Lock()
		lb := c.a.lbServices[ref.Key()]
		c.a.mu.Unlock()
		if !lb {
			if u, ok := c.a.applier.CachedObject(ctx, ref); ok {
				return u, nil
			}
		}
	}
	return c.a.applier.HealthObject(ctx, ref)
}
