package testenv

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestIntendedExcludesPodsAwaitingDeletion replays the moment CI caught: the
// Deployment controller scaled the old ReplicaSet to 0 and the new one to 3
// before the ReplicaSet controller deleted the old pods, so 5 pods were live.
// The bound counts 3; a controller that over-scaled (specs summing to 5)
// still counts 5.
func TestIntendedExcludesPodsAwaitingDeletion(t *testing.T) {
	pod := func(name string, owner types.UID) *corev1.Pod {
		yes := true
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{UID: owner, Controller: &yes, Kind: "ReplicaSet", Name: string(owner)}}}}
	}
	pw := &PodWatch{pods: map[string]*corev1.Pod{}, rsSpec: map[types.UID]int32{"old": 0, "new": 3}}
	for _, p := range []*corev1.Pod{pod("o1", "old"), pod("o2", "old"), pod("n1", "new"), pod("n2", "new"), pod("n3", "new")} {
		pw.pods[p.Name] = p
	}
	pw.record()
	if pw.MaxTotal != 5 || pw.MaxIntended != 3 {
		t.Fatalf("raw %d intended %d, want 5 and 3", pw.MaxTotal, pw.MaxIntended)
	}
	pw.rsSpec["old"] = 2
	pw.record()
	if pw.MaxIntended != 5 {
		t.Fatalf("an over-scaled rollout counted %d, want 5", pw.MaxIntended)
	}
	// Pods of a ReplicaSet the watch has not seen yet count in full.
	pw = &PodWatch{pods: map[string]*corev1.Pod{"x": pod("x", "unseen"), "y": pod("y", "unseen")}, rsSpec: map[types.UID]int32{}}
	if n := pw.intended(); n != 2 {
		t.Fatalf("unseen ReplicaSet counted %d, want 2", n)
	}
	pw.rsSpec["unseen"] = 1
	if n := pw.intended(); n != 1 {
		t.Fatalf("seen ReplicaSet counted %d, want its spec 1", n)
	}
}
