package appliers_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/appliers"
)

// requestLog records the API requests of a client, but not watches (the
// cache's informers keep one open per resource), and the most dry runs and
// the most applies it had in flight at once.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "GET configmaps/web", "PATCH configmaps/web (dry run)"

	dryRuns, applies       atomic.Int64
	maxDryRuns, maxApplies atomic.Int64
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		q := r.URL.Query()
		if q.Get("watch") == "true" {
			return rt.RoundTrip(r)
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		what := r.Method + " " + strings.Join(parts[max(len(parts)-2, 0):], "/")
		if q.Has("dryRun") {
			what += " (dry run)"
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, what)
		l.mu.Unlock()
		if r.Method == http.MethodPatch {
			n, peak := &l.applies, &l.maxApplies
			if q.Has("dryRun") {
				n, peak = &l.dryRuns, &l.maxDryRuns
			}
			now := n.Add(1)
			defer n.Add(-1)
			for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
			}
		}
		return rt.RoundTrip(r)
	})
}

// take returns the requests so far and forgets them.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reqs
	l.reqs = nil
	return out
}

// newCacheRig is newRig with an applier that keeps a cache (Agent set) and
// whose requests are logged.
func newCacheRig(t *testing.T) (*rig, *requestLog) {
	t.Helper()
	log := &requestLog{}
	r := newRigWrapped(t, log.wrap)
	r.ap.Agent = "c-" + r.ns // the informers see this test's objects only
	t.Cleanup(r.ap.Close)
	return r, log
}

// webApp is a ConfigMap, a Secret (stringData), a Service and a Deployment.
const webApp = `apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data: {LOG_LEVEL: info}
---
apiVersion: v1
kind: Secret
metadata: {name: web}
stringData: {PASSWORD: hunter2}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: example/web:v1}]
`

// stamped parses docs (YAML separated by ---), labels each object with
// the rig's agent and annotates it with app "web", as the agent does, and
// prepares them.
func (r *rig) stamped(docs string) []*unstructured.Unstructured {
	r.t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(docs, "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			r.t.Fatal(err)
		}
		u.SetLabels(map[string]string{appliers.AgentLabel: r.ap.Agent})
		u.SetAnnotations(map[string]string{appliers.AppAnnotation: "web"})
		out = append(out, u)
	}
	if err := r.ap.Prepare(out); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// applyCached diffs and applies objs, waits until the cache holds every
// object as live, and returns the fingerprints of the apply.
func (r *rig) applyCached(objs []*unstructured.Unstructured) map[string]string {
	r.t.Helper()
	ctx := context.Background()
	diff, err := r.ap.Diff(ctx, objs)
	if err != nil {
		r.t.Fatal(err)
	}
	applied, err := r.ap.Apply(ctx, objs, diff)
	if err != nil {
		r.t.Fatal(err)
	}
	fps := map[string]string{}
	for _, c := range applied {
		if c.Fingerprint == "" {
			r.t.Fatalf("%s applied without a fingerprint", c.Ref)
		}
		fps[c.Ref.Key()] = c.Fingerprint
	}
	for _, o := range objs {
		r.waitCached(appliers.RefOf(o))
	}
	return fps
}

// waitCached waits until the cache holds ref as the API server has it
// (the same resourceVersion; "" for absent).
func (r *rig) waitCached(ref appliers.ObjectRef) {
	r.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for {
		live := ""
		if u, err := r.ap.Get(ctx, ref); err != nil {
			r.t.Fatal(err)
		} else if u != nil {
			live = u.GetResourceVersion()
		}
		cached := r.ap.CachedResourceVersion(ctx, ref)
		if cached == live {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: cache holds resourceVersion %q, the server %q after 15s", ref, cached, live)
		}
		time.Sleep(20 * time.Millisecond) // polling the cache
	}
}

// diffAll diffs objs with fps and returns the changes by object key.
func (r *rig) diffAll(objs []*unstructured.Unstructured, fps map[string]string) map[string]appliers.Change {
	r.t.Helper()
	diff, err := r.ap.Diff(context.Background(), objs, appliers.WithFingerprints(fps))
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]appliers.Change{}
	for _, c := range diff {
		out[c.Ref.Kind] = c
	}
	return out
}

// TestCacheUnchangedNoRequest (issue 9): an object diffed twice after an
// apply: the first diff (no fingerprints: GET and dry run) finds every
// object Unchanged and gives the fingerprints the apply gave; the second,
// handed them, makes no request at all, a Deployment whose status the
// controller writes included.
func TestCacheUnchangedNoRequest(t *testing.T) {
	r, log := newCacheRig(t)
	objs := r.stamped(webApp)
	applied := r.applyCached(objs)

	log.take()
	first := r.diffAll(objs, nil)
	if reqs := log.take(); len(reqs) < 2*len(objs) {
		t.Errorf("first diff without fingerprints made %d requests, want a GET and a dry run per object: %v", len(reqs), reqs)
	}
	fps := map[string]string{}
	for kind, c := range first {
		if c.Action != appliers.Unchanged {
			t.Errorf("first diff: %s %s, want unchanged:\n%s", kind, c.Action, c.Diff)
		}
		if c.Fingerprint != applied[c.Ref.Key()] {
			t.Errorf("first diff: %s fingerprint %q, want the apply's %q", kind, c.Fingerprint, applied[c.Ref.Key()])
		}
		fps[c.Ref.Key()] = c.Fingerprint
	}

	second := r.diffAll(objs, fps)
	if reqs := log.take(); len(reqs) != 0 {
		t.Errorf("second diff made %d requests, want 0: %v", len(reqs), reqs)
	}
	for kind, c := range second {
		if c.Action != appliers.Unchanged || c.Fingerprint != fps[c.Ref.Key()] {
			t.Errorf("second diff: %s %s fingerprint %q, want unchanged with %q", kind, c.Action, c.Fingerprint, fps[c.Ref.Key()])
		}
	}
	want := appliers.Owner{Agent: r.ap.Agent, App: "web"}
	if c := second["Deployment"]; c.Generation != 1 || c.LiveOwner == nil || *c.LiveOwner != want {
		t.Errorf("Deployment from the cache: generation %d, owner %v; want 1 and %v", c.Generation, c.LiveOwner, want)
	}
}

// TestCacheOtherManagerChangesOwnedField (issue 9): an Update by another
// field manager (not one gitpace takes over) that changes a value gitpace
// applied moves that field to the writer; the fingerprint no longer holds,
// and the diff finds the drift, reading only that object.
func TestCacheOtherManagerChangesOwnedField(t *testing.T) {
	r, log := newCacheRig(t)
	objs := r.stamped(webApp)
	fps := r.applyCached(objs)
	ctx := context.Background()

	cm, err := r.kube.CoreV1().ConfigMaps(r.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["LOG_LEVEL"] = "debug"
	if _, err := r.kube.CoreV1().ConfigMaps(r.ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "some-operator"}); err != nil {
		t.Fatal(err)
	}
	r.waitCached(appliers.RefOf(objs[0]))

	log.take()
	got := r.diffAll(objs, fps)
	if c := got["ConfigMap"]; c.Action != appliers.Configured || !strings.Contains(c.Diff, "-  LOG_LEVEL: debug") {
		t.Errorf("ConfigMap: %s, want configured back to info:\n%s", c.Action, c.Diff)
	}
	for _, kind := range []string{"Secret", "Service", "Deployment"} {
		if got[kind].Action != appliers.Unchanged {
			t.Errorf("%s: %s, want unchanged", kind, got[kind].Action)
		}
	}
	for _, req := range log.take() {
		if !strings.HasSuffix(strings.TrimSuffix(req, " (dry run)"), "configmaps/web") {
			t.Errorf("request %q: only the changed ConfigMap is read", req)
		}
	}
}

// TestCacheDeletedBehindBack (issue 9): an object deleted behind gitpace's
// back leaves the cache; the diff reports it Created, from the dry run
// alone (no GET).
func TestCacheDeletedBehindBack(t *testing.T) {
	r, log := newCacheRig(t)
	objs := r.stamped(webApp)
	fps := r.applyCached(objs)
	if err := r.kube.CoreV1().Services(r.ns).Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitCached(appliers.RefOf(objs[2]))

	log.take()
	got := r.diffAll(objs, fps)
	if c := got["Service"]; c.Action != appliers.Created {
		t.Errorf("Service: %s, want created:\n%s", c.Action, c.Diff)
	}
	if reqs := log.take(); !slices.Equal(reqs, []string{"PATCH services/web (dry run)"}) {
		t.Errorf("requests %v, want only the Service's dry run", reqs)
	}
}

// TestCacheForeignLabelUnchanged (issue 9): a label that another manager
// adds (a field gitpace does not own) is no drift, and costs no request.
func TestCacheForeignLabelUnchanged(t *testing.T) {
	r, log := newCacheRig(t)
	objs := r.stamped(webApp)
	fps := r.applyCached(objs)
	if _, err := r.kube.CoreV1().ConfigMaps(r.ns).Patch(context.Background(), "web", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"team":"payments"}}}`), metav1.PatchOptions{FieldManager: "some-operator"}); err != nil {
		t.Fatal(err)
	}
	r.waitCached(appliers.RefOf(objs[0]))

	log.take()
	for kind, c := range r.diffAll(objs, fps) {
		if c.Action != appliers.Unchanged {
			t.Errorf("%s: %s, want unchanged:\n%s", kind, c.Action, c.Diff)
		}
	}
	if reqs := log.take(); len(reqs) != 0 {
		t.Errorf("diff made %d requests, want 0: %v", len(reqs), reqs)
	}
	// The slow path agrees: the label is another manager's.
	for kind, c := range r.diffAll(objs, nil) {
		if c.Action != appliers.Unchanged {
			t.Errorf("without fingerprints: %s: %s, want unchanged:\n%s", kind, c.Action, c.Diff)
		}
	}
}

// TestDiffAndApplyConcurrent (issue 9): the dry runs of an app of 20
// ConfigMaps run in parallel; the errors of its 2 invalid ones are both
// reported, in input order; the 18 others are then applied in parallel and
// reported in input order.
func TestDiffAndApplyConcurrent(t *testing.T) {
	r, log := newCacheRig(t)
	var docs []string
	for i := range 20 {
		key := "KEY"
		if i == 4 || i == 13 {
			key = "not a key!" // Invalid: a ConfigMap key must be a valid file name
		}
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%02d}\ndata: {%q: v}", i, key))
	}
	objs := r.stamped(strings.Join(docs, "\n---\n"))
	ctx := context.Background()

	diff, err := r.ap.Diff(ctx, objs)
	if err == nil {
		t.Fatal("diff of 2 invalid ConfigMaps succeeded")
	}
	var refs []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		refs = append(refs, e.(*appliers.ObjectError).Ref.Name)
	}
	if want := []string{"cm-04", "cm-13"}; !slices.Equal(refs, want) {
		t.Errorf("errors for %v, want %v: %v", refs, want, err)
	}
	if len(diff) != 18 {
		t.Errorf("%d changes, want 18", len(diff))
	}
	if n := log.maxDryRuns.Load(); n < 2 {
		t.Errorf("at most %d dry run in flight, want several", n)
	}

	valid := slices.DeleteFunc(slices.Clone(objs), func(o *unstructured.Unstructured) bool {
		return o.GetName() == "cm-04" || o.GetName() == "cm-13"
	})
	applied, err := r.ap.Apply(ctx, valid, diff)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for i, c := range applied {
		got = append(got, c.Ref.Name+" "+string(c.Action))
		want = append(want, valid[i].GetName()+" created")
	}
	if !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	if n := log.maxApplies.Load(); n < 2 {
		t.Errorf("at most %d apply in flight, want several", n)
	}
	list, err := r.kube.CoreV1().ConfigMaps(r.ns).List(ctx, metav1.ListOptions{LabelSelector: appliers.AgentLabel})
	if err != nil || len(list.Items) != 18 {
		t.Errorf("%d ConfigMaps in the cluster (%v), want 18", len(list.Items), err)
	}
}

// TestCacheForgetsUnservedResource: when a CRD is deleted, the cache's
// informer for its custom resources stops (rather than failing to list
// for ever) and is forgotten, so that a later CRD of that name starts anew.
func TestCacheForgetsUnservedResource(t *testing.T) {
	r, _ := newCacheRig(t)
	group := strings.ReplaceAll(r.ns, "-", "") + ".gitpace.dev" // a CRD of the test's own
	objs := r.stamped(fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.%[1]s}
spec:
  group: %[1]s
  names: {kind: Gadget, plural: gadgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: %[1]s/v1
kind: Gadget
metadata: {name: g}`, group))
	r.applyCached(objs)
	crds := r.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	cleanup := func() { _ = crds.Delete(context.Background(), "gadgets."+group, metav1.DeleteOptions{}) }
	t.Cleanup(cleanup)
	if !slices.Contains(r.ap.CachedResources(), "gadgets."+group) {
		t.Fatalf("cached resources %v: no gadgets", r.ap.CachedResources())
	}
	cleanup()
	deadline := time.Now().Add(30 * time.Second)
	for slices.Contains(r.ap.CachedResources(), "gadgets."+group) {
		if time.Now().After(deadline) {
			t.Fatal("the informer of the deleted CRD's resource still runs after 30s")
		}
		time.Sleep(50 * time.Millisecond) // polling the cache's informers
	}
}

// TestDiscoveryRefreshedOncePerDiff (issue 9): ten custom resources of a
// kind whose CRD the same revision brings (not applied yet) are reported
// Created, and discovery is asked again once for the whole Diff, not once
// per object.
func TestDiscoveryRefreshedOncePerDiff(t *testing.T) {
	r, log := newCacheRig(t)
	docs := []string{`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.cache.test.gitpace.dev}
spec:
  group: cache.test.gitpace.dev
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}`}
	for i := range 10 {
		docs = append(docs, fmt.Sprintf("apiVersion: cache.test.gitpace.dev/v1\nkind: Widget\nmetadata: {name: w-%d}", i))
	}
	objs := r.stamped(strings.Join(docs, "\n---\n"))
	log.take()
	diff, err := r.ap.Diff(context.Background(), objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range diff {
		if c.Action != appliers.Created {
			t.Errorf("%s: %s, want created", c.Ref, c.Action)
		}
	}
	discovery := 0
	for _, req := range log.take() {
		if req == "GET api" || req == "GET apis" || strings.HasPrefix(req, "GET apis/") {
			discovery++
		}
	}
	if len(diff) != 11 || discovery > 2 {
		t.Errorf("%d changes with %d discovery requests, want 11 with at most 2 (/api and /apis once)", len(diff), discovery)
	}
}
