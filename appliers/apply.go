package appliers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// ErrUnknownKind marks an object whose kind the API server does not serve.
var ErrUnknownKind = errors.New("unknown kind")

// IsSchemaError reports an object the API server refuses for its content:
// Invalid, BadRequest, and the 500 that server-side apply still answers
// when a field's value does not fit its type ("failed to create typed patch
// object ... expected numeric, got string"). Retrying such an object never
// helps, and the refusal is the same in any namespace.
func IsSchemaError(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsInternalError(err) && strings.Contains(err.Error(), "failed to create typed patch object")
}

// Applier diffs, applies and prunes objects with server-side apply.
type Applier struct {
	dyn    dynamic.Interface
	meta   metadata.Interface
	disco  discovery.DiscoveryInterface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// DefaultNamespace is given to namespaced objects that name none.
	DefaultNamespace string
	// StandInNamespace, when set, is an existing namespace (gitpace's state
	// namespace) in which objects whose namespace the same revision creates
	// are dry-run, so that they are validated before anything is applied.
	StandInNamespace string
	// TakeoverManagers are the field managers whose fields gitpace takes
	// over before applying (DefaultTakeoverManagers; see takeover.go).
	TakeoverManagers []string
	// Agent, when set, is the agent identity (the value of AgentLabel on
	// the objects it applies): Diff then keeps a cache of those objects,
	// fed by watches, and trusts fingerprints (cache.go). Set it before the
	// first Diff.
	Agent string
	// Concurrency bounds the requests one Diff or Apply has in flight
	// (DefaultConcurrency when 0).
	Concurrency int

	mu    sync.Mutex
	epoch uint64 // discovery resets so far (under mu)

	// OnDeleted, when set before the first Diff, is told the Owner of
	// every object of the live-object cache that is deleted: the agent
	// queues that app, so that an object deleted behind git's back is
	// re-created at once rather than at the next resync.
	OnDeleted func(Owner)

	cacheOnce sync.Once
	cache     *liveCache
}

// DefaultConcurrency is the requests one Diff or Apply has in flight: the
// objects of one app are dry-run and applied 8 at a time (within a rank:
// Namespaces, then CRDs, then the rest).
const DefaultConcurrency = 8

// New returns an Applier for the cluster of cfg.
func New(cfg *rest.Config) (*Applier, error) {
	cfg = withSecretWarnings(cfg)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Applier{
		dyn:              dyn,
		meta:             md,
		disco:            dc,
		mapper:           restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		DefaultNamespace: "default",
		TakeoverManagers: DefaultTakeoverManagers,
	}, nil
}

// Mapping resolves the REST mapping of a kind, refreshing discovery once when
// the kind is unknown (a CRD applied moments ago). The error for a kind the
// server does not serve names it.
func (a *Applier) Mapping(ref ObjectRef) (*meta.RESTMapping, error) {
	return a.mappingSince(ref, a.discoveryEpoch())
}

// discoveryEpoch counts the discovery resets so far: a pass (Diff, Apply,
// Prepare) notes it when it begins.
func (a *Applier) discoveryEpoch() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.epoch
}

// mappingSince is Mapping for a pass that began at discovery epoch since:
// an unknown kind refreshes discovery only when nothing refreshed it since
// (once per pass, not once per object of an unknown kind).
func (a *Applier) mappingSince(ref ObjectRef, since uint64) (*meta.RESTMapping, error) {
	gvk := ref.GVK()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mu.Lock()
		if a.epoch == since {
			a.mapper.Reset()
			a.epoch++
		}
		a.mu.Unlock()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("%w: kind %s (apiVersion %s) is not served by the API server", ErrUnknownKind, gvk.Kind, gvk.GroupVersion())
	}
	return m, err
}

// resetDiscovery forgets what discovery said: the next mapping asks the
// server again.
func (a *Applier) resetDiscovery() {
	a.mu.Lock()
	a.mapper.Reset()
	a.epoch++
	a.mu.Unlock()
}

// Canonical returns ref keyed the way the server keys the object: without
// a namespace when its kind is cluster-scoped (a stray metadata.namespace
// in git, or an inventory written before the kind was known; case 10). A
// kind discovery does not know is returned as it is.
func (a *Applier) Canonical(ref ObjectRef) ObjectRef {
	if ref.Namespace == "" {
		return ref
	}
	m, err := a.Mapping(ref)
	if err == nil && m.Scope.Name() != meta.RESTScopeNameNamespace {
		ref.Namespace = ""
	}
	return ref
}

func (a *Applier) resource(ref ObjectRef) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	return a.resourceSince(ref, a.discoveryEpoch())
}

// resourceSince is resource within a pass (mappingSince).
func (a *Applier) resourceSince(ref ObjectRef, since uint64) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	m, err := a.mappingSince(ref, since)
	if err != nil {
		return nil, nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(ref.Namespace), m, nil
	}
	return a.dyn.Resource(m.Resource), m, nil
}

// Prepare defaults namespaces (namespaced kinds without one get
// DefaultNamespace; cluster-scoped kinds lose a stray one, as the API server
// ignores it) and checks that every kind is served, except kinds whose CRD
// is itself in objs. A CRD in objs is the truth about its kind's scope:
// when discovery remembers another scope or resource name for it (the CRD
// was deleted and declared again differently, case 11), discovery is asked
// again before anything is keyed. Errors name the object and its file.
func (a *Applier) Prepare(objs []*unstructured.Unstructured) error {
	type crdInfo struct{ scope, plural string }
	crds := map[string]crdInfo{} // group/kind → what the CRD in objs declares
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			plural, _, _ := unstructured.NestedString(o.Object, "spec", "names", "plural")
			crds[g+"/"+k] = crdInfo{scope, plural}
		}
	}
	stale := func(ref ObjectRef, m *meta.RESTMapping) bool {
		c, ok := crds[ref.Group+"/"+ref.Kind]
		if !ok {
			return false
		}
		namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
		return namespaced != (c.scope == "Namespaced") || (c.plural != "" && m.Resource.Resource != c.plural)
	}
	since := a.discoveryEpoch()
	for _, o := range objs {
		if m, err := a.mappingSince(RefOf(o), since); err == nil && stale(RefOf(o), m) {
			a.resetDiscovery()
			break
		}
	}
	var errs []error
	for _, o := range objs {
		ref := RefOf(o)
		m, err := a.mappingSince(ref, since)
		if err == nil && stale(ref, m) {
			err = fmt.Errorf("%w: discovery still serves %s as %s", ErrUnknownKind, ref.Kind, m.Scope.Name())
		}
		if err != nil {
			if c, ok := crds[ref.Group+"/"+ref.Kind]; ok {
				// Served once its CRD (same revision) is applied.
				if c.scope == "Namespaced" && o.GetNamespace() == "" {
					o.SetNamespace(a.DefaultNamespace)
				} else if c.scope == "Cluster" {
					o.SetNamespace("")
				}
				continue
			}
			errs = append(errs, &ObjectError{Ref: ref, File: SourceOf(o), Err: err})
			continue
		}
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				o.SetNamespace(a.DefaultNamespace)
			}
		} else {
			o.SetNamespace("")
		}
	}
	return errors.Join(errs...)
}

// rank is o's place in order: Namespaces 0, CRDs 1, the rest 2.
func rank(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "Namespace":
		return 0
	case "CustomResourceDefinition":
		return 1
	}
	return 2
}

// order sorts objects so that Namespaces and CRDs come first.
func order(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// Diff dry-runs a server-side apply of every object and compares the result
// with the live object, normalized so that server defaults, status and
// managed fields never count. It writes nothing. Objects whose namespace does
// not exist yet but is created by objs are dry-run in StandInNamespace
// (diffStandIn).
//
// The result is what Apply will make of the object, not only what the dry
// run returns: fields of TakeoverManagers that git does not declare are
// shown going away (takeover.go); spec.replicas is left to an HPA and handed
// over when git stops declaring it (replicas.go); a Secret's stringData is
// sent as data. A change the server refuses in place (an immutable field)
// is an *ImmutableError, or, for an object annotated RecreateAnnotation, a
// Recreated change (recreate.go).
//
// With a cache (Agent set; cache.go), an object whose fingerprint
// (WithFingerprints) still holds is Unchanged without a request, and an
// object absent from the cache is dry-run without being read first.
//
// Objects are diffed Concurrency at a time; the ChangeSet and the errors
// (one *ObjectError per object, joined) are in order: Namespaces, CRDs,
// then the rest, each in input order.
func (a *Applier) Diff(ctx context.Context, objs []*unstructured.Unstructured, opts ...DiffOption) (ChangeSet, error) {
	var o diffOptions
	for _, f := range opts {
		f(&o)
	}
	p := &diffPass{since: a.discoveryEpoch(), newNS: map[string]bool{}, hpas: newHPAIndex(a.dyn, objs),
		fingerprints: o.fingerprints, cache: a.liveCache()}
	for _, o := range objs {
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			p.newNS[o.GetName()] = true
		}
	}
	ordered := order(objs)
	changes := make([]Change, len(ordered))
	errs := make([]error, len(ordered))
	a.each(len(ordered), false, func(i int) error {
		c, err := a.diffOne(ctx, ordered[i], p)
		if err != nil {
			errs[i] = a.objectError(ctx, RefOf(ordered[i]), ordered[i], err)
			return errs[i]
		}
		changes[i] = c
		return nil
	})
	var cs ChangeSet
	for i := range ordered {
		if errs[i] == nil {
			cs = append(cs, changes[i])
		}
	}
	return cs, errors.Join(errs...)
}

// diffPass is what the objects of one Diff share.
type diffPass struct {
	since        uint64          // discovery epoch at the start (mappingSince)
	newNS        map[string]bool // Namespaces the objects create
	hpas         *hpaIndex
	fingerprints map[string]string
	cache        *liveCache // nil: none
}

// each runs fn(0..n-1), Concurrency at a time, started in order. With
// stopOnError, no fn starts after one has failed (those started finish).
func (a *Applier) each(n int, stopOnError bool, fn func(i int) error) {
	limit := a.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for i := range n {
		sem <- struct{}{}
		if stopOnError && failed.Load() {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
}

func (a *Applier) diffOne(ctx context.Context, o *unstructured.Unstructured, p *diffPass) (Change, error) {
	ref := RefOf(o)
	ri, m, err := a.resourceSince(ref, p.since)
	if errors.Is(err, ErrUnknownKind) {
		// A kind whose CRD is in this revision (Prepare checked): it will
		// be created.
		return Change{Ref: ref, Action: Created, Diff: UnifiedDiff(ref, nil, toSend(o)), Desired: toSend(o)}, nil
	}
	if err != nil {
		return Change{}, err
	}
	if p.cache != nil && o.GetLabels()[AgentLabel] == a.Agent {
		if c, ok, err := a.fromCache(ctx, ri, m, o, p); ok {
			return c, err
		}
	}
	live, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		live = nil
	} else if err != nil {
		return Change{}, err
	}
	if live == nil && ref.Namespace != "" && p.newNS[ref.Namespace] {
		if _, err := a.dyn.Resource(nsGVR).Get(ctx, ref.Namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return a.diffStandIn(ctx, o, p.since)
		}
	}
	c := Change{Ref: ref, send: toSend(o), live: live}
	if live != nil {
		if owner, ok := OwnerOf(live); ok {
			c.LiveOwner = &owner
		}
	}
	if live != nil && declaresReplicas(c.send) {
		hpa, err := p.hpas.targeting(ctx, ref)
		if err != nil {
			return Change{}, err
		}
		if hpa != "" {
			n, _, _ := unstructured.NestedFieldNoCopy(c.send.Object, "spec", "replicas")
			c.Note = fmt.Sprintf("spec.replicas (%v in git) is left to %s, which targets it", n, hpa)
			c.send = withoutReplicas(c.send)
		}
	}
	ctx = withSecrets(ctx, live) // also for predict's and refused's requests: warnings name no value
	dry, err := a.patch(ctx, ri, c.send, true)
	if err == nil {
		err = headlessKept(live, c.send)
	}
	if err != nil {
		return a.refused(ctx, ri, c, err)
	}
	if live == nil {
		c.Action, c.Diff, c.Desired = Created, UnifiedDiff(ref, nil, Normalize(dry)), dry
		return c, nil
	}
	result, err := a.predict(ctx, ri, &c, dry)
	if err != nil {
		return Change{}, err
	}
	c.Desired = result
	nl, nd := Normalize(live), Normalize(result)
	if equalObjects(nl, nd) {
		c.Action, c.Generation, c.ResourceVersion, c.Object = Unchanged, live.GetGeneration(), live.GetResourceVersion(), live
		if !c.takeover && !c.handover && c.Note == "" && ownsAsApplied(live, dry) {
			c.Fingerprint = fingerprint(live, c.send)
		}
		return c, nil
	}
	c.Action, c.Diff = Configured, UnifiedDiff(ref, nl, nd)
	return c, nil
}

// fromCache answers for o from the cache when it can (ok): Unchanged when
// its fingerprint holds, without a request; when the cache has no such
// object, the dry run alone: an answer without a resourceVersion is a
// create (the server's dry run of a create stores nothing, so it has
// none), and an error other than Invalid is the object's error whatever
// the live object. Anything else is left to the slow path (ok false): an
// object that exists but is not in the cache is one gitpace adopts (made
// by kubectl, or by another agent), and an object in a Namespace that objs
// create may need the stand-in namespace.
func (a *Applier) fromCache(ctx context.Context, ri dynamic.ResourceInterface, m *meta.RESTMapping, o *unstructured.Unstructured, p *diffPass) (Change, bool, error) {
	ref := RefOf(o)
	lm, synced := p.cache.lookup(ctx, m.Resource, ref.Namespace, ref.Name)
	if !synced {
		return Change{}, false, nil
	}
	send := toSend(o)
	if lm != nil {
		prev := p.fingerprints[ref.Key()]
		if (declaresReplicas(send) && p.hpas.inRevision(ref) != "") || !a.holds(prev, lm, send) {
			return Change{}, false, nil
		}
		c := Change{Ref: ref, Action: Unchanged, Generation: lm.Generation, ResourceVersion: lm.ResourceVersion, Fingerprint: prev}
		if lm.owner != nil {
			owner := *lm.owner
			c.LiveOwner = &owner
		}
		return c, true, nil
	}
	if ref.Namespace != "" && p.newNS[ref.Namespace] {
		return Change{}, false, nil
	}
	dry, err := a.patch(ctx, ri, send, true)
	switch {
	case err != nil && !apierrors.IsInvalid(err):
		return Change{}, true, err
	case err != nil || dry.GetResourceVersion() != "":
		return Change{}, false, nil
	}
	return Change{Ref: ref, Action: Created, Diff: UnifiedDiff(ref, nil, Normalize(dry)), send: send}, true, nil
}

// ownsAsApplied reports whether gitpace's managedFields entry of live has
// the same fields as in dry, the result of applying git's object: gitpace
// owns every field it declares, so a fingerprint of live is sound.
func ownsAsApplied(live, dry *unstructured.Unstructured) bool {
	le, ok1 := gitpaceEntry(live)
	de, ok2 := gitpaceEntry(dry)
	if !ok1 || !ok2 || le.APIVersion != de.APIVersion {
		return false
	}
	ls, err1 := entrySet(le)
	ds, err2 := entrySet(de)
	return err1 == nil && err2 == nil && ls.Equals(ds)
}

// predict returns the object as Apply will leave it, from the forced dry
// run's result: with spec.replicas handed over (kept at the live value) and
// the fields that a takeover makes gitpace remove gone, re-defaulted by the
// server (a dry-run update). It records in c what Apply has to do first.
//
// The removal is predicted with an update, not a server-side apply dry
// run: server-side apply removes only fields its manager owned, and
// gitpace owns the taken-over fields only once takeOver has rewritten
// managedFields, a write a dry run cannot chain into a second request.
func (a *Applier) predict(ctx context.Context, ri dynamic.ResourceInterface, c *Change, dry *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	t, err := a.planTakeover(c.live)
	if err != nil {
		return nil, err
	}
	c.takeover = t != nil
	if c.handover, err = needsHandover(c.live, c.send, t); err != nil {
		return nil, err
	}
	keep := &fieldpath.Set{}
	result := dry
	if c.handover {
		keep.Insert(replicasPath)
		n, _, _ := unstructured.NestedFieldNoCopy(c.live.Object, "spec", "replicas")
		result = dry.DeepCopy()
		if err := unstructured.SetNestedField(result.Object, n, "spec", "replicas"); err != nil {
			return nil, err
		}
	}
	if t == nil {
		return result, nil
	}
	sim, removed, err := a.afterTakeover(t, result, keep)
	if err != nil || !removed {
		return result, err
	}
	sim.SetManagedFields(nil)
	return dryUpdate(ctx, ri, sim, c.live.GetResourceVersion())
}

// dryUpdate dry-runs an update of sim at resourceVersion rv and returns the
// server's result. The update carries a resourceVersion because the API
// server refuses an update without one for custom resources ("must be
// specified for an update": the customresource strategy does not allow
// unconditional updates; built-in kinds mostly do). A conflict (a
// controller wrote the object since it was read: status, a finalizer)
// reads the current resourceVersion and tries again, at most 3 times: a
// dry run changes nothing, so the newest resourceVersion is as good as the
// one read.
func dryUpdate(ctx context.Context, ri dynamic.ResourceInterface, sim *unstructured.Unstructured, rv string) (*unstructured.Unstructured, error) {
	var err error
	for range 3 {
		sim.SetResourceVersion(rv)
		var u *unstructured.Unstructured
		u, err = ri.Update(ctx, sim, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: FieldManager})
		if !apierrors.IsConflict(err) {
			return u, err
		}
		cur, gerr := ri.Get(ctx, sim.GetName(), metav1.GetOptions{})
		if gerr != nil {
			return nil, gerr
		}
		rv = cur.GetResourceVersion()
	}
	return nil, fmt.Errorf("dry run of the takeover: %w", err)
}

// refused handles a dry run the server refused (err). A change it refuses
// only in place, for an existing object that it would accept as new, is an
// *ImmutableError, or, when the object opts in (RecreateAnnotation), a
// Recreated change. Anything else is err.
func (a *Applier) refused(ctx context.Context, ri dynamic.ResourceInterface, c Change, err error) (Change, error) {
	if c.live == nil || !apierrors.IsInvalid(err) || c.Ref.Kind == "Namespace" || c.Ref.Kind == "CustomResourceDefinition" {
		return Change{}, err
	}
	fresh, ferr := validAsNew(ctx, ri, c.send)
	if ferr != nil {
		return Change{}, err // refused as new too: the object itself is invalid
	}
	if !wantsRecreate(c.send) {
		return Change{}, &ImmutableError{Err: err}
	}
	c.Action = Recreated
	c.Note = "re-created (" + RecreateAnnotation + `: "true"), as the server refuses this change in place: ` + SummarizeError(err)
	c.Diff = UnifiedDiff(c.Ref, Normalize(c.live), Normalize(fresh))
	return c, nil
}

// diffStandIn reports an object whose namespace the same revision creates.
// The namespace does not exist yet, so the object is dry-run in
// StandInNamespace instead: schema errors (Invalid, BadRequest) reject the
// revision before anything of it is applied. Anything else is left to the
// apply in the real namespace (which follows its Namespace): refusals that
// depend on the namespace, no stand-in namespace, or an object of the same
// name in it, which the dry run would merge into.
func (a *Applier) diffStandIn(ctx context.Context, o *unstructured.Unstructured, since uint64) (Change, error) {
	ref := RefOf(o)
	created := Change{Ref: ref, Action: Created, Diff: UnifiedDiff(ref, nil, toSend(o)), Desired: toSend(o)}
	if a.StandInNamespace == "" {
		return created, nil
	}
	proxy := o.DeepCopy()
	proxy.SetNamespace(a.StandInNamespace)
	ri, _, err := a.resourceSince(RefOf(proxy), since)
	if err != nil {
		return Change{}, err
	}
	if _, err := ri.Get(ctx, ref.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return created, nil // a namesake there, or no answer: check at apply
	}
	// The diff shows the object as sent: defaults the stand-in namespace
	// would add (LimitRanges) are not the real namespace's.
	switch _, err := a.patch(ctx, ri, proxy, true); {
	case IsSchemaError(err):
		// Schema errors are the same in any namespace. Refusals that depend
		// on the namespace (RBAC, quotas, admission selecting namespaces)
		// are left to the apply, in the real one.
		return Change{}, fmt.Errorf("server dry run (in namespace %s, standing in for %s, which this revision creates): %w", a.StandInNamespace, ref.Namespace, err)
	default:
		return created, nil
	}
}

// Apply server-side-applies the objects whose entry in diff is not
// Unchanged, Namespaces and CRDs first, and returns the resulting
// ChangeSet. With a nil diff it diffs first.
//
// Objects are applied Concurrency at a time within a rank: every Namespace,
// then every CRD (and, before the rest, until they are Established), then
// the rest. At the first error no further object is started; Apply waits
// for those in flight and returns, in order, every change that was made
// (a caller undoing a partly applied revision needs them all) and the error
// of the first failed object in order. Each applied change carries its
// Fingerprint.
//
// Per object, as Diff planned it: a Recreated object is deleted, and
// created once gone; fields of TakeoverManagers are first taken over (a
// write of managedFields only, takeOver); spec.replicas is handed over
// before an apply that drops it (handOver); then the forced apply.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured, diff ChangeSet) (ChangeSet, error) {
	if diff == nil {
		// Objects the diff refuses are applied as they are, and refused
		// again with the server's reason.
		diff, _ = a.Diff(ctx, objs)
	}
	planned := map[string]Change{}
	for _, c := range diff {
		planned[c.Ref.Key()] = c
	}
	var out ChangeSet
	var crds []string // applied CRDs not yet known Established
	ordered := order(objs)
	since := a.discoveryEpoch()
	for start := 0; start < len(ordered); {
		end := start + 1
		for end < len(ordered) && rank(ordered[end]) == rank(ordered[start]) {
			end++
		}
		group := ordered[start:end]
		start = end
		if len(crds) > 0 && rank(group[0]) == 2 {
			if err := a.waitEstablished(ctx, crds); err != nil {
				return out, err
			}
			crds, since = nil, a.discoveryEpoch()
		}
		done := make([]*Change, len(group))
		errs := make([]error, len(group))
		a.each(len(group), true, func(i int) error {
			c, err := a.applyPlanned(ctx, group[i], planned, since)
			if err != nil {
				errs[i] = err
				return err
			}
			done[i] = &c
			return nil
		})
		for i, c := range done {
			if c == nil {
				continue
			}
			out = append(out, *c)
			if c.Action != Unchanged && group[i].GetKind() == "CustomResourceDefinition" {
				crds = append(crds, group[i].GetName())
			}
		}
		for _, err := range errs {
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// applyPlanned applies o as planned (an Unchanged entry is returned as it
// is; an object the diff did not plan is applied as Configured).
func (a *Applier) applyPlanned(ctx context.Context, o *unstructured.Unstructured, planned map[string]Change, since uint64) (Change, error) {
	ref := RefOf(o)
	c, ok := planned[ref.Key()]
	if ok && c.Action == Unchanged {
		return c, nil
	}
	if !ok {
		c = Change{Ref: ref, Action: Configured}
	}
	if c.send == nil {
		c.send = toSend(o)
	}
	res, err := a.applyOne(ctx, c, since)
	if err != nil {
		return Change{}, a.objectError(ctx, ref, o, err)
	}
	c.Generation, c.ResourceVersion, c.Object = res.GetGeneration(), res.GetResourceVersion(), res
	c.Fingerprint = fingerprint(res, c.send)
	c.send, c.live = nil, nil
	return c, nil
}

func (a *Applier) applyOne(ctx context.Context, c Change, since uint64) (*unstructured.Unstructured, error) {
	ri, _, err := a.resourceSince(c.Ref, since)
	if err != nil {
		return nil, err
	}
	live := c.live
	switch {
	case c.Action == Recreated:
		if err := a.recreate(ctx, ri, live); err != nil {
			return nil, err
		}
	case c.takeover:
		if live, err = a.takeOver(ctx, ri, c.Ref.Name); err != nil {
			return nil, err
		}
	}
	if c.handover && live != nil {
		if err := a.handOver(ctx, ri, live); err != nil {
			return nil, err
		}
	}
	return a.patch(ctx, ri, c.send, false)
}

// takeOver gives gitpace's manager the fields of TakeoverManagers (and, for
// a Secret, data keys it applied as stringData), with a JSON patch of
// managedFields read just before (takeover.patch); a conflict (the object
// changed in between) reads again, at most 3 times. It returns the object
// afterwards.
func (a *Applier) takeOver(ctx context.Context, ri dynamic.ResourceInterface, name string) (*unstructured.Unstructured, error) {
	var err error
	for range 3 {
		var live *unstructured.Unstructured
		if live, err = ri.Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil, err
		}
		t, perr := a.planTakeover(live)
		if perr != nil || t == nil {
			return live, perr
		}
		body, perr := t.patch(live)
		if perr != nil {
			return nil, perr
		}
		u, err := ri.Patch(ctx, name, types.JSONPatchType, body, metav1.PatchOptions{FieldManager: FieldManager})
		if err == nil {
			return u, nil
		}
		if !apierrors.IsConflict(err) {
			return nil, fmt.Errorf("taking over fields of %s: %w", strings.Join(a.TakeoverManagers, ", "), err)
		}
	}
	return nil, fmt.Errorf("taking over fields: %w", err)
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// waitEstablished waits (up to 30s) until the named CRDs are Established,
// then refreshes discovery so their kinds map: custom resources of a CRD in
// the same revision are applied only after it serves them.
func (a *Applier) waitEstablished(ctx context.Context, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, name := range names {
		for {
			u, err := a.dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err == nil && crdEstablished(u) {
				break
			}
			select {
			case <-ctx.Done():
				return &ObjectError{Ref: ObjectRef{Group: crdGVR.Group, Version: "v1", Kind: "CustomResourceDefinition", Name: name},
					Err: fmt.Errorf("not Established after 30s: %w", ctx.Err())}
			case <-time.After(200 * time.Millisecond): // polling the CRD's condition
			}
		}
	}
	a.resetDiscovery()
	return nil
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// toSend returns o as it is sent to the cluster: without the source
// annotations (SourceAnnotation, ReadFromAnnotation: they are for error
// messages), a Secret's stringData as data (withDataOnly).
func toSend(o *unstructured.Unstructured) *unstructured.Unstructured {
	ann := o.GetAnnotations()
	_, src := ann[SourceAnnotation]
	_, read := ann[ReadFromAnnotation]
	if src || read {
		o = o.DeepCopy()
		delete(ann, SourceAnnotation)
		delete(ann, ReadFromAnnotation)
		o.SetAnnotations(ann)
	}
	return withDataOnly(o)
}

func (a *Applier) patch(ctx context.Context, ri dynamic.ResourceInterface, o *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	o = toSend(o)
	body, err := json.Marshal(o.Object)
	if err != nil {
		return nil, err
	}
	ctx = withSecrets(ctx, o)
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Patch(ctx, o.GetName(), types.ApplyPatchType, body, opts)
}

// objectError is the error err about object ref (o: the object as sent, nil
// when none was). For a Secret, the values of o and of the live object are
// redacted from err (RedactSecretError): an API server's refusal may echo
// them (a failed typed conversion prints the value, an admission policy's
// message may print the object), and the error goes to status, history,
// stdout and the logs.
func (a *Applier) objectError(ctx context.Context, ref ObjectRef, o *unstructured.Unstructured, err error) *ObjectError {
	e := &ObjectError{Ref: ref, Err: err}
	if o != nil {
		e.File = SourceOf(o)
	}
	if IsSecret(ref) {
		// The live object's values too (an old value, kubectl's
		// last-applied copy); if it cannot be read, o's are still redacted.
		live, _ := a.Get(ctx, ref)
		e.Err = RedactSecretError(err, o, live)
	}
	return e
}

// Get reads one live object (nil, nil when it does not exist).
func (a *Applier) Get(ctx context.Context, ref ObjectRef) (*unstructured.Unstructured, error) {
	ri, _, err := a.resource(ref)
	if err != nil {
		return nil, err
	}
	u, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// SetPaused sets spec.paused on a Deployment with a merge patch under the
// PauseFieldManager (exactly what `kubectl rollout pause|resume` does). A
// missing Deployment is not an error.
// It returns the Deployment's generation after the patch (0 when missing).
func (a *Applier) SetPaused(ctx context.Context, ref ObjectRef, paused bool) (int64, error) {
	ri, _, err := a.resource(ref)
	if err != nil {
		return 0, err
	}
	body := fmt.Sprintf(`{"spec":{"paused":%t}}`, paused)
	u, err := ri.Patch(ctx, ref.Name, types.MergePatchType, []byte(body), metav1.PatchOptions{FieldManager: PauseFieldManager})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, &ObjectError{Ref: ref, Err: err}
	}
	return u.GetGeneration(), nil
}
