package appliers

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// DefaultTakeoverManagers are the field managers whose fields gitpace takes
// over (`gitpace run --takeover-managers`): the names kubectl v1.37 records
// in metadata.managedFields for `apply` (client-side:
// kubectl-client-side-apply, and before-first-apply when it upgraded an
// object; server-side: kubectl, and kubectl-last-applied for the
// last-applied annotation), `edit`, `patch`, `set` (env, image, resources,
// ...), `label`, `annotate`, `create` and `replace` (k8s.io/kubectl
// v0.37 pkg/cmd; a command without a manager of its own records
// "kubectl"). Fields they
// own are hand edits or leftovers of a kubectl deployment; once gitpace owns
// them, what git does not declare is removed, as Flux's SSA manager does
// (fluxcd/kustomize-controller#527). `kubectl scale` writes the scale
// subresource and `kubectl rollout restart` (kubectl-rollout) a restart
// stamp; neither is taken over.
var DefaultTakeoverManagers = []string{
	"kubectl", "kubectl-client-side-apply", "before-first-apply", "kubectl-last-applied",
	"kubectl-edit", "kubectl-patch", "kubectl-set", "kubectl-label",
	"kubectl-annotate", "kubectl-create", "kubectl-replace",
}

// HandoverFieldManager owns spec.replicas after git stops declaring it, so
// that the live value stays (see replicas.go).
const HandoverFieldManager = "gitpace-handover"

// CheckTakeoverManagers refuses a takeover list naming gitpace's own
// managers (taking them over would fight gitpace's pause and hand-over).
func CheckTakeoverManagers(names []string) error {
	for _, n := range names {
		switch n {
		case FieldManager, PauseFieldManager, HandoverFieldManager:
			return fmt.Errorf("field manager %q is gitpace's own and cannot be taken over", n)
		case "":
			return fmt.Errorf("empty field manager name")
		}
	}
	return nil
}

// takenOver reports whether e is an entry gitpace takes over: a listed
// manager, on the main resource (never a subresource: `kubectl scale` and
// HPAs own spec.replicas through "scale"; controllers write "status").
func (a *Applier) takenOver(e metav1.ManagedFieldsEntry) bool {
	return e.Subresource == "" && e.Manager != FieldManager && slices.Contains(a.TakeoverManagers, e.Manager)
}

func isGitpaceEntry(e metav1.ManagedFieldsEntry) bool {
	return e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == ""
}

func entrySet(e metav1.ManagedFieldsEntry) (*fieldpath.Set, error) {
	s := &fieldpath.Set{}
	if e.FieldsV1 == nil {
		return s, nil
	}
	if err := s.FromJSON(e.FieldsV1.GetRawReader()); err != nil {
		return nil, fmt.Errorf("managedFields entry of %q: %w", e.Manager, err)
	}
	return s, nil
}

var (
	stringDataPE = fieldpath.PathElement{FieldName: strPtr("stringData")}
	dataPE       = fieldpath.PathElement{FieldName: strPtr("data")}
)

func strPtr(s string) *string { return &s }

func isSecret(u *unstructured.Unstructured) bool {
	return u.GetAPIVersion() == "v1" && u.GetKind() == "Secret"
}

// stringDataAsData maps ownership of Secret stringData.<key> (a write-only
// field the server merges into data and never stores) to data.<key>, the
// field that holds the value.
func stringDataAsData(s *fieldpath.Set) *fieldpath.Set {
	out := &fieldpath.Set{}
	s.Iterate(func(p fieldpath.Path) {
		if len(p) > 0 && p[0].Equals(stringDataPE) {
			p = append(fieldpath.Path{dataPE}, p[1:]...)
		}
		out.Insert(p)
	})
	return out
}

// takeover is what taking an object over changes in its managed fields.
type takeover struct {
	// entries are the object's managedFields afterwards: the taken-over
	// entries merged into gitpace's Apply entry.
	entries []metav1.ManagedFieldsEntry
	// fields are the fields gitpace gains (the taken-over entries' sets,
	// and its own stringData fields as data).
	fields *fieldpath.Set
}

// planTakeover returns what taking live over changes, or nil when nothing
// is to be taken over: no entry of a listed manager, and, for a Secret, no
// stringData field in gitpace's own entry (an older gitpace applied
// stringData, so it owns no data key and could never remove one).
//
// Taken-over entries may carry another apiVersion than gitpace's entry; their
// field paths are merged as they are (built-in kinds keep their paths across
// served versions).
func (a *Applier) planTakeover(live *unstructured.Unstructured) (*takeover, error) {
	var keep []metav1.ManagedFieldsEntry
	var own *metav1.ManagedFieldsEntry
	gained := &fieldpath.Set{}
	merged := &fieldpath.Set{}
	taken := false
	for _, e := range live.GetManagedFields() {
		switch {
		case isGitpaceEntry(e) && own == nil:
			s, err := entrySet(e)
			if err != nil {
				return nil, err
			}
			own = &e
			if sd := under(s, stringDataPE); isSecret(live) && !sd.Empty() {
				taken = true
				gained = gained.Union(sd)
			}
			merged = merged.Union(s)
		case a.takenOver(e):
			s, err := entrySet(e)
			if err != nil {
				return nil, err
			}
			taken = true
			gained = gained.Union(s)
		default:
			keep = append(keep, e)
		}
	}
	if !taken {
		return nil, nil
	}
	if isSecret(live) {
		gained = stringDataAsData(gained)
		merged = stringDataAsData(merged)
	}
	merged = merged.Union(gained)
	// The last-applied annotation goes with the takeover (see patch).
	merged = merged.Difference(fieldpath.NewSet(lastAppliedPath))
	raw, err := merged.ToJSON()
	if err != nil {
		return nil, err
	}
	entry := metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply,
		APIVersion: live.GetAPIVersion(), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: raw}}
	if own != nil {
		entry.APIVersion, entry.Time = own.APIVersion, own.Time
	}
	return &takeover{entries: append([]metav1.ManagedFieldsEntry{entry}, keep...), fields: gained}, nil
}

// under returns the paths of s that start with pe.
func under(s *fieldpath.Set, pe fieldpath.PathElement) *fieldpath.Set {
	out := &fieldpath.Set{}
	s.Iterate(func(p fieldpath.Path) {
		if len(p) > 0 && p[0].Equals(pe) {
			out.Insert(p.Copy())
		}
	})
	return out
}

var lastAppliedPath = fieldpath.MakePathOrDie("metadata", "annotations", LastAppliedAnnotation)

// patch is the JSON patch (RFC 6902) that takes live over: managedFields
// replaced, and kubectl's last-applied annotation removed (as
// csaupgrade.UpgradeManagedFieldsPatch and Flux do). resourceVersion is
// "replaced" with the one read, so that a concurrent write makes it fail with
// a conflict (409) instead of losing that write's ownership.
func (t *takeover) patch(live *unstructured.Unstructured) ([]byte, error) {
	ops := []map[string]any{
		{"op": "replace", "path": "/metadata/managedFields", "value": t.entries},
		{"op": "replace", "path": "/metadata/resourceVersion", "value": live.GetResourceVersion()},
	}
	if _, ok := live.GetAnnotations()[LastAppliedAnnotation]; ok {
		ops = append(ops, map[string]any{"op": "remove", "path": "/metadata/annotations/" + strings.ReplaceAll(LastAppliedAnnotation, "/", "~1")})
	}
	return json.Marshal(ops)
}

// afterTakeover predicts, without writing, the object after a takeover and
// a forced apply: dry is the forced dry run's result (its managedFields as
// after that apply). Server-side apply removes a field its applier owned
// before and does not apply now, unless another manager owns it too
// (structured-merge-diff's prune); so the fields gitpace gains and does not
// apply, and that no remaining manager owns (nor owns a field under), are
// removed from dry. keep names further fields to leave (a hand-over). The
// caller lets the server re-default the result (a dry-run update), since a
// removed field with a default comes back.
func (a *Applier) afterTakeover(t *takeover, dry *unstructured.Unstructured, keep *fieldpath.Set) (*unstructured.Unstructured, bool, error) {
	kept := keep
	for _, e := range dry.GetManagedFields() {
		// gitpace's entry after the dry run is the applied config; the
		// managers not taken over keep their fields.
		if !isGitpaceEntry(e) && (a.takenOver(e) || e.Manager == FieldManager) {
			continue
		}
		s, err := entrySet(e)
		if err != nil {
			return nil, false, err
		}
		kept = kept.Union(s)
	}
	held := &fieldpath.Set{} // every path with a kept field at or under it
	kept.Iterate(func(p fieldpath.Path) {
		for i := 1; i <= len(p); i++ {
			held.Insert(p[:i].Copy())
		}
	})
	goneSet := &fieldpath.Set{}
	t.fields.Iterate(func(p fieldpath.Path) {
		if !held.Has(p) {
			goneSet.Insert(p.Copy())
		}
	})
	// Only the topmost: removing a list item by its key fields must not
	// find them removed already.
	var gone []fieldpath.Path
	goneSet.Iterate(func(p fieldpath.Path) {
		for i := 1; i < len(p); i++ {
			if goneSet.Has(p[:i]) {
				return
			}
		}
		gone = append(gone, p.Copy())
	})
	out := dry.DeepCopy()
	removed := false
	// Last first: list indexes stay valid.
	for i := len(gone) - 1; i >= 0; i-- {
		var ok bool
		out.Object, ok = removePath(out.Object, gone[i])
		removed = removed || ok
	}
	return out, removed, nil
}

// removePath removes the field or list item at p from node (a decoded JSON
// value) and returns the new node; ok is false when p is not there.
func removePath(node map[string]any, p fieldpath.Path) (map[string]any, bool) {
	n, ok := removeAt(node, p)
	if m, isMap := n.(map[string]any); isMap {
		return m, ok
	}
	return node, false
}

func removeAt(node any, p fieldpath.Path) (any, bool) {
	if len(p) == 0 {
		return node, false
	}
	pe := p[0]
	switch n := node.(type) {
	case map[string]any:
		if pe.FieldName == nil {
			return node, false
		}
		child, ok := n[*pe.FieldName]
		if !ok {
			return node, false
		}
		if len(p) == 1 {
			delete(n, *pe.FieldName)
			return n, true
		}
		c, ok := removeAt(child, p[1:])
		n[*pe.FieldName] = c
		return n, ok
	case []any:
		i := listIndex(n, pe)
		if i < 0 {
			return node, false
		}
		if len(p) == 1 {
			return append(n[:i:i], n[i+1:]...), true
		}
		c, ok := removeAt(n[i], p[1:])
		n[i] = c
		return n, ok
	}
	return node, false
}

// listIndex finds the list item pe names: by its key fields (associative
// lists: containers by name, env by name), by value (sets), or by index.
func listIndex(l []any, pe fieldpath.PathElement) int {
	switch {
	case pe.Index != nil:
		if *pe.Index < len(l) {
			return *pe.Index
		}
	case pe.Value != nil:
		for i, v := range l {
			if value.Equals(value.NewValueInterface(v), *pe.Value) {
				return i
			}
		}
	case pe.Key != nil:
	items:
		for i, v := range l {
			m, ok := v.(map[string]any)
			if !ok {
				continue
			}
			for _, f := range *pe.Key {
				fv, ok := m[f.Name]
				if !ok || !value.Equals(value.NewValueInterface(fv), f.Value) {
					continue items
				}
			}
			return i
		}
	}
	return -1
}

// withDataOnly returns a Secret whose stringData is merged into data
// (base64), as the API server does on write (stringData wins over data for
// the same key), so that gitpace applies and owns data.<key>: a key that
// leaves git is then removed, and the same values written as data are no
// change (kubernetes/kubernetes#123843; Flux converts likewise). Other
// objects, and Secrets without stringData, are returned as they are.
func withDataOnly(u *unstructured.Unstructured) *unstructured.Unstructured {
	sd, ok := u.Object["stringData"].(map[string]any)
	if !isSecret(u) || !ok {
		return u
	}
	c := u.DeepCopy()
	data, _ := c.Object["data"].(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	for k, v := range sd {
		s, ok := v.(string)
		if !ok {
			return u // not a string: the server's validation names it
		}
		data[k] = base64.StdEncoding.EncodeToString([]byte(s))
	}
	c.Object["data"] = data
	delete(c.Object, "stringData")
	return c
}
