package bcs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// hashVersion changes when the hashed input changes shape, so that a new
// gitpace never mistakes an old hash for its own.
const hashVersion = "bcs-template/v1"

// TemplateHash is a stable hash of everything that defines the pods of the
// deployment's applications: name and namespace (they are in the pod labels),
// metadata.labels (also on the pods), spec.template, constraint,
// restartPolicy and killPolicy. It leaves out spec.instance, spec.strategy,
// spec.selector and metadata.annotations, so that the rollout engine can
// tell "the template changed: roll" from "only the instance count or the
// strategy changed: scale".
//
// The hash is taken over the decoded manifest, so formatting, key order and
// key case do not change it; any change of value does (also one that maps to
// the same pod, such as cpu "0.5" → "0.50"). It is 16 hex digits, usable as a
// label value.
func (d *Deployment) TemplateHash() string {
	tmpl := d.Spec.Template
	if tmpl != nil {
		// Parse checked it equals metadata.namespace, hashed mapped below.
		t := *tmpl
		t.Metadata.Namespace = ""
		tmpl = &t
	}
	input := struct {
		Version       string
		Name          string
		Namespace     string
		Labels        map[string]string
		Template      *PodTemplate
		Constraint    *Constraint
		RestartPolicy *RestartPolicy
		KillPolicy    *KillPolicy
	}{hashVersion, d.Metadata.Name, d.Namespace(), d.Metadata.Labels, tmpl, d.Constraint, d.RestartPolicy, d.KillPolicy}
	b, err := json.Marshal(input)
	if err != nil {
		panic("bcs: cannot marshal a parsed deployment: " + err.Error()) // only plain data: cannot happen
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
