package bcs

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// requestIPPrefix marks BCS's fixed-IP requests (bcs-cni), which pin each
// instance to a host and an IP: no mapping.
const requestIPPrefix = "io.tencent.bcs.netsvc.requestip"

func (d *Deployment) validate(errs *errList) {
	if d.APIVersion != "v4" {
		errs.add("apiVersion", `must be "v4", got %q`, d.APIVersion)
	}
	if d.Kind != "deployment" {
		errs.add("kind", `must be "deployment", got %q (only BCS deployments are supported)`, d.Kind)
	}
	d.validateMeta(errs)
	d.validateSpec(errs)
	d.validatePolicies(errs)
}

func (d *Deployment) validateMeta(errs *errList) {
	m := d.Metadata
	switch {
	case m.Name == "":
		errs.add("metadata.name", "required")
	case len(validation.IsDNS1123Label(m.Name)) > 0:
		errs.add("metadata.name", "%q is not a DNS-1123 label: %s", m.Name, strings.Join(validation.IsDNS1123Label(m.Name), "; "))
	case len(m.Name) > vocab.MaxDeploymentName:
		errs.add("metadata.name", "must be at most %d characters so that application names %q fit in 63, got %d", vocab.MaxDeploymentName, m.Name+"-v<unix seconds>", len(m.Name))
	}
	if ns := d.Namespace(); len(validation.IsDNS1123Label(ns)) > 0 {
		errs.add("metadata.namespace", "%q lower-cased is not a DNS-1123 label: %s", m.Namespace, strings.Join(validation.IsDNS1123Label(ns), "; "))
	}
	validateObjectMeta(errs, "metadata", m)
}

// validateObjectMeta checks the labels, annotations and unsupported fields
// of a metadata block.
func validateObjectMeta(errs *errList, path string, m ObjectMeta) {
	validateLabels(errs, join(path, "labels"), m.Labels)
	for _, k := range sortedKeys(m.Annotations) {
		p := mapKey(join(path, "annotations"), k)
		if msgs := validation.IsQualifiedName(strings.ToLower(k)); len(msgs) > 0 {
			errs.add(p, "invalid annotation key: %s", strings.Join(msgs, "; "))
		}
		if strings.HasPrefix(k, requestIPPrefix) {
			errs.add(p, "not supported: BCS fixed-IP requests (%s.*) have no Kubernetes mapping", requestIPPrefix)
		}
	}
	if m.ClusterName != "" {
		errs.add(join(path, "clusterName"), "not supported: gitpace applies to the cluster it runs against")
	}
}

func validateLabels(errs *errList, path string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		p := mapKey(path, k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs.add(p, "invalid label key: %s", strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(labels[k]); len(msgs) > 0 {
			errs.add(p, "invalid label value %q: %s", labels[k], strings.Join(msgs, "; "))
		}
		if strings.HasPrefix(k, vocab.ReservedPrefix) {
			errs.add(p, "the %s prefix is reserved for gitpace", vocab.ReservedPrefix)
		}
		if strings.HasPrefix(k, requestIPPrefix) {
			errs.add(p, "not supported: BCS fixed-IP requests (%s.*) have no Kubernetes mapping", requestIPPrefix)
		}
	}
}

func (d *Deployment) validateSpec(errs *errList) {
	s := d.Spec
	if s.Instance < 0 {
		errs.add("spec.instance", "must be >= 0, got %d", s.Instance)
	}
	validateLabels(errs, "spec.selector", s.Selector)
	if s.PauseDeployment {
		errs.add("spec.pauseDeployment", "not supported: pause a rollout with gitpace, not in the manifest")
	}
	d.validateStrategy(errs)
	if s.Template == nil {
		errs.add("spec.template", "required: gitpace builds every application from the template (binding to an existing application by spec.selector alone is not supported)")
		return
	}
	tm := s.Template.Metadata
	if tm.Namespace != "" && strings.ToLower(tm.Namespace) != d.Namespace() {
		errs.add("spec.template.metadata.namespace", "%q differs from metadata.namespace %q", tm.Namespace, d.Metadata.Namespace)
	}
	validateObjectMeta(errs, "spec.template.metadata", tm)
	for _, k := range sortedKeys(tm.Labels) {
		if v, ok := d.Metadata.Labels[k]; ok && v != tm.Labels[k] {
			errs.add(mapKey("spec.template.metadata.labels", k), "%q conflicts with metadata.labels value %q (both go on the pods)", tm.Labels[k], v)
		}
	}
}

func (d *Deployment) validateStrategy(errs *errList) {
	st := d.Spec.Strategy
	if st.Type != "RollingUpdate" {
		errs.add("spec.strategy.type", `must be "RollingUpdate", got %q`, st.Type)
	}
	ru := st.RollingUpdate
	if ru == nil {
		errs.add("spec.strategy.rollingupdate", "required")
		return
	}
	if ru.RollingOrder != vocab.OrderCreateFirst && ru.RollingOrder != vocab.OrderDeleteFirst {
		errs.add("spec.strategy.rollingupdate.rollingOrder", `must be %q or %q, got %q`, vocab.OrderCreateFirst, vocab.OrderDeleteFirst, ru.RollingOrder)
	}
	if ru.MaxUnavailable != nil && ru.MaxUnavilable != nil && *ru.MaxUnavailable != *ru.MaxUnavilable {
		errs.add("spec.strategy.rollingupdate.maxUnavilable", "%d conflicts with maxUnavailable %d (the two spellings name the same field)", *ru.MaxUnavilable, *ru.MaxUnavailable)
	}
}

func (d *Deployment) validatePolicies(errs *errList) {
	if rp := d.RestartPolicy; rp != nil {
		switch rp.Policy {
		case "", "OnFailure", "Always":
		case "Never":
			errs.add("restartPolicy.policy", `"Never" has no mapping: a ReplicaSet always replaces its pods (use "Always" or "OnFailure")`)
		default:
			errs.add("restartPolicy.policy", `must be "Always", "OnFailure" or "Never", got %q`, rp.Policy)
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"interval", rp.Interval != 0}, {"backoff", rp.Backoff != 0}, {"maxtimes", rp.MaxTimes != 0}, {"hostRetainTime", rp.HostRetainTime != 0}} {
			if f.set {
				errs.add("restartPolicy."+f.name, "not supported: the kubelet's restart back-off is not configurable per pod")
			}
		}
	}
	if kp := d.KillPolicy; kp != nil && kp.GracePeriod < 0 {
		errs.add("killPolicy.gracePeriod", "must be >= 0, got %d", kp.GracePeriod)
	}
	if up := d.UpdatePolicy; up != nil && *up != (UpdatePolicy{}) {
		errs.add("updatePolicy", "not supported: a deployment's update is driven by spec.strategy")
	}
	if c := d.Constraint; c != nil && len(c.NodeSelector) > 0 {
		errs.add("constraint.nodeSelector", "not supported: the Mesos scheduler ignores it; use a CLUSTER constraint")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
