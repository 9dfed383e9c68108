package appliers

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func ptr[T any](v T) *T { return &v }

// sts is a StatefulSet "db" of replicas pods with a partition (nil: none),
// generation gen observed at observed, ready/updated pods, and current and
// update revisions.
func sts(replicas int32, partition *int32, gen, observed int64, ready, updated int32, cur, upd string) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", Generation: gen},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas, UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
			Type: appsv1.RollingUpdateStatefulSetStrategyType}},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: observed, Replicas: replicas, ReadyReplicas: ready,
			UpdatedReplicas: updated, CurrentRevision: cur, UpdateRevision: upd},
	}
	if partition != nil {
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: partition}
	}
	return s
}

func TestStatefulSetStatusMessages(t *testing.T) {
	frozen := sts(3, ptr(int32(2)), 2, 2, 3, 1, "db-a", "db-b")
	frozen.Annotations = map[string]string{PausedPartitionAnnotation: "0"}
	onDelete := sts(3, nil, 2, 2, 3, 0, "db-a", "db-b")
	onDelete.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
	for _, tc := range []struct {
		name  string
		s     *appsv1.StatefulSet
		state RolloutState
		msg   string
	}{
		{"not observed", sts(3, ptr(int32(0)), 2, 1, 3, 3, "db-a", "db-a"), RolloutProgressing, "Waiting for statefulset spec update to be observed..."},
		{"never observed", sts(3, ptr(int32(0)), 1, 0, 0, 0, "", ""), RolloutProgressing, "Waiting for statefulset spec update to be observed..."},
		{"ordinal 2 being replaced: 3-2=1 not ready", sts(3, ptr(int32(0)), 2, 2, 2, 0, "db-a", "db-b"), RolloutProgressing, "Waiting for 1 pods to be ready..."},
		{"1 of 3-0 updated", sts(3, ptr(int32(0)), 2, 2, 3, 1, "db-a", "db-b"), RolloutProgressing, "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated..."},
		{"git partition 2: 1 of 3-2 updated is complete", sts(3, ptr(int32(2)), 2, 2, 3, 1, "db-a", "db-b"), RolloutComplete, "partitioned roll out complete: 1 new pods have been updated..."},
		{"done", sts(3, ptr(int32(0)), 2, 2, 3, 3, "db-b", "db-b"), RolloutComplete, "partitioned roll out complete: 3 new pods have been updated..."},
		{"frozen at partition 2, git's 0: 1 of 3 (paused)", frozen, RolloutPaused, "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated... (paused)"},
		{"OnDelete", onDelete, RolloutComplete, `statefulset "db" uses the OnDelete update strategy: pods are updated when deleted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := statefulSetStatus(tc.s)
			if got.State != tc.state || got.Message != tc.msg {
				t.Errorf("got %s %q, want %s %q", got.State, got.Message, tc.state, tc.msg)
			}
		})
	}
}

func ds(gen, observed int64, desired, updated, available int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", Generation: gen},
		Spec:       appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired, CurrentNumberScheduled: desired,
			UpdatedNumberScheduled: updated, NumberAvailable: available},
	}
}

func TestDaemonSetStatusMessages(t *testing.T) {
	frozen := ds(2, 2, 3, 1, 3)
	frozen.Annotations = map[string]string{PausedUpdateStrategyAnnotation: `{"type":"RollingUpdate"}`}
	frozen.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	onDelete := ds(2, 2, 3, 1, 3)
	onDelete.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	for _, tc := range []struct {
		name  string
		d     *appsv1.DaemonSet
		state RolloutState
		msg   string
	}{
		{"not observed", ds(2, 1, 3, 3, 3), RolloutProgressing, "Waiting for daemon set spec update to be observed..."},
		{"1 of 3 updated", ds(2, 2, 3, 1, 2), RolloutProgressing, `Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...`},
		{"3 updated, 2 available", ds(2, 2, 3, 3, 2), RolloutProgressing, `Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...`},
		{"done", ds(2, 2, 3, 3, 3), RolloutComplete, `daemon set "agent" successfully rolled out`},
		{"frozen by gitpace (OnDelete, annotated)", frozen, RolloutPaused, `Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated... (paused)`},
		{"OnDelete in git", onDelete, RolloutComplete, `daemon set "agent" uses the OnDelete update strategy: pods are updated when deleted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := daemonSetStatus(tc.d)
			if got.State != tc.state || got.Message != tc.msg {
				t.Errorf("got %s %q, want %s %q", got.State, got.Message, tc.state, tc.msg)
			}
		})
	}
}

func TestFreezePartition(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *appsv1.StatefulSet
		git  int32
		want int32
	}{
		{"in flight: replicas 3 - updated 1 = 2", sts(3, ptr(int32(0)), 2, 2, 3, 1, "a", "b"), 0, 2},
		{"in flight, ordinal 1 being replaced: 3 - updated 1 = 2 (it comes back old)", sts(3, ptr(int32(0)), 2, 2, 2, 1, "a", "b"), 0, 2},
		{"in flight, none updated yet: 3 - 0 = 3", sts(3, ptr(int32(0)), 2, 2, 3, 0, "a", "b"), 0, 3},
		{"complete: replicas 3", sts(3, ptr(int32(0)), 2, 2, 3, 3, "b", "b"), 0, 3},
		{"not observed yet: replicas 3", sts(3, ptr(int32(0)), 3, 2, 3, 3, "b", "b"), 0, 3},
		{"git partition 2 above 3 - 2 = 1: 2", sts(3, ptr(int32(2)), 2, 2, 3, 2, "a", "b"), 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FreezePartition(tc.s, tc.git); got != tc.want {
				t.Errorf("FreezePartition = %d, want %d", got, tc.want)
			}
		})
	}
}

func toUnstructured(t *testing.T, o runtime.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestFreezePatches(t *testing.T) {
	frozenSTS := sts(3, ptr(int32(2)), 2, 2, 3, 1, "a", "b")
	frozenSTS.Annotations = map[string]string{PausedPartitionAnnotation: "0", FrozenPartitionAnnotation: "2"}
	// kubectl patch partition 0 while paused; the controller has updated
	// one more pod since (3 - 2 = 1 would let it keep it): back to 2.
	unfrozenSTS := sts(3, ptr(int32(0)), 3, 3, 3, 2, "a", "b")
	unfrozenSTS.Annotations = map[string]string{PausedPartitionAnnotation: "0", FrozenPartitionAnnotation: "2"}
	// The same before the controller observed the hand patch: 2, not
	// replicas.
	unobservedSTS := sts(3, ptr(int32(0)), 4, 3, 3, 1, "a", "b")
	unobservedSTS.Annotations = unfrozenSTS.Annotations
	legacySTS := sts(3, ptr(int32(2)), 2, 2, 3, 1, "a", "b") // frozen before the frozen partition was recorded
	legacySTS.Annotations = map[string]string{PausedPartitionAnnotation: "0"}
	rolling := ds(2, 2, 3, 1, 3)
	rolling.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: nil}
	frozenDS := ds(2, 2, 3, 1, 3)
	frozenDS.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	frozenDS.Annotations = map[string]string{PausedUpdateStrategyAnnotation: `{"rollingUpdate":{"maxSurge":0,"maxUnavailable":1},"type":"RollingUpdate"}`}
	unfrozenDS := ds(3, 3, 3, 1, 3) // kubectl patch back to RollingUpdate while paused
	unfrozenDS.Annotations = frozenDS.Annotations
	for _, tc := range []struct {
		name   string
		obj    runtime.Object
		freeze bool
		want   string // "" = no patch
		again  string // refrozen: a freeze undone by hand
	}{
		{"freeze sts mid-rollout: partition 2, git's 0 kept", sts(3, ptr(int32(0)), 2, 2, 3, 1, "a", "b"), true,
			`{"metadata":{"annotations":{"gitpace.dev/paused-partition":"0","gitpace.dev/frozen-partition":"2"}},"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}`, ""},
		{"freeze sts again: nothing to write", frozenSTS, true, "", ""},
		{"freeze sts lowered by hand: the recorded 2 back", unfrozenSTS, true,
			`{"metadata":{"annotations":{"gitpace.dev/paused-partition":"0","gitpace.dev/frozen-partition":"2"}},"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}`,
			"partition 0, frozen again at 2"},
		{"freeze sts lowered by hand, not observed yet: the recorded 2 back", unobservedSTS, true,
			`{"metadata":{"annotations":{"gitpace.dev/paused-partition":"0","gitpace.dev/frozen-partition":"2"}},"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}`,
			"partition 0, frozen again at 2"},
		{"freeze sts frozen before the record: recorded", legacySTS, true,
			`{"metadata":{"annotations":{"gitpace.dev/paused-partition":"0","gitpace.dev/frozen-partition":"2"}},"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}`, ""},
		{"unfreeze sts: git's 0 back, annotations gone", frozenSTS, false,
			`{"metadata":{"annotations":{"gitpace.dev/paused-partition":null,"gitpace.dev/frozen-partition":null}},"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`, ""},
		{"unfreeze a sts never frozen: nothing", sts(3, ptr(int32(0)), 2, 2, 3, 1, "a", "b"), false, "", ""},
		{"freeze ds: OnDelete, strategy kept", rolling, true,
			`{"metadata":{"annotations":{"gitpace.dev/paused-update-strategy":"{\"rollingUpdate\":{},\"type\":\"RollingUpdate\"}"}},"spec":{"updateStrategy":{"rollingUpdate":null,"type":"OnDelete"}}}`, ""},
		{"freeze ds again: nothing", frozenDS, true, "", ""},
		{"freeze ds switched back by hand: OnDelete again", unfrozenDS, true,
			`{"spec":{"updateStrategy":{"rollingUpdate":null,"type":"OnDelete"}}}`, "updateStrategy RollingUpdate, frozen again as OnDelete"},
		{"unfreeze ds: git's strategy back", frozenDS, false,
			`{"metadata":{"annotations":{"gitpace.dev/paused-update-strategy":null}},"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":1},"type":"RollingUpdate"}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := toUnstructured(t, tc.obj)
			var got []byte
			var again string
			var err error
			if _, isSTS := tc.obj.(*appsv1.StatefulSet); isSTS {
				got, again, err = statefulSetFreezePatch(u, tc.freeze)
			} else {
				got, again, err = daemonSetFreezePatch(u, tc.freeze)
			}
			if err != nil {
				t.Fatal(err)
			}
			if again != tc.again {
				t.Errorf("refrozen %q, want %q", again, tc.again)
			}
			if tc.want == "" {
				if got != nil {
					t.Fatalf("patch %s, want none", got)
				}
				return
			}
			var g, w any
			_ = json.Unmarshal(got, &g)
			_ = json.Unmarshal([]byte(tc.want), &w)
			if d := cmp.Diff(w, g); d != "" {
				t.Errorf("patch (-want +got):\n%s", d)
			}
		})
	}
}

func TestRolloutPodFailure(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	pod := func(name, rev string, age time.Duration, mut func(*corev1.Pod)) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"controller-revision-hash": rev},
			CreationTimestamp: metav1.NewTime(now.Add(-age))}}
		if mut != nil {
			mut(&p)
		}
		return p
	}
	waiting := func(reason string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "back-off"}}}}
		}
	}
	unschedulable := func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"}}
	}
	pods := []corev1.Pod{
		pod("db-2", "new", time.Minute, waiting("CrashLoopBackOff")),
		pod("db-1", "new", 10*time.Second, unschedulable),            // within kstatus's 15 s window
		pod("db-0", "old", time.Minute, waiting("ImagePullBackOff")), // not of the new revision
		pod("db-3", "new", 20*time.Second, unschedulable),
		pod("db-4", "new", time.Minute, waiting("ContainerCreating")),
	}
	u := toUnstructured(t, sts(5, ptr(int32(0)), 2, 2, 2, 3, "old", "new"))
	u.SetKind("StatefulSet")
	got := RolloutPodFailure(pods, NewRevisionPod(u), now)
	want := []PodFailure{
		{Name: "db-2", Reason: "container app: CrashLoopBackOff back-off"},
		{Name: "db-3", Reason: "Unschedulable: 0/3 nodes are available"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RolloutPodFailure (-want +got):\n%s", d)
	}
}
