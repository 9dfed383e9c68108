package appliers

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// StatefulSets and DaemonSets are rolled by their own Kubernetes controllers,
// as Deployments are; gitpace follows them as `kubectl rollout status` does
// (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go, v0.37.2: the
// messages below are its own) and freezes them while a PAUSE marker or a
// closed window holds their app. Neither kind has a paused field, so each
// freeze is a reversible spec change written by PauseFieldManager, with the
// value git had kept in an annotation on the object, so that a restarted
// agent (or `gitpace resume`) restores it exactly:
//
//   - StatefulSet: spec.updateStrategy.rollingUpdate.partition. The
//     controller updates pods from the highest ordinal down and leaves every
//     pod whose ordinal index is below the partition at status.currentRevision,
//     re-creating such a pod at the current revision too
//     (pkg/controller/statefulset: stateful_set_control.go `for target :=
//     len(replicas) - 1; target >= updateMin; target--` with updateMin =
//     partition; stateful_set_utils.go newVersionedStatefulSetPod). During a
//     rollout the updated pods are therefore the top updatedReplicas
//     ordinals, and FreezePartition = replicas − updatedReplicas holds the
//     rollout exactly where it stands: no pod is updated or rolled back. With
//     no rollout in flight (or one the controller has not observed yet) it is
//     replicas: nothing more is updated. Never lower than git's partition.
//   - DaemonSet: spec.updateStrategy.type OnDelete. The DaemonSet controller
//     then replaces no pod by itself (pkg/controller/daemon/update.go runs
//     rollingUpdate only for the RollingUpdate type); updated pods stay
//     updated, old pods stay old, and a node without its daemon pod still
//     gets one. maxUnavailable 0 cannot express a freeze (the API server
//     refuses maxUnavailable 0 with maxSurge 0), and changing the template
//     would roll pods; OnDelete is the one reversible switch that stops the
//     controller. The whole updateStrategy git had is restored on resume.

// Annotations that hold, while gitpace freezes a StatefulSet or DaemonSet,
// the value its freeze replaced (Paused*), and the partition the freeze
// wrote (FrozenPartitionAnnotation): a partition lowered by hand while the
// app is paused is raised back to it, never recomputed from the pods the
// controller updated in between, and a restarted agent reads it from the
// object.
const (
	PausedPartitionAnnotation      = "gitpace.dev/paused-partition"
	PausedUpdateStrategyAnnotation = "gitpace.dev/paused-update-strategy"
	FrozenPartitionAnnotation      = "gitpace.dev/frozen-partition"
)

// StatefulSetStatus evaluates a StatefulSet exactly as `kubectl rollout
// status` does (the API server defaults rollingUpdate.partition to 0, so
// kubectl's partitioned wording is the usual one):
//
//	not observed                       → "Waiting for statefulset spec update to be observed..."
//	readyReplicas < replicas           → "Waiting for N pods to be ready..."
//	updated < replicas − partition     → "Waiting for partitioned roll out to finish: U out of R−P new pods have been updated..."
//	otherwise                          → "partitioned roll out complete: U new pods have been updated..."
//
// A StatefulSet gitpace froze is judged against the partition git gave it
// (PausedPartitionAnnotation) and is Paused while not complete. OnDelete
// StatefulSets are Complete (the controller replaces no pod; kstatus says
// the same). A rollout cannot fail by its status alone: see RolloutPodFailure.
func StatefulSetStatus(u *unstructured.Unstructured) (DeploymentRollout, error) {
	var s appsv1.StatefulSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
		return DeploymentRollout{}, fmt.Errorf("StatefulSet %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return statefulSetStatus(&s), nil
}

// TypedStatefulSetStatus is StatefulSetStatus for a typed StatefulSet.
func TypedStatefulSetStatus(s *appsv1.StatefulSet) DeploymentRollout { return statefulSetStatus(s) }

func statefulSetStatus(s *appsv1.StatefulSet) DeploymentRollout {
	replicas := int32(1)
	if s.Spec.Replicas != nil {
		replicas = *s.Spec.Replicas
	}
	st := s.Status
	r := DeploymentRollout{Kind: "StatefulSet", Namespace: s.Namespace, Name: s.Name, Desired: replicas,
		Current: st.Replicas, UpToDate: st.UpdatedReplicas, Available: st.AvailableReplicas,
		Revision: st.UpdateRevision, Generation: s.Generation}
	partition, frozen := int32(0), false
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		partition = *ru.Partition
	}
	if v, ok := s.Annotations[PausedPartitionAnnotation]; ok {
		if p, err := strconv.ParseInt(v, 10, 32); err == nil {
			partition, frozen = int32(p), true
		}
	}
	r.Paused = frozen
	switch {
	case s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType:
		r.State, r.Message = RolloutComplete, fmt.Sprintf("statefulset %q uses the OnDelete update strategy: pods are updated when deleted", s.Name)
	case st.ObservedGeneration == 0 || s.Generation > st.ObservedGeneration:
		r.State, r.Message = RolloutProgressing, "Waiting for statefulset spec update to be observed..."
	case st.ReadyReplicas < replicas:
		r.State, r.Message = RolloutProgressing, fmt.Sprintf("Waiting for %d pods to be ready...", replicas-st.ReadyReplicas)
	case st.UpdatedReplicas < replicas-partition:
		r.State, r.Message = RolloutProgressing, fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...", st.UpdatedReplicas, replicas-partition)
	default:
		r.State, r.Message = RolloutComplete, fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...", st.UpdatedReplicas)
	}
	if frozen && r.State == RolloutProgressing {
		r.State = RolloutPaused
		r.Message += " (paused)"
	}
	return r
}

// DaemonSetStatus evaluates a DaemonSet exactly as `kubectl rollout status`
// does:
//
//	not observed                   → "Waiting for daemon set spec update to be observed..."
//	updated < desired              → "Waiting for daemon set "N" rollout to finish: U out of D new pods have been updated..."
//	available < desired            → "Waiting for daemon set "N" rollout to finish: A of D updated pods are available..."
//	otherwise                      → "daemon set "N" successfully rolled out"
//
// A DaemonSet gitpace froze (PausedUpdateStrategyAnnotation) is Paused while
// not complete; one that git gave the OnDelete strategy is Complete.
func DaemonSetStatus(u *unstructured.Unstructured) (DeploymentRollout, error) {
	var d appsv1.DaemonSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
		return DeploymentRollout{}, fmt.Errorf("DaemonSet %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return daemonSetStatus(&d), nil
}

// TypedDaemonSetStatus is DaemonSetStatus for a typed DaemonSet.
func TypedDaemonSetStatus(d *appsv1.DaemonSet) DeploymentRollout { return daemonSetStatus(d) }

func daemonSetStatus(d *appsv1.DaemonSet) DeploymentRollout {
	st := d.Status
	_, frozen := d.Annotations[PausedUpdateStrategyAnnotation]
	r := DeploymentRollout{Kind: "DaemonSet", Namespace: d.Namespace, Name: d.Name, Desired: st.DesiredNumberScheduled,
		Current: st.CurrentNumberScheduled, UpToDate: st.UpdatedNumberScheduled, Available: st.NumberAvailable,
		Paused: frozen, Generation: d.Generation}
	switch {
	case d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType && !frozen:
		r.State, r.Message = RolloutComplete, fmt.Sprintf("daemon set %q uses the OnDelete update strategy: pods are updated when deleted", d.Name)
	case d.Generation > st.ObservedGeneration:
		r.State, r.Message = RolloutProgressing, "Waiting for daemon set spec update to be observed..."
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		r.State, r.Message = RolloutProgressing, fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...", d.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < st.DesiredNumberScheduled:
		r.State, r.Message = RolloutProgressing, fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...", d.Name, st.NumberAvailable, st.DesiredNumberScheduled)
	default:
		r.State, r.Message = RolloutComplete, fmt.Sprintf("daemon set %q successfully rolled out", d.Name)
	}
	if frozen && r.State == RolloutProgressing {
		r.State = RolloutPaused
		r.Message += " (paused)"
	}
	return r
}

// WorkloadStatus is the rollout of a Deployment, StatefulSet or DaemonSet
// (group apps); ok is false for any other kind.
func WorkloadStatus(u *unstructured.Unstructured) (r DeploymentRollout, ok bool, err error) {
	if u.GroupVersionKind().Group != "apps" {
		return r, false, nil
	}
	switch u.GetKind() {
	case "Deployment":
		r, err = DeploymentStatus(u)
	case "StatefulSet":
		r, err = StatefulSetStatus(u)
	case "DaemonSet":
		r, err = DaemonSetStatus(u)
	default:
		return r, false, nil
	}
	return r, true, err
}

// FreezePartition is the partition that holds a StatefulSet's rollout where
// it stands (see the comment at the top of this file): replicas −
// updatedReplicas while a rollout the controller observed is in flight
// (currentRevision ≠ updateRevision), else replicas; never below gitPartition.
//
//	replicas 3, updated 1 (ordinal 2 done), in flight → 2: ordinals 0, 1 stay old
//	replicas 3, updated 3, current = update revision   → 3: nothing more rolls
//	replicas 3, generation not observed yet            → 3: the new template rolls nowhere
//	replicas 3, updated 0, git partition 2             → 3 (then 2 again on resume)
func FreezePartition(s *appsv1.StatefulSet, gitPartition int32) int32 {
	replicas := int32(1)
	if s.Spec.Replicas != nil {
		replicas = *s.Spec.Replicas
	}
	p := replicas
	st := s.Status
	if st.ObservedGeneration >= s.Generation && st.ObservedGeneration > 0 && st.CurrentRevision != st.UpdateRevision {
		p = max(replicas-st.UpdatedReplicas, 0)
	}
	return max(p, gitPartition)
}

// FreezeWorkload freezes the rollout of a StatefulSet or DaemonSet (see the
// top of this file) with one merge patch by PauseFieldManager, recording
// what it replaced in an annotation; a workload already frozen keeps the
// recorded value (a StatefulSet's partition goes back to the one the freeze
// wrote, FrozenPartitionAnnotation; recomputed only for a freeze written
// before that annotation existed). It returns the
// generation after the patch, and refrozen: for a workload that was frozen
// already and whose freeze someone undid by hand (a partition lowered, an
// updateStrategy switched back), what it found and restored, e.g.
// "partition 0, frozen again at 2"; "" otherwise. 0 and no error when the
// object is missing or is not a StatefulSet or DaemonSet.
func (a *Applier) FreezeWorkload(ctx context.Context, ref ObjectRef) (gen int64, refrozen string, err error) {
	return a.patchWorkload(ctx, ref, true)
}

// UnfreezeWorkload undoes FreezeWorkload: the StatefulSet's partition or the
// DaemonSet's updateStrategy git had is written back and the annotation
// removed. A workload that is not frozen is left alone.
func (a *Applier) UnfreezeWorkload(ctx context.Context, ref ObjectRef) (int64, error) {
	gen, _, err := a.patchWorkload(ctx, ref, false)
	return gen, err
}

func (a *Applier) patchWorkload(ctx context.Context, ref ObjectRef, freeze bool) (int64, string, error) {
	if ref.Group != "apps" || (ref.Kind != "StatefulSet" && ref.Kind != "DaemonSet") {
		return 0, "", nil
	}
	u, err := a.Get(ctx, ref)
	if err != nil {
		return 0, "", &ObjectError{Ref: ref, Err: err}
	}
	if u == nil {
		return 0, "", nil
	}
	var body []byte
	var refrozen string
	if ref.Kind == "StatefulSet" {
		body, refrozen, err = statefulSetFreezePatch(u, freeze)
	} else {
		body, refrozen, err = daemonSetFreezePatch(u, freeze)
	}
	if err != nil || body == nil {
		if err != nil {
			err = &ObjectError{Ref: ref, Err: err}
		}
		return u.GetGeneration(), "", err
	}
	ri, _, err := a.resource(ref)
	if err != nil {
		return 0, "", err
	}
	out, err := ri.Patch(ctx, ref.Name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: PauseFieldManager})
	if apierrors.IsNotFound(err) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", &ObjectError{Ref: ref, Err: err}
	}
	return out.GetGeneration(), refrozen, nil
}

// statefulSetFreezePatch is the merge patch that freezes (or unfreezes) s,
// nil when there is nothing to write, and what a freeze undone by hand
// becomes (see FreezeWorkload).
func statefulSetFreezePatch(u *unstructured.Unstructured, freeze bool) ([]byte, string, error) {
	var s appsv1.StatefulSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
		return nil, "", err
	}
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return nil, "", nil // the controller rolls nothing by itself
	}
	live := int32(0)
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		live = *ru.Partition
	}
	saved, frozen := s.Annotations[PausedPartitionAnnotation]
	git := live
	if frozen {
		p, err := strconv.ParseInt(saved, 10, 32)
		if err != nil {
			return nil, "", fmt.Errorf("annotation %s: %q is not a partition", PausedPartitionAnnotation, saved)
		}
		git = int32(p)
	}
	held := int32(-1) // the partition the freeze wrote; -1 before gitpace recorded it
	if rec, ok := s.Annotations[FrozenPartitionAnnotation]; ok && frozen {
		p, err := strconv.ParseInt(rec, 10, 32)
		if err != nil {
			return nil, "", fmt.Errorf("annotation %s: %q is not a partition", FrozenPartitionAnnotation, rec)
		}
		held = int32(p)
	}
	var patch map[string]any
	refrozen := ""
	switch {
	case freeze:
		p := FreezePartition(&s, git)
		if held >= 0 {
			// Frozen already: what the freeze wrote, not recomputed from
			// the pods a hand unfreeze let the controller update, nor
			// replicas while the controller has not observed that patch.
			p = max(held, git)
		}
		if frozen && p == live && held == p {
			return nil, "", nil
		}
		if frozen && live < p {
			refrozen = fmt.Sprintf("partition %d, frozen again at %d", live, p)
		}
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{PausedPartitionAnnotation: strconv.Itoa(int(git)), FrozenPartitionAnnotation: strconv.Itoa(int(p))}},
			"spec":     map[string]any{"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"partition": p}}},
		}
	case !frozen:
		return nil, "", nil
	default:
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{PausedPartitionAnnotation: nil, FrozenPartitionAnnotation: nil}},
			"spec":     map[string]any{"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"partition": git}}},
		}
	}
	b, err := json.Marshal(patch)
	return b, refrozen, err
}

// daemonSetFreezePatch is the merge patch that freezes (or unfreezes) d,
// nil when there is nothing to write, and what a freeze undone by hand
// becomes (see FreezeWorkload).
func daemonSetFreezePatch(u *unstructured.Unstructured, freeze bool) ([]byte, string, error) {
	saved, frozen := u.GetAnnotations()[PausedUpdateStrategyAnnotation]
	var patch map[string]any
	switch {
	case freeze && frozen:
		t, _, _ := unstructured.NestedString(u.Object, "spec", "updateStrategy", "type")
		if t == string(appsv1.OnDeleteDaemonSetStrategyType) {
			return nil, "", nil
		}
		patch = map[string]any{"spec": map[string]any{"updateStrategy": map[string]any{"type": "OnDelete", "rollingUpdate": nil}}}
		b, err := json.Marshal(patch)
		return b, fmt.Sprintf("updateStrategy %s, frozen again as OnDelete", t), err
	case freeze:
		strategy, found, _ := unstructured.NestedMap(u.Object, "spec", "updateStrategy")
		if !found || strategy["type"] == string(appsv1.OnDeleteDaemonSetStrategyType) {
			return nil, "", nil // git chose OnDelete: nothing rolls by itself
		}
		b, err := json.Marshal(strategy)
		if err != nil {
			return nil, "", err
		}
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{PausedUpdateStrategyAnnotation: string(b)}},
			"spec":     map[string]any{"updateStrategy": map[string]any{"type": "OnDelete", "rollingUpdate": nil}},
		}
	case !frozen:
		return nil, "", nil
	default:
		var strategy map[string]any
		if err := json.Unmarshal([]byte(saved), &strategy); err != nil {
			return nil, "", fmt.Errorf("annotation %s: %q is not an updateStrategy: %w", PausedUpdateStrategyAnnotation, saved, err)
		}
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{PausedUpdateStrategyAnnotation: nil}},
			"spec":     map[string]any{"updateStrategy": strategy},
		}
	}
	b, err := json.Marshal(patch)
	return b, "", err
}

// PodFailure is a pod of a rollout's new revision in a state that does not
// end by itself.
type PodFailure struct {
	Name   string
	Reason string
}

// stuckWaitingReasons are container waiting reasons the kubelet keeps
// retrying without success unless the pod spec changes.
var stuckWaitingReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// UnschedulableAfter is how long a pod may stay unschedulable before it
// fails a rollout: kstatus's ScheduleWindow (sigs.k8s.io/cli-utils
// pkg/kstatus/status core.go: 15 s).
const UnschedulableAfter = 15 * time.Second

// RolloutPodFailure is the failure signal of a StatefulSet or DaemonSet
// rollout, whose controllers set no failure condition and have no progress
// deadline: the pods of its new revision (isNew) that cannot become Ready
// without a change in git. A pod fails when a container waits for a reason
// in stuckWaitingReasons (CrashLoopBackOff, ImagePullBackOff, ...), when it
// has Failed, or when the scheduler has found no node for it for
// UnschedulableAfter (kstatus's rules for a Pod, plus image errors). The
// rollout would wait for such a pod forever: the StatefulSet controller
// never moves past a pod that is not Ready (OrderedReady), the DaemonSet
// controller never exceeds maxUnavailable. Sorted by name.
func RolloutPodFailure(pods []corev1.Pod, isNew func(*corev1.Pod) bool, now time.Time) []PodFailure {
	var out []PodFailure
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || !isNew(p) {
			continue
		}
		if why := podStuck(p, now); why != "" {
			out = append(out, PodFailure{Name: p.Name, Reason: why})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func podStuck(p *corev1.Pod, now time.Time) string {
	if p.Status.Phase == corev1.PodFailed {
		return "Failed: " + strings.TrimSpace(p.Status.Reason+" "+p.Status.Message)
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && stuckWaitingReasons[w.Reason] {
			return fmt.Sprintf("container %s: %s", cs.Name, strings.TrimSpace(w.Reason+" "+w.Message))
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
			now.Sub(p.CreationTimestamp.Time) >= UnschedulableAfter {
			return "Unschedulable: " + c.Message
		}
	}
	return ""
}

// daemonSetTemplateGenerationLabel is the label the DaemonSet controller
// puts on its pods (k8s.io/kubernetes pkg/apis/apps DaemonSetTemplateGenerationKey).
const daemonSetTemplateGenerationLabel = "pod-template-generation"

// NewRevisionPod says which pods belong to the revision a StatefulSet or
// DaemonSet is rolling out: for a StatefulSet, label controller-revision-hash
// equal to status.updateRevision; for a DaemonSet, label
// pod-template-generation equal to its annotation
// deprecated.daemonset.template.generation (both set by their controllers).
func NewRevisionPod(u *unstructured.Unstructured) func(*corev1.Pod) bool {
	switch u.GetKind() {
	case "StatefulSet":
		rev, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
		return func(p *corev1.Pod) bool { return rev != "" && p.Labels[appsv1.ControllerRevisionHashLabelKey] == rev }
	case "DaemonSet":
		gen := u.GetAnnotations()[appsv1.DeprecatedTemplateGeneration]
		return func(p *corev1.Pod) bool { return gen != "" && p.Labels[daemonSetTemplateGenerationLabel] == gen }
	}
	return func(*corev1.Pod) bool { return false }
}
