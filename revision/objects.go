package revision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/manifest"
	"github.com/gitpace/gitpace/state"
)

// The inventory kind of a BCS v4 deployment: not a Kubernetes resource but
// the pair of ReplicaSets package paced drives. It is never sent to the
// API server; inventories and Declared key BCS deployments by it.
const (
	BCSGroup   = "bcs.gitpace.dev"
	BCSVersion = "v4"
	BCSKind    = "BCSDeployment"
)

// BCSRef is the inventory reference of BCS deployment ns/name.
func BCSRef(ns, name string) appliers.ObjectRef {
	return appliers.ObjectRef{Group: BCSGroup, Version: BCSVersion, Kind: BCSKind, Namespace: ns, Name: name}
}

// IsBCS reports whether ref is a BCS deployment's inventory reference.
func IsBCS(ref appliers.ObjectRef) bool {
	return ref.Group == BCSGroup && ref.Kind == BCSKind
}

// PacedRefs are the inventory references of specs.
func PacedRefs(specs []paced.Spec) []appliers.ObjectRef {
	var out []appliers.ObjectRef
	for _, s := range specs {
		out = append(out, BCSRef(s.Namespace, s.Name))
	}
	return out
}

// Canonical keys inventory refs as the server does (case 10: a stray
// namespace on a cluster-scoped kind, recorded before the kind was known),
// with canonical (appliers.Applier.Canonical); BCS deployments are kept
// as they are.
func Canonical(refs []appliers.ObjectRef, canonical func(appliers.ObjectRef) appliers.ObjectRef) []appliers.ObjectRef {
	out := make([]appliers.ObjectRef, len(refs))
	for i, r := range refs {
		if IsBCS(r) {
			out[i] = r
			continue
		}
		out[i] = canonical(r)
	}
	return out
}

// bcsSpecs parses an app's BCS v4 files into engine specs at commit, plus
// each application template as an object for the policy gates. Errors name
// the file and JSON path.
func bcsSpecs(app *manifest.App, commit string) ([]paced.Spec, []*unstructured.Unstructured, error) {
	var specs []paced.Spec
	var objs []*unstructured.Unstructured
	for _, f := range app.BCS {
		d, err := bcs.Parse(f.File, f.Data)
		if err != nil {
			return nil, nil, err
		}
		rs, err := d.ReplicaSet(d.Name())
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.File, err)
		}
		s := d.Strategy()
		spec := paced.Spec{
			Namespace: d.Namespace(), Name: d.Name(), Instance: d.Instance(),
			Strategy: paced.Strategy{MaxSurge: s.MaxSurge, MaxUnavailable: s.MaxUnavailable,
				UpgradeDuration: s.UpgradeDuration, Order: s.Order, Manually: s.Manually},
			Template: rs, TemplateHash: d.TemplateHash(), Revision: commit,
		}
		if err := spec.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.File, err)
		}
		specs = append(specs, spec)
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(rs)
		if err != nil {
			return nil, nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetAPIVersion("apps/v1")
		u.SetKind("ReplicaSet")
		objs = append(objs, u)
	}
	return specs, objs, nil
}

// DesiredObjects copies the app's objects, recording each one's file:line
// in appliers.SourceAnnotation, and the file it was read from when that is
// another (manifest.Origin.Read) in appliers.ReadFromAnnotation, for error
// messages.
func DesiredObjects(app *manifest.App) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(app.Objects))
	for i, o := range app.Objects {
		c := o.DeepCopy()
		if i < len(app.Origins) {
			ann := c.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[appliers.SourceAnnotation] = fmt.Sprintf("%s:%d", app.Origins[i].File, app.Origins[i].Line)
			if r := app.Origins[i].Read; r != "" {
				ann[appliers.ReadFromAnnotation] = r
			}
			c.SetAnnotations(ann)
		}
		out[i] = c
	}
	return out
}

// WorkloadKinds roll out pods from a template; their template hash decides
// rollout vs. rollback.
var WorkloadKinds = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true}

// TemplateHashes maps ObjectRef.Key of each workload among objs
// (WorkloadKinds) to appliers.TemplateHash of it.
func TemplateHashes(objs []*unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for _, o := range objs {
		if WorkloadKinds[o.GetKind()] {
			out[appliers.RefOf(o).Key()] = appliers.TemplateHash(o)
		}
	}
	return out
}

// FindRollback returns the newest earlier history entry of st (not the one
// in force, which is the last) whose templates equal the desired ones for
// every workload whose template changes against st.Templates: a `git
// revert` brings an old revision back. nil when no template changes, the
// history holds fewer than two entries, or none matches.
func FindRollback(st *state.App, templates map[string]string) *state.Entry {
	var changed []string
	for k, h := range templates {
		if st.Templates[k] != h {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 || len(st.History) < 2 {
		return nil
	}
	for i := len(st.History) - 2; i >= 0; i-- {
		e := &st.History[i]
		match := true
		for _, k := range changed {
			if e.Templates[k] != templates[k] {
				match = false
				break
			}
		}
		if match {
			return e
		}
	}
	return nil
}

// ContentHash identifies an app's desired state in git: 24 hex digits of
// the sha256 of objs as JSON (encoding/json sorts map keys), without
// appliers.ReadFromAnnotation, and of the raw BCS files, each followed by
// a NUL. Equal content gives an equal hash, whatever the commit.
func ContentHash(objs []*unstructured.Unstructured, bcsFiles []manifest.BCSFile) string {
	h := sha256.New()
	for _, o := range objs {
		if _, ok := o.GetAnnotations()[appliers.ReadFromAnnotation]; ok {
			o = o.DeepCopy()
			ann := o.GetAnnotations()
			delete(ann, appliers.ReadFromAnnotation)
			o.SetAnnotations(ann)
		}
		b, _ := json.Marshal(o.Object)
		h.Write(b)
		h.Write([]byte{0})
	}
	for _, f := range bcsFiles {
		h.Write(f.Data)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// AppContentHash is the content hash of an app (what state.App.ContentHash
// records once applied): ContentHash of its desired objects (objs) and BCS
// files, with its Helm hooks' objects when it has any, so that a change to
// a hook alone is new content.
func AppContentHash(objs []*unstructured.Unstructured, app *manifest.App) string {
	if len(app.Hooks) == 0 {
		return ContentHash(objs, app.BCS)
	}
	all := make([]*unstructured.Unstructured, 0, len(objs)+len(app.Hooks))
	all = append(all, objs...)
	for _, h := range app.Hooks {
		all = append(all, h.Object)
	}
	return ContentHash(all, app.BCS)
}

// Stamp adds gitpace's labels (appliers.ManagedByLabel, AgentLabel with
// agent), the app annotation and, on workloads (those in templates), a
// change-cause naming the commit that last changed their template: rev's
// for a new template, the recorded one (st.ChangeCauses) for an unchanged
// one. It returns the change-causes by ObjectRef.Key; the caller records
// them only once applied.
func Stamp(st *state.App, agent, app string, rev sources.Revision, objs []*unstructured.Unstructured, templates map[string]string) map[string]string {
	causes := map[string]string{}
	for _, o := range objs {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[appliers.ManagedByLabel] = appliers.ManagedByValue
		labels[appliers.AgentLabel] = agent
		o.SetLabels(labels)
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[appliers.AppAnnotation] = app
		key := appliers.RefOf(o).Key()
		if h, ok := templates[key]; ok {
			cause := fmt.Sprintf("gitpace %s: %s", rev.Short(), rev.Subject)
			if old, ok := st.ChangeCauses[key]; ok && st.Templates[key] == h {
				cause = old // template unchanged: keep the commit that made it
			}
			ann[appliers.ChangeCause] = cause
			causes[key] = cause
		}
		o.SetAnnotations(ann)
	}
	return causes
}

// Refs are the references of objs.
func Refs(objs []*unstructured.Unstructured) []appliers.ObjectRef {
	out := make([]appliers.ObjectRef, 0, len(objs))
	for _, o := range objs {
		out = append(out, appliers.RefOf(o))
	}
	return out
}

// Stale lists the inventory objects that desired no longer holds, by
// ObjectRef.Key, in inventory order.
func Stale(inventory, desired []appliers.ObjectRef) []appliers.ObjectRef {
	keep := map[string]bool{}
	for _, r := range desired {
		keep[r.Key()] = true
	}
	var out []appliers.ObjectRef
	for _, r := range inventory {
		if !keep[r.Key()] {
			out = append(out, r)
		}
	}
	return out
}
