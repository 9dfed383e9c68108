package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
	"github.com/gitpace/gitpace/state"
)

// rsLog follows the ReplicaSets (applications) of one BCS deployment from
// the moment it starts and records, in the API server's order:
//   - every distinct spec.replicas value of each application, in order;
//   - the rollout state as it moves: after every event the winning copy of
//     the state annotation (highest Seq; a lower Seq is a stale copy on the
//     other application);
//   - the most applications alive at once;
//   - violations as they happen: a replica count past the targets of the
//     state in force, two different states under one Seq.
//
// The engine writes the state before it acts (write-ahead), so every scale
// is seen after the state that decided it.
type rsLog struct {
	mu      sync.Mutex
	live    map[string]*appsv1.ReplicaSet
	steps   map[string][]int32
	maxLive int
	states  []paced.State
	raw     []string // states[i] as written
	bad     []string
	notify  chan struct{} // closed and replaced after every event
	ended   chan struct{}
	err     error
}

func watchReplicaSets(t *testing.T, cs kubernetes.Interface, ns, deployment string) *rsLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := metav1.ListOptions{LabelSelector: vocab.LabelDeployment + "=" + deployment}
	list, err := cs.AppsV1().ReplicaSets(ns).List(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	opts.ResourceVersion = list.ResourceVersion
	w, err := cs.AppsV1().ReplicaSets(ns).Watch(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &rsLog{live: map[string]*appsv1.ReplicaSet{}, steps: map[string][]int32{}, notify: make(chan struct{}), ended: make(chan struct{})}
	for i := range list.Items {
		r.observe(watch.Added, &list.Items[i])
	}
	go func() {
		defer close(r.ended)
		defer w.Stop()
		for ev := range w.ResultChan() {
			if rs, ok := ev.Object.(*appsv1.ReplicaSet); ok {
				r.observe(ev.Type, rs)
				continue
			}
			if ev.Type == watch.Error {
				r.mu.Lock()
				r.err = fmt.Errorf("ReplicaSet watch: %v", ev.Object)
				r.mu.Unlock()
				return
			}
		}
		r.mu.Lock()
		if r.err == nil {
			r.err = fmt.Errorf("ReplicaSet watch closed")
		}
		r.mu.Unlock()
	}()
	t.Cleanup(func() { cancel(); <-r.ended })
	return r
}

func (r *rsLog) observe(typ watch.EventType, rs *appsv1.ReplicaSet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if typ == watch.Deleted {
		delete(r.live, rs.Name)
	} else {
		r.live[rs.Name] = rs
		if v, ok := rs.Annotations[paced.AnnotationState]; ok {
			r.addState(rs.Name, v)
		}
		n := *rs.Spec.Replicas
		if s := r.steps[rs.Name]; len(s) == 0 || s[len(s)-1] != n {
			r.steps[rs.Name] = append(s, n)
			r.checkBounds(rs.Name, n)
		}
	}
	r.maxLive = max(r.maxLive, len(r.live))
	close(r.notify)
	r.notify = make(chan struct{})
}

func (r *rsLog) addState(holder, v string) {
	var st paced.State
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		r.bad = append(r.bad, fmt.Sprintf("ReplicaSet %s: unreadable state annotation %q: %v", holder, v, err))
		return
	}
	if n := len(r.states); n > 0 {
		switch last := r.states[n-1]; {
		case st.Seq < last.Seq:
			return // a stale copy
		case st.Seq == last.Seq:
			if v != r.raw[n-1] {
				r.bad = append(r.bad, fmt.Sprintf("two states with seq %d: %s and (on %s) %s", st.Seq, r.raw[n-1], holder, v))
			}
			return
		}
	}
	r.states = append(r.states, st)
	r.raw = append(r.raw, v)
}

// checkBounds: while a rollout is in flight, the new application never
// goes above, nor the old one below, the targets of the state in force
// (before cycle 1: 0 new, the old at its pre-rollout count).
func (r *rsLog) checkBounds(name string, n int32) {
	cur := r.cur()
	if !cur.InRollout() {
		return
	}
	switch name {
	case cur.New:
		limit := int32(0)
		if cur.Cycle > 0 {
			limit = cur.Target.New
		}
		if n > limit {
			r.bad = append(r.bad, fmt.Sprintf("new application %s scaled to %d, past %d (cycle %d, %s): state %s", name, n, limit, cur.Cycle, cur.Phase, r.raw[len(r.raw)-1]))
		}
	case cur.Base:
		floor := cur.BaseInstance
		if cur.Cycle > 0 {
			floor = cur.Target.Old
		}
		if n < floor {
			r.bad = append(r.bad, fmt.Sprintf("old application %s scaled to %d, below %d (cycle %d, %s): state %s", name, n, floor, cur.Cycle, cur.Phase, r.raw[len(r.raw)-1]))
		}
	}
}

// cur is the state in force (zero before any); callers hold mu.
func (r *rsLog) cur() paced.State {
	if len(r.states) == 0 {
		return paced.State{}
	}
	return r.states[len(r.states)-1]
}

// curRaw is cur as written; callers hold mu.
func (r *rsLog) curRaw() string {
	if len(r.raw) == 0 {
		return "(none)"
	}
	return r.raw[len(r.raw)-1]
}

// replicas is application name's spec.replicas (-1 when it does not exist);
// callers hold mu.
func (r *rsLog) replicas(name string) int32 {
	if rs, ok := r.live[name]; ok {
		return *rs.Spec.Replicas
	}
	return -1
}

// until blocks until cond (called with mu held) holds, ctx ends or the
// watch ends.
func (r *rsLog) until(ctx context.Context, what string, cond func(r *rsLog) bool) error {
	for {
		r.mu.Lock()
		ok, ch, err := cond(r), r.notify, r.err
		desc := r.describe()
		r.mu.Unlock()
		switch {
		case ok:
			return nil
		case err != nil:
			return fmt.Errorf("waiting for %s: %v", what, err)
		}
		select {
		case <-ch:
		case <-r.ended:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; now: %s", what, context.Cause(ctx), desc)
		}
	}
}

// describe summarises what is live; callers hold mu.
func (r *rsLog) describe() string {
	names := make([]string, 0, len(r.live))
	for n := range r.live {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		rs := r.live[n]
		fmt.Fprintf(&b, "%s %d/%d ready; ", n, rs.Status.ReadyReplicas, *rs.Spec.Replicas)
	}
	fmt.Fprintf(&b, "state %s", r.curRaw())
	return b.String()
}

// snapshot returns copies of what was recorded.
func (r *rsLog) snapshot() (steps map[string][]int32, states []paced.State, raw []string, maxLive int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	steps = map[string][]int32{}
	for k, v := range r.steps {
		steps[k] = append([]int32(nil), v...)
	}
	return steps, append([]paced.State(nil), r.states...), append([]string(nil), r.raw...), r.maxLive, append([]string(nil), r.bad...)
}

// untilAppState waits until app's state (gitpace's ConfigMap in stateNS)
// satisfies cond, and returns it.
func untilAppState(ctx context.Context, cs kubernetes.Interface, stateNS, app string, cond func(*state.App) bool) (*state.App, error) {
	store := state.NewStore(cs, stateNS)
	sel := state.KindLabel + "=app" // the test's own state namespace: its apps only
	var last *state.App
	_, err := watchtools.UntilWithSync(ctx, &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return cs.CoreV1().ConfigMaps(stateNS).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return cs.CoreV1().ConfigMaps(stateNS).Watch(ctx, o)
		},
	}, &corev1.ConfigMap{}, nil, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return false, nil
		}
		st, err := store.Find(ctx, app)
		if err != nil || st == nil {
			return false, err
		}
		last = st
		return cond(st), nil
	})
	if err != nil {
		b, _ := json.MarshalIndent(last, "", "  ")
		return nil, fmt.Errorf("waiting for the state of app %s: %w (%v); last seen:\n%s", app, err, context.Cause(ctx), b)
	}
	return last, nil
}

// untilDeployment waits until Deployment ns/name satisfies cond and returns it.
func untilDeployment(ctx context.Context, cs kubernetes.Interface, ns, name string, cond func(*appsv1.Deployment) bool) (*appsv1.Deployment, error) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	var last *appsv1.Deployment
	_, err := watchtools.UntilWithSync(ctx, &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cs.AppsV1().Deployments(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cs.AppsV1().Deployments(ns).Watch(ctx, o)
		},
	}, &appsv1.Deployment{}, nil, func(ev watch.Event) (bool, error) {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok || ev.Type == watch.Deleted {
			return false, nil
		}
		last = d
		return cond(d), nil
	})
	if err != nil {
		var s any = "nothing"
		if last != nil {
			s = last.Status
		}
		return nil, fmt.Errorf("waiting for Deployment %s/%s: %w (%v); last status: %+v", ns, name, err, context.Cause(ctx), s)
	}
	return last, nil
}
