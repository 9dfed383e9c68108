package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"

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
// selector and records MaxIntended: after every event, the sum over
// ReplicaSets of min(live pods, spec.replicas). That is the number the
// Deployment controller bounds by replicas+maxSurge. The raw pod count can
// exceed it for a moment when the ReplicaSet controller has not yet deleted a
// pod of a ReplicaSet already scaled down; Kubernetes documents this ("you
// might notice that there are more Pods than expected during a rollout").
// The pod watch lagging only lowers the sum (a new pod exists only after its
// ReplicaSet grew, and that only after the old one shrank); pods of a
// ReplicaSet the other watch has not seen yet count in full.
type PodWatch struct {
	mu           sync.Mutex
	pods         map[string]*corev1.Pod
	rsSpec       map[types.UID]int32 // nil unless ReplicaSets are watched
	MaxTotal     int
	MaxIntended  int
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
// selector, for MaxIntended.
func WatchDeploymentPods(t testing.TB, cs kubernetes.Interface, ns, selector string) *PodWatch {
	t.Helper()
	return watchPods(t, cs, ns, selector, true)
}

func watchPods(t testing.TB, cs kubernetes.Interface, ns, selector string, withRS bool) *PodWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pw := &PodWatch{pods: map[string]*corev1.Pod{}, changed: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
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
		pw.rsSpec = map[types.UID]int32{}
		for _, rs := range rsList.Items {
			pw.rsSpec[rs.UID] = specReplicas(&rs)
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
		pw.Events++
	})
}

func (pw *PodWatch) rsLoop(ctx context.Context, w watch.Interface) {
	defer close(pw.rsDone)
	drain(pw, w, func(rs *appsv1.ReplicaSet, deleted bool) {
		if deleted {
			delete(pw.rsSpec, rs.UID)
		} else {
			pw.rsSpec[rs.UID] = specReplicas(rs)
		}
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

// record updates the extremes; callers hold mu.
func (pw *PodWatch) record() {
	total, ready := pw.counts()
	if total > pw.MaxTotal {
		pw.MaxTotal = total
	}
	if pw.rsSpec != nil {
		if n := pw.intended(); n > pw.MaxIntended {
			pw.MaxIntended = n
		}
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

// Intended returns MaxIntended (WatchDeploymentPods only) and the largest raw
// pod count; err says a watch ended early or failed, so that the counts
// are incomplete.
func (pw *PodWatch) Intended() (maxIntended, maxRaw int, err error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.MaxIntended, pw.MaxTotal, pw.err
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
