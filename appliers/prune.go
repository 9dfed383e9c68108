package appliers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// Owner names who applied an object: an agent identity (the label
// AgentLabel) and one of its apps (the annotation AppAnnotation). It is
// written on every object gitpace applies, as Flux's owner labels and
// Argo CD's tracking annotation are, and prune and undo delete an object
// only while the live object still names the same Owner.
type Owner struct {
	Agent string `json:"agent,omitempty"`
	App   string `json:"app"`
}

func (o Owner) String() string {
	if o.Agent == "" {
		return "app " + o.App
	}
	return "agent " + o.Agent + ", app " + o.App
}

// OwnerOf reads the Owner recorded on a live object. Objects applied by a
// gitpace without agent identities carry only the app annotation: their
// Agent is "".
func OwnerOf(u metav1.Object) (Owner, bool) {
	app, ok := u.GetAnnotations()[AppAnnotation]
	if !ok {
		return Owner{}, false
	}
	return Owner{Agent: u.GetLabels()[AgentLabel], App: app}, true
}

// Owns reports whether the live object u was applied by owner. An object
// that names no agent (applied before gitpace recorded agents) is owned by
// the app it names, of any agent.
func (o Owner) Owns(u metav1.Object) bool {
	got, ok := OwnerOf(u)
	if !ok || got.App != o.App {
		return false
	}
	return got.Agent == "" || got.Agent == o.Agent
}

// NotOwnedReason says whose the live object u is, for an object an Owner
// does not own (Owns false): "the live object names no gitpace owner" (no
// AppAnnotation), or "the live object is owned by agent A, app web".
func NotOwnedReason(u metav1.Object) string {
	if got, ok := OwnerOf(u); ok {
		return "the live object is owned by " + got.String()
	}
	return "the live object names no gitpace owner"
}

// PruneRequest is one prune: the objects that left an app's desired state,
// whose Owner they must still name, and the objects that any app of the
// same agent still declares (never deleted, whatever their inventory).
type PruneRequest struct {
	Owner Owner
	Refs  []ObjectRef
	// Declared reports an object (by ObjectRef.Key) that the revision
	// declares in any app: it is handed over, never deleted. May be nil.
	Declared func(key string) (app string, ok bool)
	// ClaimedElsewhere reports an object (by ObjectRef.Key) that another
	// agent sharing the state namespace still lists in its inventory: two
	// agents declare it, and neither may delete it. May be nil.
	ClaimedElsewhere func(key string) (owner string, ok bool)
	// DeclaredNamespaces maps each namespace holding objects that the
	// revision declares to those objects (as they are to be reported): its
	// Namespace object is never pruned.
	DeclaredNamespaces map[string][]string
	// DryRun deletes nothing: the Deleted entries say what would go, with
	// the live object as a diff to nothing.
	DryRun bool
}

// Prune deletes the objects of req that gitpace may prove it owns and that
// git no longer declares; every other object is reported Skipped with the
// reason, and is released (the caller drops it from the inventory).
//
// An object is deleted only when all of these hold:
//   - no app of the revision declares it (req.Declared);
//   - the live object still names req.Owner (OwnerOf);
//   - it does not carry PruneAnnotation: PruneDisabled;
//   - a Namespace is not protected (ProtectedNamespace) and holds nothing
//     but objects this prune deletes (namespaceHolders): deleting a
//     Namespace deletes everything in it (cli-utils#274).
//
// Objects already gone are reported Deleted. Workloads go before their
// Namespace; a deleted CustomResourceDefinition resets discovery. The
// error joins what the server refused; the ChangeSet holds what was done.
func (a *Applier) Prune(ctx context.Context, req PruneRequest) (ChangeSet, error) {
	var out ChangeSet
	var errs []error
	pruning := map[string]bool{}
	for _, r := range req.Refs {
		pruning[r.Key()] = true
	}
	skip := func(ref ObjectRef, why string) {
		delete(pruning, ref.Key())
		out = append(out, Change{Ref: ref, Action: Skipped, Reason: why})
	}
	var del []ObjectRef
	lives := map[string]*unstructured.Unstructured{}
	for _, ref := range sortForDelete(req.Refs) {
		if req.Declared != nil {
			if app, ok := req.Declared(ref.Key()); ok {
				skip(ref, "handed over to app "+app)
				continue
			}
		}
		if req.ClaimedElsewhere != nil {
			if owner, ok := req.ClaimedElsewhere(ref.Key()); ok {
				skip(ref, "not pruned: "+owner+" still declares it")
				continue
			}
		}
		if ref.Kind == "Namespace" && ref.Group == "" {
			if why := a.protectedReason(ref.Name); why != "" {
				skip(ref, "not pruned: "+why)
				continue
			}
			if objs := req.DeclaredNamespaces[ref.Name]; len(objs) > 0 {
				skip(ref, "not pruned: the revision still declares "+holderList(objs)+" in it")
				continue
			}
		}
		live, err := a.Get(ctx, ref)
		if errors.Is(err, ErrUnknownKind) {
			out = append(out, Change{Ref: ref, Action: Deleted}) // its CRD went: so did it
			continue
		}
		if err != nil {
			errs = append(errs, a.objectError(ctx, ref, nil, fmt.Errorf("prune: %w", err)))
			continue
		}
		if live == nil {
			if !req.DryRun {
				out = append(out, Change{Ref: ref, Action: Deleted}) // gone already
			}
			continue
		}
		if !req.Owner.Owns(live) {
			skip(ref, "not pruned: "+NotOwnedReason(live))
			continue
		}
		if live.GetAnnotations()[PruneAnnotation] == PruneDisabled {
			skip(ref, "not pruned: "+PruneAnnotation+": "+PruneDisabled)
			continue
		}
		del = append(del, ref)
		lives[ref.Key()] = live
	}
	for _, ref := range del {
		if ref.Kind == "Namespace" && ref.Group == "" {
			holders, err := a.namespaceHolders(ctx, ref.Name, pruning)
			if err != nil {
				errs = append(errs, &ObjectError{Ref: ref, Err: fmt.Errorf("prune: listing what the namespace holds: %w", err)})
				continue
			}
			if len(holders) > 0 {
				skip(ref, "not pruned: it still holds "+holderList(holders))
				continue
			}
		}
		if req.DryRun {
			out = append(out, Change{Ref: ref, Action: Deleted, Diff: UnifiedDiff(ref, Normalize(lives[ref.Key()]), nil)})
			continue
		}
		ri, _, err := a.resource(ref)
		if err != nil {
			errs = append(errs, &ObjectError{Ref: ref, Err: err})
			continue
		}
		policy := metav1.DeletePropagationBackground
		err = ri.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &policy})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, a.objectError(ctx, ref, nil, fmt.Errorf("prune: %w", err)))
			continue
		}
		out = append(out, Change{Ref: ref, Action: Deleted})
		if ref.Kind == "CustomResourceDefinition" {
			a.resetDiscovery()
		}
	}
	return out, errors.Join(errs...)
}

// builtinNamespaces are never pruned: Kubernetes refuses to delete some,
// and the others hold the cluster's own objects (flux2#1077).
var builtinNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// protectedReason says why gitpace never deletes the Namespace name ("" when
// it may): Kubernetes' own namespaces (default, kube-*), and the namespace
// holding gitpace's state (StandInNamespace; flux2#3949).
func (a *Applier) protectedReason(name string) string {
	switch {
	case builtinNamespaces[name] || strings.HasPrefix(name, "kube-"):
		return "built-in namespace"
	case name == a.StandInNamespace && name != "":
		return "gitpace's state namespace"
	}
	return ""
}

// sortForDelete orders refs so that Namespaces and CRDs go last: what is in
// a namespace, and custom resources, before what holds them.
func sortForDelete(refs []ObjectRef) []ObjectRef {
	rank := func(r ObjectRef) int {
		switch r.Kind {
		case "Namespace":
			return 2
		case "CustomResourceDefinition":
			return 1
		}
		return 0
	}
	out := append([]ObjectRef(nil), refs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// namespaceHolders lists what namespace ns holds besides the objects being
// pruned (keys in pruning), at most a few names: top-level objects only
// (objects with an ownerReference go with their owner), leaving out what
// Kubernetes makes in every namespace (events, the default ServiceAccount,
// kube-root-ca.crt) and Endpoints, which mirror Services. Objects already
// being deleted do not count. Only metadata is read, never a Secret's data.
func (a *Applier) namespaceHolders(ctx context.Context, ns string, pruning map[string]bool) ([]string, error) {
	lists, err := a.disco.ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, err
	}
	var out []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerb(r.Verbs, "list") || ignoredHolder(gv.Group, r.Kind) {
				continue
			}
			gvr := gv.WithResource(r.Name)
			items, err := a.meta.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{Limit: 100})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("listing %s in %s: %w", gvr.Resource, ns, err)
			}
			for _, it := range items.Items {
				if len(it.OwnerReferences) > 0 || it.DeletionTimestamp != nil || defaultObject(r.Kind, it.Name) {
					continue
				}
				ref := ObjectRef{Group: gv.Group, Version: gv.Version, Kind: r.Kind, Namespace: ns, Name: it.Name}
				if pruning[ref.Key()] {
					continue
				}
				out = append(out, ref.String())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func holderList(h []string) string {
	const show = 3
	if len(h) <= show {
		return strings.Join(h, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(h[:show], ", "), len(h)-show)
}

func hasVerb(verbs []string, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}

func ignoredHolder(group, kind string) bool {
	switch {
	case kind == "Event" && (group == "" || group == "events.k8s.io"):
		return true
	case kind == "Endpoints" && group == "":
		return true
	case kind == "EndpointSlice" && group == "discovery.k8s.io":
		return true
	}
	return false
}

// defaultObject: what Kubernetes creates in every namespace.
func defaultObject(kind, name string) bool {
	return kind == "ServiceAccount" && name == "default" || kind == "ConfigMap" && name == "kube-root-ca.crt"
}
