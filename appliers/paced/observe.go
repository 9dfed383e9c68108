package paced

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// observation is what one Reconcile read from the cluster.
type observation struct {
	Observed
	// state is the persisted state: the copy with the highest Seq.
	state State
	// rs holds the ReplicaSets by name.
	rs map[string]*appsv1.ReplicaSet
}

// Selector is the label selector of the applications (ReplicaSets) of
// BCS deployment name that the engine manages: ReplicaSets it does not
// manage are none of its applications.
func Selector(name string) string {
	return labels.Set{vocab.LabelDeployment: name, LabelManagedBy: ManagedBy}.String()
}

// observe lists the deployment's ReplicaSets and pods and reads the state.
func (e *Engine) observe(ctx context.Context, ns, name string) (*observation, error) {
	rsl, err := e.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: Selector(name)})
	if err != nil {
		return nil, fmt.Errorf("listing the ReplicaSets of BCS deployment %s/%s: %w", ns, name, err)
	}
	pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{vocab.LabelDeployment: name}.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of BCS deployment %s/%s: %w", ns, name, err)
	}
	total, ready := map[string]int32{}, map[string]int32{}
	for i := range pods.Items {
		p := &pods.Items[i]
		app := p.Labels[vocab.LabelApplication]
		total[app]++
		if p.DeletionTimestamp == nil && podReady(p) {
			ready[app]++
		}
	}
	ob := &observation{rs: map[string]*appsv1.ReplicaSet{}}
	for i := range rsl.Items {
		rs := &rsl.Items[i]
		ob.rs[rs.Name] = rs
		replicas := int32(1)
		if rs.Spec.Replicas != nil {
			replicas = *rs.Spec.Replicas
		}
		ob.Apps = append(ob.Apps, App{
			Name:         rs.Name,
			Replicas:     replicas,
			Pods:         total[rs.Name],
			Ready:        ready[rs.Name],
			TemplateHash: rs.Annotations[vocab.AnnotationTemplateHash],
			Created:      rs.CreationTimestamp.UTC(),
			Deleting:     rs.DeletionTimestamp != nil,
		})
		v, ok := rs.Annotations[AnnotationState]
		if !ok {
			continue
		}
		st, err := decodeState(v)
		if err != nil {
			return nil, fmt.Errorf("ReplicaSet %s/%s: %w", ns, rs.Name, err)
		}
		if st.Seq > ob.state.Seq {
			ob.state = st
		}
	}
	return ob, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
