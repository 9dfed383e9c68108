package paced

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// Labels and annotations the engine puts on every ReplicaSet it creates,
// besides the BCS ones (package sources/bcs/vocab: vocab.LabelDeployment,
// vocab.LabelApplication, vocab.AnnotationTemplateHash).
const (
	// LabelManagedBy is set to ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is gitpace's value of LabelManagedBy.
	ManagedBy = "gitpace"
	// AnnotationRevision holds the git revision the application was created from.
	AnnotationRevision = "paced.gitpace.dev/revision"
	// AnnotationState holds the rollout State as JSON (see package doc).
	AnnotationState = "paced.gitpace.dev/state"
	// FieldManager is the field manager of every write.
	FieldManager = "gitpace"
)

// application builds application app of spec from its template: named,
// namespaced, labelled, with replicas pods and the given state annotation.
func application(spec Spec, app string, replicas int32, st State) *appsv1.ReplicaSet {
	rs := spec.Template.DeepCopy()
	rs.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}
	rs.ObjectMeta = metav1.ObjectMeta{
		Name:        app,
		Namespace:   spec.Namespace,
		Labels:      setLabels(spec.Template.Labels, spec.Name, app),
		Annotations: map[string]string{},
	}
	for k, v := range spec.Template.Annotations {
		rs.Annotations[k] = v
	}
	rs.Annotations[vocab.AnnotationTemplateHash] = spec.TemplateHash
	rs.Annotations[AnnotationRevision] = spec.Revision
	rs.Annotations[AnnotationState] = encodeState(st)
	rs.Spec.Replicas = &replicas
	if rs.Spec.Selector == nil {
		rs.Spec.Selector = &metav1.LabelSelector{}
	}
	sel := rs.Spec.Selector
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[vocab.LabelDeployment] = spec.Name
	sel.MatchLabels[vocab.LabelApplication] = app
	rs.Spec.Template.Labels = setLabels(rs.Spec.Template.Labels, spec.Name, app)
	renameInPodSpec(&rs.Spec.Template.Spec, app)
	rs.Status = appsv1.ReplicaSetStatus{}
	return rs
}

func setLabels(l map[string]string, deployment, app string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		out[k] = v
	}
	out[vocab.LabelDeployment] = deployment
	out[vocab.LabelApplication] = app
	out[LabelManagedBy] = ManagedBy
	return out
}

// renameInPodSpec points every label selector of the pod spec that selects
// on LabelApplication (e.g. a topology spread over the pods of the same
// application) at app.
func renameInPodSpec(ps *corev1.PodSpec, app string) {
	if a := ps.Affinity; a != nil {
		if a.PodAffinity != nil {
			renameInTerms(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution, app)
		}
		if a.PodAntiAffinity != nil {
			renameInTerms(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, app)
		}
	}
	for i := range ps.TopologySpreadConstraints {
		renameInSelector(ps.TopologySpreadConstraints[i].LabelSelector, app)
	}
}

func renameInTerms(req []corev1.PodAffinityTerm, pref []corev1.WeightedPodAffinityTerm, app string) {
	for i := range req {
		renameInSelector(req[i].LabelSelector, app)
	}
	for i := range pref {
		renameInSelector(pref[i].PodAffinityTerm.LabelSelector, app)
	}
}

func renameInSelector(s *metav1.LabelSelector, app string) {
	if s == nil {
		return
	}
	if _, ok := s.MatchLabels[vocab.LabelApplication]; ok {
		s.MatchLabels[vocab.LabelApplication] = app
	}
	for i := range s.MatchExpressions {
		e := &s.MatchExpressions[i]
		if e.Key == vocab.LabelApplication && e.Operator == metav1.LabelSelectorOpIn {
			e.Values = []string{app}
		}
	}
}
