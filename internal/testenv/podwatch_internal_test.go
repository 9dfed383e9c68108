package testenv

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestIntendedExcludesPodsAwaitingDeletion replays the moment CI caught: the
// Deployment controller scaled the old ReplicaSet to 0 and the new one to 3
// before the ReplicaSet controller deleted the old pods, so 5 pods were live.
// The bound counts 3; a controller that over-scaled (specs summing to 5)
// still counts 5. The changes arrive as two watches may deliver them, the
// ReplicaSet scale-down after the new pods: in etcd order it came first.
func TestIntendedExcludesPodsAwaitingDeletion(t *testing.T) {
	yes := true
	pod := func(rv, name string, owner types.UID) change {
		return change{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv,
			OwnerReferences: []metav1.OwnerReference{{UID: owner, Controller: &yes, Kind: "ReplicaSet", Name: string(owner)}}}}}
	}
	rs := func(rv string, uid types.UID, replicas int32) change {
		return change{rs: &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{UID: uid, ResourceVersion: rv}, Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}}
	}
	rollout := func(oldAfter int32) []change {
		return []change{
			rs("1", "old", 2), pod("2", "o1", "old"), pod("3", "o2", "old"),
			rs("4", "new", 3), pod("6", "n1", "new"), pod("7", "n2", "new"), pod("8", "n3", "new"),
			rs("5", "old", oldAfter), // delivered late by the ReplicaSet watch
		}
	}
	if n := replayIntended(rollout(0)); n != 3 {
		t.Fatalf("intended %d, want 3: the old ReplicaSet was at 0 before the new pods came", n)
	}
	if n := replayIntended(rollout(2)); n != 5 {
		t.Fatalf("an over-scaled rollout counted %d, want 5", n)
	}
	// Pods of a ReplicaSet the watch has not seen yet count in full.
	pw := &PodWatch{pods: map[string]*corev1.Pod{"x": pod("1", "x", "unseen").pod, "y": pod("2", "y", "unseen").pod}, rsSpec: map[types.UID]int32{}}
	if n := pw.intended(); n != 2 {
		t.Fatalf("unseen ReplicaSet counted %d, want 2", n)
	}
	pw.rsSpec["unseen"] = 1
	if n := pw.intended(); n != 1 {
		t.Fatalf("seen ReplicaSet counted %d, want its spec 1", n)
	}
}
