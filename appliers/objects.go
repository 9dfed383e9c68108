// Package appliers turns an app's desired objects into cluster state: a
// server-side-apply dry run to diff, server-side apply to write (Namespaces
// and CRDs first), and prune of what git no longer holds. Results are data
// (a ChangeSet); the caller logs and records them.
//
// Native Deployments are then rolled by Kubernetes itself (see rollout.go for
// how gitpace follows them); BCS deployments are paced by package paced.
package appliers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FieldManager owns every field gitpace applies.
const FieldManager = "gitpace"

// PauseFieldManager owns spec.paused while a PAUSE marker holds an app.
const PauseFieldManager = "gitpace-pause"

// Labels and annotations gitpace puts on every object it applies.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "gitpace"
	AppAnnotation  = "gitpace.dev/app"
	// AgentLabel names the agent identity (gitpace run --name) whose app
	// applied the object; with AppAnnotation it is the object's Owner.
	AgentLabel = "gitpace.dev/agent"
	// PruneAnnotation set to PruneDisabled on an object keeps it in the
	// cluster when it leaves git (Flux's kustomize.toolkit.fluxcd.io/prune,
	// Argo CD's Prune=false).
	PruneAnnotation = "gitpace.dev/prune"
	PruneDisabled   = "disabled"
	// SourceAnnotation carries an object's file:line in memory for error
	// messages; it is stripped before the object is sent to the cluster.
	SourceAnnotation = "gitpace.dev/source"
	// ReadFromAnnotation, in memory like SourceAnnotation, names the file
	// (and line) an object was read from when SourceAnnotation names the
	// kustomization that built it (manifest.Origin.Read): messages name
	// this one. It is no part of an app's content hash, which stays as it
	// was before it existed.
	ReadFromAnnotation = "gitpace.dev/read-from"
	ChangeCause        = "kubernetes.io/change-cause"
)

// ObjectRef names one object.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RefOf returns the reference of u.
func RefOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// GVK is the reference's group, version and kind.
func (r ObjectRef) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// String is Kind/namespace/name (Kind/name when cluster-scoped), as kubectl
// prints objects.
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Key identifies the object regardless of API version.
func (r ObjectRef) Key() string {
	return strings.Join([]string{r.Group, r.Kind, r.Namespace, r.Name}, "/")
}

// Action is what applying did (or would do) to one object.
type Action string

// The actions of a Change.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Deleted    Action = "deleted"
	// Skipped: a prune left the object in place (Change.Reason says why)
	// and released it from the inventory.
	Skipped Action = "skipped"
	// Recreated: deleted and created again, for a change the server
	// refuses in place (RecreateAnnotation).
	Recreated Action = "recreated"
)

// Change is the outcome for one object.
type Change struct {
	Ref    ObjectRef `json:"ref"`
	Action Action    `json:"action"`
	// Diff is a unified diff of the normalized live object against the
	// normalized dry-run result ("" when unchanged).
	Diff string `json:"diff,omitempty"`
	// Reason says why an object was Skipped.
	Reason string `json:"reason,omitempty"`
	// Generation (or, for kinds without one, resourceVersion) after apply.
	Generation      int64  `json:"generation,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Object is the object as the server returned it from the apply (or,
	// for Unchanged, as read live), so that callers need not read it again;
	// nil for an object found Unchanged from the cache (Fingerprint), which
	// was not read.
	Object *unstructured.Unstructured `json:"-"`
	// Note says, in one line, a decision gitpace made about the object
	// that the diff alone does not show: spec.replicas left to an HPA, or
	// why it is re-created.
	Note string `json:"note,omitempty"`
	// LiveOwner is the gitpace Owner the live object named before this
	// change (Diff), nil when it names none or does not exist.
	LiveOwner *Owner `json:"liveOwner,omitempty"`
	// Fingerprint, for an object applied or found Unchanged, is
	// "uid/gitpace's entry/content" (cache.go); hand it to the next Diff
	// (WithFingerprints). "" when none could be made.
	Fingerprint string `json:"-"`
	// Desired is the object as Diff predicts Apply leaves it (the server's
	// dry run, with the replicas hand-over and field takeover applied;
	// for an object whose namespace or kind does not exist yet, the object
	// as sent). Diff's unified diff is of Normalize(live) against
	// Normalize(Desired). nil for Recreated, Deleted and Skipped changes.
	// A Secret's values are not masked here: never print it.
	Desired *unstructured.Unstructured `json:"-"`

	// What Diff planned for Apply: the object to send, the live object,
	// and the writes that come first (takeover.go, replicas.go).
	send, live         *unstructured.Unstructured
	takeover, handover bool
}

// Live is the live object Diff compared Desired with (nil when it did not
// exist), as read before the dry run; nil after Apply.
func (c Change) Live() *unstructured.Unstructured { return c.live }

// ChangeSet is the outcome for a whole app.
type ChangeSet []Change

// Changed reports whether any entry is not Unchanged.
func (cs ChangeSet) Changed() bool {
	for _, c := range cs {
		if c.Action != Unchanged && c.Action != Skipped {
			return true
		}
	}
	return false
}

// Summary is e.g. "1 created, 2 configured, 3 unchanged".
func (cs ChangeSet) Summary() string {
	n := map[Action]int{}
	for _, c := range cs {
		n[c.Action]++
	}
	var parts []string
	for _, a := range []Action{Created, Configured, Recreated, Deleted, Skipped, Unchanged} {
		if n[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[a], a))
		}
	}
	if len(parts) == 0 {
		return "no objects"
	}
	return strings.Join(parts, ", ")
}

// ObjectError is an error about one object; it names the object and, when
// known, the file it came from.
type ObjectError struct {
	Ref  ObjectRef
	File string
	Err  error
}

func (e *ObjectError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s: %s: %v", e.File, e.Ref, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Ref, e.Err)
}

func (e *ObjectError) Unwrap() error { return e.Err }

// SourceOf is where messages place o: its ReadFromAnnotation, else its
// SourceAnnotation ("" when it has neither).
func SourceOf(o *unstructured.Unstructured) string {
	ann := o.GetAnnotations()
	if r := ann[ReadFromAnnotation]; r != "" {
		return r
	}
	return ann[SourceAnnotation]
}

// TemplateHash is a stable hash of a workload's spec.template (or of the
// whole spec when there is none). Two revisions with the same hash roll out
// the same pods: that is how gitpace recognizes a rollback.
func TemplateHash(u *unstructured.Unstructured) string {
	v, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "template")
	if !found {
		v, _, _ = unstructured.NestedFieldNoCopy(u.Object, "spec")
	}
	b, _ := json.Marshal(v) // map keys are sorted by encoding/json
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
