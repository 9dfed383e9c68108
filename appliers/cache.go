package appliers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// Live state from watches, and fingerprints.
//
// An Applier whose Agent is set keeps a cache of the objects that agent
// manages, fed by client-go metadata informers
// (k8s.io/client-go/metadata/metadatainformer): one per
// GroupVersionResource, started the first time an object of that resource
// is diffed (Diff waits for its first list at most CacheSyncTimeout, then
// diffs without it), listing and watching only objects labelled
// AgentLabel=Agent, cluster-wide. Metadata and not full objects, because
// everything the cache is asked is in metadata: is the object there, with
// which uid, and has anyone but gitpace written a field gitpace owns
// (metadata.managedFields). A Transform keeps of each object only its name,
// namespace, uid, resourceVersion, generation, Owner, a hash of gitpace's
// managedFields entry and the names of the other managers: well under 1 KiB
// an object whatever its size (with the informer's index, 3,000 objects
// take a few MiB). Close stops the informers.
//
// A Fingerprint is recorded for each object gitpace applies (Change.
// Fingerprint; the agent keeps them in its state and hands them back with
// WithFingerprints): the object's uid, a hash of gitpace's own
// managedFields entry (manager FieldManager, operation Apply, no
// subresource; its apiVersion, time and field set) and a hash of the object
// as sent. Diff then reports an object Unchanged without any request when
// the cache holds it with the same uid and the same hash of gitpace's entry,
// no entry of a TakeoverManagers manager (and, for a Secret, no stringData
// field in gitpace's entry: takeover.go), and git's object hashes the same.
//
// Why that is enough: with server-side apply every write to an object's main
// resource goes through field management, and a write by another manager
// that changes a field gitpace owns moves that field to the writer (an
// Update takes the fields it changes; an Apply that conflicts must force,
// and then takes them; a removal drops the field from every set), which
// changes gitpace's entry. Writes to fields gitpace does not own (a label
// added by a controller, status, the scale subresource's share of
// spec.replicas) leave it alone, and are no drift either: the dry run would
// report them unchanged. A slow-path diff that finds an object Unchanged
// records a fingerprint only when the forced dry run gives gitpace's entry
// exactly the fields it has live, so that gitpace owns all it declares.
//
// Limits, where Diff therefore always asks the server:
//   - objects without a fingerprint, or not (yet) in the cache: the GET and
//     dry run of the slow path (a cold create, absent from the cache, pays
//     only the dry run, whose answer without a resourceVersion proves the
//     object absent: an object the dry run finds is read and diffed as
//     before, e.g. one that kubectl made and gitpace adopts);
//   - a workload that the revision's HPA targets, or whose spec.replicas an
//     HPA took (gitpace then sends it without spec.replicas: the hash of
//     what was sent is not git's), so hand-overs and their notes are
//     decided by the slow path;
//   - a Secret's content hash is keyed with a random key of the process
//     (HMAC-SHA-256), so that a state ConfigMap never holds a digest of a
//     value one could guess offline; after a restart each Secret is diffed
//     the slow way once.
//
// What the cache cannot see: a change made without field management (a
// direct etcd write, a managedFields entry rewritten by hand to keep
// gitpace's), a mutating webhook that changes a field gitpace owns during
// another writer's request without that being recorded, and events not yet
// delivered: the cache lags the API server by a watch event, so a diff run
// because the agent's own watch saw a change should pass no fingerprints.
// Two writes by gitpace's manager within the same second with the same field
// set (two agents fighting over an object) hash alike; the agent label
// makes that a takeover that the slow path reports.

// CacheSyncTimeout bounds how long a Diff waits for a resource's informer to
// list its objects the first time; after it, the resource's objects are
// diffed with requests until the informer has synced.
var CacheSyncTimeout = 10 * time.Second

// liveCache holds one metadata informer per resource.
type liveCache struct {
	md       metadata.Interface
	selector string

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]*resourceInformer
	// deleted, when set, is told the owner of every cached object that is
	// deleted (by hand, by a controller, or by gitpace's own prune).
	deleted func(Owner)
}

type resourceInformer struct {
	inf      cache.SharedIndexInformer
	synced   chan struct{}   // closed once the first list is in
	deadline time.Time       // first lookups wait for synced until then
	ctx      context.Context // ends when the informer stops
	stop     context.CancelFunc
}

func newLiveCache(md metadata.Interface, agent string) *liveCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &liveCache{md: md, selector: AgentLabel + "=" + agent, ctx: ctx, cancel: cancel,
		informers: map[schema.GroupVersionResource]*resourceInformer{}}
}

// lookup returns the cached object (nil when absent) and whether the cache
// of gvr has synced, starting its informer if needed. It waits for the
// first sync only until the informer's deadline.
func (c *liveCache) lookup(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*liveMeta, bool) {
	if c.ctx.Err() != nil {
		return nil, false
	}
	r := c.informer(gvr)
	select {
	case <-r.synced:
	default:
		t := time.NewTimer(time.Until(r.deadline))
		defer t.Stop()
		select {
		case <-r.synced:
		case <-t.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		case <-r.ctx.Done():
			return nil, false
		}
	}
	if r.ctx.Err() != nil {
		return nil, false // stopped: Close, or its resource is no longer served
	}
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	obj, ok, err := r.inf.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil, true
	}
	m, _ := obj.(*liveMeta)
	return m, true
}

func (c *liveCache) informer(gvr schema.GroupVersionResource) *resourceInformer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.informers[gvr]; ok {
		return r
	}
	inf := metadatainformer.NewFilteredMetadataInformer(c.md, gvr, metav1.NamespaceAll, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = c.selector }).Informer()
	secrets := gvr.Group == "" && gvr.Resource == "secrets"
	_ = inf.SetTransform(func(obj any) (any, error) { return slim(obj, secrets), nil })
	if c.deleted != nil {
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if m, ok := obj.(*liveMeta); ok && m.owner != nil {
				c.deleted(*m.owner)
			}
		}})
	}
	ctx, stop := context.WithCancel(c.ctx)
	r := &resourceInformer{inf: inf, synced: make(chan struct{}), deadline: time.Now().Add(CacheSyncTimeout), ctx: ctx, stop: stop}
	// A resource no longer served (its CRD deleted) stops its informer
	// instead of failing for ever: a later diff of that kind starts anew.
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, rf *cache.Reflector, err error) {
		if apierrors.IsNotFound(err) {
			c.drop(gvr, r)
			return
		}
		cache.DefaultWatchErrorHandler(ctx, rf, err)
	})
	c.informers[gvr] = r
	go inf.Run(ctx.Done())
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			close(r.synced)
		}
	}()
	return r
}

// drop stops r, gvr's informer, and forgets it.
func (c *liveCache) drop(gvr schema.GroupVersionResource, r *resourceInformer) {
	c.mu.Lock()
	if c.informers[gvr] == r {
		delete(c.informers, gvr)
	}
	c.mu.Unlock()
	r.stop()
}

func (c *liveCache) close() { c.cancel() }

// liveMeta is what the cache keeps of an object.
type liveMeta struct {
	metav1.TypeMeta
	// ObjectMeta holds name, namespace, uid, resourceVersion, generation
	// and deletionTimestamp only.
	metav1.ObjectMeta
	// owner is the Owner the object names (OwnerOf), nil when none.
	owner *Owner
	// ownFields is entryHash of gitpace's managedFields entry ("" without).
	ownFields string
	// managers are the other managers of the main resource.
	managers []string
	// ownStringData: a Secret whose gitpace entry owns stringData fields.
	ownStringData bool
}

func (m *liveMeta) DeepCopyObject() runtime.Object {
	c := *m
	c.ObjectMeta = *m.ObjectMeta.DeepCopy()
	c.managers = slices.Clone(m.managers)
	if m.owner != nil {
		o := *m.owner
		c.owner = &o
	}
	return &c
}

// slim is the informers' Transform: a *metav1.PartialObjectMetadata becomes
// a *liveMeta; anything else (already slim, a tombstone) is kept.
func slim(obj any, secret bool) any {
	p, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj
	}
	m := &liveMeta{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID,
		ResourceVersion: p.ResourceVersion, Generation: p.Generation, DeletionTimestamp: p.DeletionTimestamp}}
	if owner, ok := OwnerOf(p); ok {
		m.owner = &owner
	}
	for _, e := range p.ManagedFields {
		switch {
		case isGitpaceEntry(e) && m.ownFields == "":
			m.ownFields = entryHash(e)
			if secret && e.FieldsV1 != nil {
				if s, err := entrySet(e); err != nil || !under(s, stringDataPE).Empty() {
					m.ownStringData = true // unreadable counts as owned: the slow path decides
				}
			}
		case e.Subresource == "":
			m.managers = append(m.managers, e.Manager)
		}
	}
	return m
}

// entryHash hashes a managedFields entry's apiVersion, time and field set.
func entryHash(e metav1.ManagedFieldsEntry) string {
	h := sha256.New()
	h.Write([]byte(e.APIVersion + "\n"))
	if e.Time != nil {
		h.Write([]byte(e.Time.UTC().Format(time.RFC3339)))
	}
	h.Write([]byte("\n"))
	if e.FieldsV1 != nil {
		h.Write(e.FieldsV1.Raw)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// gitpaceEntry returns gitpace's managedFields entry of u.
func gitpaceEntry(u metav1.Object) (metav1.ManagedFieldsEntry, bool) {
	for _, e := range u.GetManagedFields() {
		if isGitpaceEntry(e) {
			return e, true
		}
	}
	return metav1.ManagedFieldsEntry{}, false
}

// fingerprintKey keys the content hash of Secrets (see above); random per
// process.
var fingerprintKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go 1.24+)
	return k
}()

// contentHash hashes send, the object as sent; a Secret's with
// fingerprintKey.
func contentHash(send *unstructured.Unstructured) string {
	b, err := json.Marshal(send.Object) // map keys sorted
	if err != nil {
		return ""
	}
	var sum []byte
	if isSecret(send) {
		m := hmac.New(sha256.New, fingerprintKey)
		m.Write(b)
		sum = m.Sum(nil)
	} else {
		s := sha256.Sum256(b)
		sum = s[:]
	}
	return hex.EncodeToString(sum[:16])
}

// fingerprint of live (its gitpace entry) applied as send; "" when live has
// no gitpace entry.
func fingerprint(live metav1.Object, send *unstructured.Unstructured) string {
	e, ok := gitpaceEntry(live)
	if !ok || live.GetUID() == "" {
		return ""
	}
	content := contentHash(send)
	if content == "" {
		return ""
	}
	return strings.Join([]string{string(live.GetUID()), entryHash(e), content}, "/")
}

// holds reports whether prev, a Fingerprint, still describes the cached
// object m with git's object as sent: see the comment above.
func (a *Applier) holds(prev string, m *liveMeta, send *unstructured.Unstructured) bool {
	if prev == "" || m == nil || m.ownFields == "" || m.ownStringData {
		return false
	}
	for _, mgr := range m.managers {
		if mgr != FieldManager && slices.Contains(a.TakeoverManagers, mgr) {
			return false
		}
	}
	want := strings.Join([]string{string(m.UID), m.ownFields, ""}, "/")
	return strings.HasPrefix(prev, want) && prev == want+contentHash(send)
}

// DiffOption changes what one Diff does.
type DiffOption func(*diffOptions)

type diffOptions struct {
	fingerprints map[string]string
}

// WithFingerprints hands Diff the fingerprints recorded for the objects
// (by ObjectRef.Key; Change.Fingerprint of the last apply): an object whose
// fingerprint still holds is Unchanged without a request (see cache.go).
// Pass none when the diff is run because a watch saw an object change.
func WithFingerprints(fps map[string]string) DiffOption {
	return func(o *diffOptions) { o.fingerprints = fps }
}

// Close stops the cache's informers. The Applier stays usable: Diff then
// asks the server for every object.
func (a *Applier) Close() {
	a.cacheOnce.Do(func() {}) // no cache starts after Close
	if a.cache != nil {
		a.cache.close()
	}
}

// liveCache returns the Applier's cache, nil when it keeps none (no Agent,
// or Closed).
func (a *Applier) liveCache() *liveCache {
	a.cacheOnce.Do(func() {
		if a.Agent != "" {
			a.cache = newLiveCache(a.meta, a.Agent)
			a.cache.deleted = a.OnDeleted
		}
	})
	return a.cache
}

// statusless are kinds without a status or conditions: kstatus reads them
// Current, Terminating while they are being deleted. Their health needs
// nothing beyond what the cache holds.
var statusless = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}: true, {Kind: "Secret"}: true, {Kind: "ServiceAccount"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}: true, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}: true, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
}

// CachedObject returns the live object as the live-object cache holds
// it (apiVersion, kind, namespace, name, uid, deletionTimestamp; no spec,
// no status), with no request; ok is false when the cache does not hold
// it (not synced, not labelled by this agent, or absent).
func (a *Applier) CachedObject(ctx context.Context, ref ObjectRef) (*unstructured.Unstructured, bool) {
	c := a.liveCache()
	if c == nil {
		return nil, false
	}
	m, err := a.Mapping(ref)
	if err != nil {
		return nil, false
	}
	lm, synced := c.lookup(ctx, m.Resource, ref.Namespace, ref.Name)
	if !synced || lm == nil {
		return nil, false
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(m.GroupVersionKind.GroupVersion().String())
	u.SetKind(ref.Kind)
	u.SetNamespace(lm.Namespace)
	u.SetName(lm.Name)
	u.SetUID(lm.UID)
	if lm.DeletionTimestamp != nil {
		u.SetDeletionTimestamp(lm.DeletionTimestamp)
	}
	return u, true
}

// HealthObject returns the live object as health (kstatus) needs it, nil
// when it does not exist. For a statusless kind held in the cache the
// cached metadata stands in (CachedObject), with no request; anything
// else is read (Get).
func (a *Applier) HealthObject(ctx context.Context, ref ObjectRef) (*unstructured.Unstructured, error) {
	if statusless[schema.GroupKind{Group: ref.Group, Kind: ref.Kind}] {
		if u, ok := a.CachedObject(ctx, ref); ok {
			return u, nil
		}
	}
	return a.Get(ctx, ref)
}

// healthOnly adapts HealthObject to health.Getter's Get.
type healthOnly struct{ a *Applier }

func (h healthOnly) Get(ctx context.Context, ref ObjectRef) (*unstructured.Unstructured, error) {
	return h.a.HealthObject(ctx, ref)
}

// HealthGetter is a health.Getter that reads through HealthObject.
func (a *Applier) HealthGetter() interface {
	Get(ctx context.Context, ref ObjectRef) (*unstructured.Unstructured, error)
} {
	return healthOnly{a}
}
