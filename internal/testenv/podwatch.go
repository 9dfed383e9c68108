package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// PodWatch follows the pods matching a label selector from a consistent list
// onwards and records, after every event, how many exist (not terminating) and
// how many are Ready: the two numbers a rolling update bounds.
type PodWatch struct {
	mu           sync.Mutex
	pods         map[string]*corev1.Pod
	MaxTotal     int
	MinReady     int
	Events       int
	changed      chan struct{}
	cancel       context.CancelFunc
	done         chan struct{}
	err          error
	startedReady bool
}

// WatchPods starts a PodWatch in namespace ns; it stops when the test ends.
func WatchPods(t testing.TB, cs kubernetes.Interface, ns, selector string) *PodWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
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
	pw := &PodWatch{pods: map[string]*corev1.Pod{}, changed: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	for i := range list.Items {
		pw.pods[list.Items[i].Name] = &list.Items[i]
	}
	pw.record()
	go pw.loop(w)
	t.Cleanup(pw.Stop)
	return pw
}

func (pw *PodWatch) loop(w watch.Interface) {
	defer close(pw.done)
	defer w.Stop()
	for ev := range w.ResultChan() {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok {
			if ev.Type == watch.Error {
				pw.mu.Lock()
				pw.err = fmt.Errorf("watch error: %v", ev.Object)
				pw.mu.Unlock()
			}
			continue
		}
		pw.mu.Lock()
		if ev.Type == watch.Deleted {
			delete(pw.pods, pod.Name)
		} else {
			pw.pods[pod.Name] = pod
		}
		pw.Events++
		pw.record()
		pw.mu.Unlock()
		select {
		case pw.changed <- struct{}{}:
		default:
		}
	}
}

// record updates the extremes; callers hold mu (or own pw exclusively).
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
