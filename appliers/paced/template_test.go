package paced

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// TestApplication: the engine names a template for an application: name,
// namespace, replicas, labels, selector and every pod label selector on the
// application label follow the application; the deployment-wide UNIQUE
// anti-affinity is left alone.
func TestApplication(t *testing.T) {
	spec := testSpec(2, 1, 1, vocab.OrderCreateFirst, hashV1)
	spec.Template.Annotations = map[string]string{"owner": "team-a", vocab.AnnotationTemplateHash: "stale"}
	ps := &spec.Template.Spec.Template.Spec
	ps.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{vocab.LabelDeployment: "test"}},
			TopologyKey:   "kubernetes.io/hostname",
		}},
	}}
	ps.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{
			MatchLabels:      map[string]string{vocab.LabelDeployment: "test", vocab.LabelApplication: "test"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: vocab.LabelApplication, Operator: metav1.LabelSelectorOpIn, Values: []string{"test"}}},
		},
	}}
	st := State{Seq: 3, Phase: PhaseIdle, Base: "test", New: newApp}

	rs := application(spec, newApp, 0, st)

	own := map[string]string{"appname": "test", vocab.LabelDeployment: "test", vocab.LabelApplication: newApp, LabelManagedBy: ManagedBy}
	if rs.Name != newApp || rs.Namespace != "defaultgroup" || *rs.Spec.Replicas != 0 || rs.Kind != "ReplicaSet" || rs.APIVersion != "apps/v1" {
		t.Errorf("identity: %s %s/%s replicas %d", rs.Kind, rs.Namespace, rs.Name, *rs.Spec.Replicas)
	}
	if diff := cmp.Diff(own, rs.Labels); diff != "" {
		t.Errorf("ReplicaSet labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(own, rs.Spec.Template.Labels); diff != "" {
		t.Errorf("pod labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{vocab.LabelDeployment: "test", vocab.LabelApplication: newApp}, rs.Spec.Selector.MatchLabels); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	wantAnn := map[string]string{"owner": "team-a", vocab.AnnotationTemplateHash: hashV1, AnnotationRevision: "rev-" + hashV1, AnnotationState: encodeState(st)}
	if diff := cmp.Diff(wantAnn, rs.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	tsc := rs.Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector
	if tsc.MatchLabels[vocab.LabelApplication] != newApp || tsc.MatchExpressions[0].Values[0] != newApp {
		t.Errorf("topology spread still selects the template's application: %+v", tsc)
	}
	anti := rs.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels
	if diff := cmp.Diff(map[string]string{vocab.LabelDeployment: "test"}, anti); diff != "" {
		t.Errorf("UNIQUE anti-affinity changed (-want +got):\n%s", diff)
	}
	if spec.Template.Name != "" || spec.Template.Spec.Template.Labels[vocab.LabelApplication] != "test" || ps.TopologySpreadConstraints[0].LabelSelector.MatchLabels[vocab.LabelApplication] != "test" {
		t.Error("application modified the spec's template")
	}
}
