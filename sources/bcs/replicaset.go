package bcs

import (
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// ReplicaSet builds the ReplicaSet of one BCS application of this deployment:
// name is the application name, the deployment name for the first version and
// "<deployment>-v<unix seconds>" for the ones a rolling update creates.
//
// Replicas is 0: the rollout engine scales it. Labels are metadata.labels plus
// LabelDeployment and LabelApplication, which together are the selector; the
// pods also carry spec.template.metadata.labels. The ReplicaSet is annotated
// with AnnotationTemplateHash. See doc.go for the field-by-field mapping.
func (d *Deployment) ReplicaSet(name string) (*appsv1.ReplicaSet, error) {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return nil, fmt.Errorf("%s: application name %q is not a DNS-1123 label: %s", d.file, name, strings.Join(msgs, "; "))
	}
	if d.Spec.Template == nil {
		return nil, &FieldError{File: d.file, Path: "spec.template", Msg: "required"}
	}
	errs := &errList{file: d.file}
	tmpl := d.podTemplate(name, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	selector := map[string]string{vocab.LabelDeployment: d.Metadata.Name, vocab.LabelApplication: name}
	labels := maps.Clone(d.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, selector)
	annotations := maps.Clone(d.Metadata.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[vocab.AnnotationTemplateHash] = d.TemplateHash()
	return &appsv1.ReplicaSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   d.Namespace(),
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: tmpl,
		},
	}, nil
}

// podTemplate maps spec.template, the policies and the constraint to the pod
// template of application app, reporting what cannot be mapped.
func (d *Deployment) podTemplate(app string, errs *errList) corev1.PodTemplateSpec {
	t := d.Spec.Template
	labels := map[string]string{}
	maps.Copy(labels, d.Metadata.Labels)
	maps.Copy(labels, t.Metadata.Labels)
	labels[vocab.LabelDeployment] = d.Metadata.Name
	labels[vocab.LabelApplication] = app

	spec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways}
	if kp := d.KillPolicy; kp != nil && kp.GracePeriod > 0 {
		spec.TerminationGracePeriodSeconds = ptr(kp.GracePeriod)
	}
	d.mapNetwork(&spec, errs)
	d.mapContainers(&spec, errs)
	d.mapConstraint(&spec, app, errs)

	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: maps.Clone(t.Metadata.Annotations)},
		Spec:       spec,
	}
}

// hostNetwork reports networkMode HOST. Docker's "host" network is the
// same whatever the case.
func (d *Deployment) hostNetwork() bool {
	return strings.EqualFold(d.Spec.Template.Spec.NetworkMode, "HOST")
}

func (d *Deployment) mapNetwork(spec *corev1.PodSpec, errs *errList) {
	ps := d.Spec.Template.Spec
	spec.HostNetwork = d.hostNetwork()
	if len(ps.NodeSelector) > 0 {
		errs.add("spec.template.spec.nodeSelector", "not supported: the Mesos scheduler ignores it; use a CLUSTER constraint")
	}
	if len(ps.Processes) > 0 {
		errs.add("spec.template.spec.processes", "not supported: BCS processes run outside containers")
	}
	if ps.NetLimit != nil && ps.NetLimit.EgressLimit != 0 {
		errs.add("spec.template.spec.netLimit", "not supported: Kubernetes has no portable egress limit")
	}
}

func ptr[T any](v T) *T { return &v }
