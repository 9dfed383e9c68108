package testenv

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// PodWatch follows the pods matching a label selector from a consistent list
// onwards and records, after every event, how many exist (not terminating) and
// how many are Ready: the two numbers a rolling update bounds.
//
// With WatchDeploymentPods it also follows the ReplicaSets of the same
// selector, for Intended: the most, at any moment, of the sum over
// ReplicaSets of min(live pods, spec.replicas). That is the number the
// Deployment controller bounds by replicas+maxSurge. The raw pod count can
// exceed it for a moment when the ReplicaSet controller has not yet deleted a
// pod of a ReplicaSet already scaled down; Kubernetes documents this ("you
// might notice that there are more Pods than expected during a rollout").
// The two watches are two streams that arrive at their own pace: a
// ReplicaSet watch behind the pod watch would pair the new pods with the
// old ReplicaSet's spec from before its scale-down, a sum the cluster never
// had. So the sum is not taken as events arrive but by replaying both
// watches' changes in etcd order (resourceVersion), once both have caught
// up; pods of a ReplicaSet not seen yet count in full.
type PodWatch struct {
	mu           sync.Mutex
	cs           kubernetes.Interface
	ns, selector string
	pods         map[string]*corev1.Pod
	rsSpec       map[types.UID]int32  // nil unless ReplicaSets are watched
	rsSeen       map[types.UID]string // each ReplicaSet's resourceVersion, as its watch last saw it
	changes      []change             // both watches' changes, for Intended (ReplicaSets watched only)
	MaxTotal     int
	MinReady     int
	Events       int
	changed      chan struct{}
	cancel       context.CancelFunc
	done         chan struct{}
	rsDone       chan struct{}
	err          error
	startedReady bool
}

// WatchPods starts a PodWatch in namespace ns; it stops when the test ends.
func WatchPods(t testing.TB, cs kubernetes.Interface, ns, selector string) *PodWatch {
	t.Helper()
	return watchPods(t, cs, ns, selector, false)
}

// WatchDeploymentPods is WatchPods that also follows the ReplicaSets matching
// selector, for Intended.
func WatchDeploymentPods(t testing.TB, cs kubernetes.Interface, ns, selector string) *PodWatch {
	t.Helper()
	return watchPods(t, cs, ns, selector, true)
}

func watchPods(t testing.TB, cs kubernetes.Interface, ns, selector string, withRS bool) *PodWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pw := &PodWatch{cs: cs, ns: ns, selector: selector, pods: map[string]*corev1.Pod{}, changed: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	if withRS {
		rsList, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		rw, err := cs.AppsV1().ReplicaSets(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: rsList.ResourceVersion})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		pw.rsSpec, pw.rsSeen = map[types.UID]int32{}, map[types.UID]string{}
		for i := range rsList.Items {
			rs := &rsList.Items[i]
			pw.rsSpec[rs.UID], pw.rsSeen[rs.UID] = specReplicas(rs), rs.ResourceVersion
			pw.changes = append(pw.changes, change{rs: rs})
		}
		pw.rsDone = make(chan struct{})
		// Started once the pods are loaded, so that no count is recorded
		// from an empty pod map.
		defer func() { go pw.rsLoop(ctx, rw) }()
	}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pw.mu.Lock()
	for i := range list.Items {
		pw.pods[list.Items[i].Name] = &list.Items[i]
		if withRS {
			pw.changes = append(pw.changes, change{pod: &list.Items[i]})
		}
	}
	pw.record()
	pw.mu.Unlock()
	go pw.loop(w)
	t.Cleanup(pw.Stop)
	return pw
}

func (pw *PodWatch) loop(w watch.Interface) {
	defer close(pw.done)
	drain(pw, w, func(pod *corev1.Pod, deleted bool) {
		if deleted {
			delete(pw.pods, pod.Name)
		} else {
			pw.pods[pod.Name] = pod
		}
		if pw.rsSpec != nil {
			pw.changes = append(pw.changes, change{pod: pod, deleted: deleted})
		}
		pw.Events++
	})
}

func (pw *PodWatch) rsLoop(ctx context.Context, w watch.Interface) {
	defer close(pw.rsDone)
	drain(pw, w, func(rs *appsv1.ReplicaSet, deleted bool) {
		if deleted {
			delete(pw.rsSpec, rs.UID)
			delete(pw.rsSeen, rs.UID)
		} else {
			pw.rsSpec[rs.UID], pw.rsSeen[rs.UID] = specReplicas(rs), rs.ResourceVersion
		}
		pw.changes = append(pw.changes, change{rs: rs, deleted: deleted})
	})
	if ctx.Err() == nil {
		// Ended before Stop: later counts would miss ReplicaSets.
		pw.mu.Lock()
		if pw.err == nil {
			pw.err = fmt.Errorf("ReplicaSet watch ended early")
		}
		pw.mu.Unlock()
	}
}

// drain applies every event of w for objects of type T under pw.mu, records
// the counts after each, and wakes Until. A watch error is kept for Until.
func drain[T any](pw *PodWatch, w watch.Interface, apply func(obj T, deleted bool)) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		obj, ok := ev.Object.(T)
		pw.mu.Lock()
		if ok {
			apply(obj, ev.Type == watch.Deleted)
			pw.record()
		} else if ev.Type == watch.Error {
			pw.err = fmt.Errorf("watch error: %v", ev.Object)
		}
		pw.mu.Unlock()
		if ok {
			select {
			case pw.changed <- struct{}{}:
			default:
			}
		}
	}
}

func specReplicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// record updates the extremes of the pod counts; callers hold mu.
func (pw *PodWatch) record() {
	total, ready := pw.counts()
	if total > pw.MaxTotal {
		pw.MaxTotal = total
	}
	if !pw.startedReady {
		pw.MinReady, pw.startedReady = ready, true
	} else if ready < pw.MinReady {
		pw.MinReady = ready
	}
}

func (pw *PodWatch) counts() (total, ready int) {
	for _, p := range pw.pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		total++
		if PodReady(p) {
			ready++
		}
	}
	return total, ready
}

// intended is the sum over ReplicaSets of min(live pods, spec.replicas), plus
// the live pods of no ReplicaSet, or of one the watch has not seen yet;
// callers hold mu.
func (pw *PodWatch) intended() int {
	live := map[types.UID]int{}
	n := 0
	for _, p := range pw.pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		owner := metav1.GetControllerOf(p)
		if owner == nil {
			n++
			continue
		}
		live[owner.UID]++
	}
	for uid, c := range live {
		if spec, ok := pw.rsSpec[uid]; ok {
			n += min(c, int(spec))
		} else {
			n += c // a ReplicaSet the watch has not seen yet: count them all
		}
	}
	return n
}

// Snapshot returns copies of the live (not terminating) pods.
func (pw *PodWatch) Snapshot() []corev1.Pod {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	var out []corev1.Pod
	for _, p := range pw.pods {
		if p.DeletionTimestamp == nil {
			out = append(out, *p.DeepCopy())
		}
	}
	return out
}

// Until blocks until cond holds for the live pods, or ctx ends.
func (pw *PodWatch) Until(ctx context.Context, what string, cond func([]corev1.Pod) bool) error {
	for {
		if cond(pw.Snapshot()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-pw.changed:
		case <-pw.done:
			return fmt.Errorf("waiting for %s: watch ended: %v", what, pw.err)
		}
	}
}

// Intended (WatchDeploymentPods only) returns the most pods the ReplicaSets
// intended at any moment (see PodWatch) and the largest raw pod count. It
// first waits, up to 30s, until both watches have caught up: their view of
// the pods and ReplicaSets (each one's resourceVersion) is what fresh lists
// return. err says a watch ended early or failed, or did not catch up, so
// that the counts are incomplete.
func (pw *PodWatch) Intended() (maxIntended, maxRaw int, err error) {
	if err := pw.caughtUp(); err != nil {
		return 0, 0, err
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return replayIntended(pw.changes), pw.MaxTotal, pw.err
}

// change is one object a watch (or its first list) delivered.
type change struct {
	pod     *corev1.Pod
	rs      *appsv1.ReplicaSet
	deleted bool
}

func (c change) resourceVersion() uint64 {
	var rv string
	if c.pod != nil {
		rv = c.pod.ResourceVersion
	} else {
		rv = c.rs.ResourceVersion
	}
	n, _ := strconv.ParseUint(rv, 10, 64) // etcd's revision: one order across resources
	return n
}

// replayIntended applies changes in resourceVersion order and returns the
// largest intended sum (PodWatch.intended) after any of them.
func replayIntended(changes []change) int {
	sorted := append([]change(nil), changes...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].resourceVersion() < sorted[j].resourceVersion() })
	view := &PodWatch{pods: map[string]*corev1.Pod{}, rsSpec: map[types.UID]int32{}}
	most := 0
	for _, c := range sorted {
		switch {
		case c.pod != nil && c.deleted:
			delete(view.pods, c.pod.Name)
		case c.pod != nil:
			view.pods[c.pod.Name] = c.pod
		case c.deleted:
			delete(view.rsSpec, c.rs.UID)
		default:
			view.rsSpec[c.rs.UID] = specReplicas(c.rs)
		}
		most = max(most, view.intended())
	}
	return most
}

// caughtUp waits until the watches' view equals fresh lists of the pods
// and ReplicaSets of the selector.
func (pw *PodWatch) caughtUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var werr error
	err := CaughtUp(ctx, pw.cs, pw.ns, pw.selector, func(rss []appsv1.ReplicaSet, pods []corev1.Pod) bool {
		pw.mu.Lock()
		defer pw.mu.Unlock()
		if werr = pw.err; werr != nil {
			return true
		}
		return SameVersions(rss, pw.rsSeen, func(rs *appsv1.ReplicaSet) types.UID { return rs.UID }) &&
			SameVersions(pods, PodVersions(pw.pods), func(p *corev1.Pod) string { return p.Name })
	})
	if werr != nil {
		return werr
	}
	return err
}

// PodVersions maps each pod's name to its resourceVersion (for SameVersions).
func PodVersions(pods map[string]*corev1.Pod) map[string]string {
	out := make(map[string]string, len(pods))
	for name, p := range pods {
		out[name] = p.ResourceVersion
	}
	return out
}

// CaughtUp polls the ReplicaSets and pods of selector in ns until seen
// holds for the lists: seen compares them with what a watch of the test
// has delivered, so that a check of what the watch recorded does not read
// it before the watch's last events arrived (the write that made them
// returns first). It fails when ctx ends first.
func CaughtUp(ctx context.Context, cs kubernetes.Interface, ns, selector string, seen func([]appsv1.ReplicaSet, []corev1.Pod) bool) error {
	opts := metav1.ListOptions{LabelSelector: selector}
	tick := time.NewTicker(50 * time.Millisecond) // polling the watch's view against a list
	defer tick.Stop()
	for {
		rsl, err := cs.AppsV1().ReplicaSets(ns).List(ctx, opts)
		if err != nil {
			return err
		}
		pl, err := cs.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return err
		}
		if seen(rsl.Items, pl.Items) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the watches of %s in %s did not catch up with the cluster: %w", selector, ns, ctx.Err())
		case <-tick.C:
		}
	}
}

// SameVersions reports whether listed, keyed by key, are exactly the
// objects of seen (key: resourceVersion), each at the same resourceVersion.
func SameVersions[T any, PT interface {
	*T
	GetResourceVersion() string
}, K comparable](listed []T, seen map[K]string, key func(PT) K) bool {
	if len(listed) != len(seen) {
		return false
	}
	for i := range listed {
		o := PT(&listed[i])
		if v, ok := seen[key(o)]; !ok || v != o.GetResourceVersion() {
			return false
		}
	}
	return true
}

// EventCount is the number of pod events seen so far.
func (pw *PodWatch) EventCount() int {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.Events
}

// Extremes returns the largest total and smallest ready count seen.
func (pw *PodWatch) Extremes() (maxTotal, minReady int) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.MaxTotal, pw.MinReady
}

// Stop ends the watch.
func (pw *PodWatch) Stop() {
	pw.cancel()
	<-pw.done
	if pw.rsDone != nil {
		<-pw.rsDone
	}
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
