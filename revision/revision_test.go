package revision

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/manifest"
	"github.com/gitpace/gitpace/state"
)

// load parses files (relative to the source path "apps") as the agent does.
func load(files map[string]string) []manifest.App {
	snap := &sources.Snapshot{Path: "apps", Files: map[string][]byte{}}
	for name, text := range files {
		snap.Files[name] = []byte(text)
	}
	return manifest.Load(snap)
}

// prepareIn is a Prepare without a cluster: namespaced objects without a
// namespace get ns, the cluster-scoped kinds listed lose a stray one, and
// kind Unknown is not served.
func prepareIn(ns string) func([]*unstructured.Unstructured) error {
	clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true}
	return func(objs []*unstructured.Unstructured) error {
		var errs []error
		for _, o := range objs {
			switch {
			case o.GetKind() == "Unknown":
				errs = append(errs, &appliers.ObjectError{Ref: appliers.RefOf(o), Err: appliers.ErrUnknownKind})
			case clusterScoped[o.GetKind()]:
				o.SetNamespace("")
			case o.GetNamespace() == "":
				o.SetNamespace(ns)
			}
		}
		return errors.Join(errs...)
	}
}

func deployment(ns, name string) string {
	meta := "name: " + name
	if ns != "" {
		meta += ", namespace: " + ns
	}
	return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {%s}\nspec:\n  template:\n    spec: {containers: [{name: c, image: nginx}]}\n", meta)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestBuildDuplicates: an object declared twice, once keyed as the server
// keys it (namespace defaulted, a stray namespace on a cluster-scoped kind
// dropped), rejects every app that holds it, and the error names both
// places (file:line, and the apps when they differ). Other apps go on;
// nothing is pruned while an app is invalid.
func TestBuildDuplicates(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		errs    map[string]string // app -> App.Err
		invalid []string
	}{
		{
			name: "case 09: a defaulted namespace and an explicit one are one object, across apps",
			files: map[string]string{
				"web/gateway.yaml": deployment("", "gateway"),
				"api/gateway.yaml": "# the gateway, pinned\n" + deployment("case09", "gateway"),
			},
			errs: map[string]string{
				"api": "duplicate object: Deployment/case09/gateway is declared twice: apps/api/gateway.yaml:2 (app api) and apps/web/gateway.yaml:1 (app web)",
				"web": "duplicate object: Deployment/case09/gateway is declared twice: apps/api/gateway.yaml:2 (app api) and apps/web/gateway.yaml:1 (app web)",
			},
			invalid: []string{"api", "web"},
		},
		{
			name: "within one app: both lines, no app names; the other app is valid",
			files: map[string]string{
				"web/a.yaml": deployment("", "front") + "---\n" + deployment("case09", "front"),
				"api/a.yaml": deployment("", "api"),
			},
			errs: map[string]string{
				"web": "duplicate object: Deployment/case09/front is declared twice: apps/web/a.yaml:1 and apps/web/a.yaml:8",
			},
			invalid: []string{"web"},
		},
		{
			name: "a stray namespace on a cluster-scoped kind is the same object",
			files: map[string]string{
				"a/role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader, namespace: team-a}\n",
				"b/role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n",
			},
			errs: map[string]string{
				"a": "duplicate object: ClusterRole/reader is declared twice: apps/a/role.yaml:1 (app a) and apps/b/role.yaml:1 (app b)",
				"b": "duplicate object: ClusterRole/reader is declared twice: apps/a/role.yaml:1 (app a) and apps/b/role.yaml:1 (app b)",
			},
			invalid: []string{"a", "b"},
		},
		{
			name: "same name in two namespaces: two objects",
			files: map[string]string{
				"a/d.yaml": deployment("", "web"),
				"b/d.yaml": deployment("other", "web"),
			},
		},
		{
			name: "an unserved kind is bad input for its app alone",
			files: map[string]string{
				"a/x.yaml": "apiVersion: example.com/v1\nkind: Unknown\nmetadata: {name: x}\n",
				"b/d.yaml": deployment("", "web"),
			},
			errs:    map[string]string{"a": "Unknown/x: unknown kind"},
			invalid: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev, err := Build(Config{Agent: "shop-0123456789", Prepare: prepareIn("case09")}, sources.Revision{Commit: "c0ffee"}, load(tt.files), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, b := range rev.Apps {
				if b.Err != nil {
					got[b.Name()] = errText(b.Err)
					if b.Objects != nil || b.Specs != nil {
						t.Errorf("app %s is rejected but keeps %d objects", b.Name(), len(b.Objects))
					}
				}
			}
			if d := cmp.Diff(tt.errs, got, cmpEmpty); d != "" {
				t.Errorf("App.Err (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.invalid, rev.Invalid, cmpEmpty); d != "" {
				t.Errorf("Invalid (-want +got):\n%s", d)
			}
			if rev.PruneOK() != (len(tt.invalid) == 0) {
				t.Errorf("PruneOK = %v with invalid apps %v", rev.PruneOK(), tt.invalid)
			}
			for key, app := range rev.Declared {
				if rev.ByName[app].Err != nil {
					t.Errorf("%s is declared by app %s, which is rejected", key, app)
				}
			}
		})
	}
}

var cmpEmpty = cmp.Transformer("emptyNil", func(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
})

// TestBuildDeclared: what a valid revision declares, keyed as the server
// keys it, and which namespaces hold declared objects (prune keeps them).
func TestBuildDeclared(t *testing.T) {
	rev, err := Build(Config{Agent: "a", Prepare: prepareIn("shop")}, sources.Revision{Commit: "c0ffee"}, load(map[string]string{
		"web/d.yaml": deployment("", "web"),
		"ns/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"apps/Deployment/shop/web": "web", "/Namespace//shop": "ns"}
	if d := cmp.Diff(want, rev.Declared); d != "" {
		t.Errorf("Declared (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string][]string{"shop": {"Deployment/shop/web (app web)"}}, rev.Namespaces); d != "" {
		t.Errorf("Namespaces (-want +got):\n%s", d)
	}
	if app, ok := rev.Lookup("apps/Deployment/shop/web"); !ok || app != "web" {
		t.Errorf("Lookup = %q, %v", app, ok)
	}
	src := rev.ByName["web"].Objects[0].GetAnnotations()[appliers.SourceAnnotation]
	if src != "apps/web/d.yaml:1" {
		t.Errorf("source annotation %q, want apps/web/d.yaml:1", src)
	}
}

// TestBuildTransient: a discovery failure is transient for the app (not a
// rejection); when every app failed so, Build returns the error (the API
// server is unreachable), and a gitpace.yaml error rejects every app.
func TestBuildTransient(t *testing.T) {
	down := errors.New("dial tcp 127.0.0.1:6443: connection refused")
	apps := load(map[string]string{"a/d.yaml": deployment("", "a"), "b/d.yaml": deployment("", "b")})
	if _, err := Build(Config{Prepare: func([]*unstructured.Unstructured) error { return down }}, sources.Revision{}, apps, nil); !errors.Is(err, down) {
		t.Fatalf("every app unreachable: err = %v, want %v", err, down)
	}
	calls := 0
	rev, err := Build(Config{Prepare: func(objs []*unstructured.Unstructured) error {
		if calls++; calls == 1 {
			return down
		}
		return nil
	}}, sources.Revision{}, apps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := rev.ByName["a"]; !errors.Is(a.Transient, down) || a.Err != nil {
		t.Errorf("app a: Transient %v, Err %v; want the outage as Transient", a.Transient, a.Err)
	}
	if d := cmp.Diff([]string{"a"}, rev.Invalid); d != "" || rev.PruneOK() {
		t.Errorf("Invalid (-want +got):\n%s", d)
	}
	bad := errors.New("gitpace.yaml: windows[0]: bad")
	rev, err = Build(Config{Prepare: prepareIn("x")}, sources.Revision{}, apps, bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range rev.Apps {
		if b.Err != bad {
			t.Errorf("app %s: Err %v, want the gitpace.yaml error", b.Name(), b.Err)
		}
	}
}

func workload(image string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "labels": map[string]any{"app": "web", "tier": "front"}},
		"spec": map[string]any{
			"replicas": int64(3),
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": image}}}},
		},
	}}
	return u
}

// TestContentHash: the hash is a function of the content alone: stable
// across map order and copies, and pinned, since a changed hash function
// would make every agent re-apply every app after an upgrade.
func TestContentHash(t *testing.T) {
	objs := []*unstructured.Unstructured{workload("nginx:1.27")}
	bcsFile := []manifest.BCSFile{{File: "apps/web/bcs.json", Data: []byte(`{"apiVersion":"v4"}`)}}
	const pinned = "9b0fefde431cbba69953c2f5"
	if got := ContentHash(objs, bcsFile); got != pinned {
		t.Errorf("ContentHash = %s, want %s (a changed hash re-applies every app)", got, pinned)
	}
	// The same content built again (labels inserted in the other order).
	again := workload("nginx:1.27")
	again.SetLabels(map[string]string{"tier": "front", "app": "web"})
	tests := []struct {
		name string
		objs []*unstructured.Unstructured
		bcs  []manifest.BCSFile
		same bool
	}{
		{"same content, built again", []*unstructured.Unstructured{again}, bcsFile, true},
		{"a deep copy", []*unstructured.Unstructured{objs[0].DeepCopy()}, bcsFile, true},
		{"the file is renamed, bytes equal", objs, []manifest.BCSFile{{File: "apps/web/other.json", Data: bcsFile[0].Data}}, true},
		{"an image changes", []*unstructured.Unstructured{workload("nginx:1.28")}, bcsFile, false},
		{"a BCS file changes", objs, []manifest.BCSFile{{File: "apps/web/bcs.json", Data: []byte(`{"apiVersion":"v4" }`)}}, false},
		{"no BCS file", objs, nil, false},
		{"an object moves into the BCS list's place", nil, bcsFile, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ContentHash(tt.objs, tt.bcs) == pinned; got != tt.same {
				t.Errorf("hash equal = %v, want %v", got, tt.same)
			}
		})
	}
}

// TestFindRollback: a revision is a rollback to the newest earlier entry
// (never the one in force, the last) whose templates equal the desired ones
// for every workload whose template changes; workloads that do not change
// are not compared.
func TestFindRollback(t *testing.T) {
	entry := func(n int, templates ...string) state.Entry {
		e := state.Entry{N: n, Templates: map[string]string{}}
		for _, kv := range templates {
			k, v, _ := strings.Cut(kv, "=")
			e.Templates[k] = v
		}
		return e
	}
	tmpl := func(kv ...string) map[string]string { return entry(0, kv...).Templates }
	history := []state.Entry{
		entry(1, "web=v1", "api=a1"),
		entry(2, "web=v2", "api=a1"),
		entry(3, "web=v1", "api=a2"),
		entry(4, "web=v3", "api=a2"),
	}
	inForce := tmpl("web=v3", "api=a2")
	tests := []struct {
		name    string
		history []state.Entry
		desired map[string]string
		want    int // entry N; 0: no rollback
	}{
		{"nothing changes", history, tmpl("web=v3", "api=a2"), 0},
		{"web back to v1: the newest match is 3 (api unchanged, not compared)", history, tmpl("web=v1", "api=a2"), 3},
		{"web back to v2: entry 2, though its api differs", history, tmpl("web=v2", "api=a2"), 2},
		{"both back to entry 1", history, tmpl("web=v1", "api=a1"), 1},
		{"a new template: no rollback", history, tmpl("web=v4", "api=a2"), 0},
		{"web back to v1 and api to a new one: no entry has both", history, tmpl("web=v1", "api=a3"), 0},
		{"only one entry (the one in force): no rollback", history[3:], tmpl("web=v1", "api=a2"), 0},
		{"the template of the entry in force is not a rollback", []state.Entry{entry(1, "web=v1"), entry(2, "web=v3")}, tmpl("web=v3"), 0},
		{"a new workload appears: nothing earlier has it", history, tmpl("web=v3", "api=a2", "worker=w1"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &state.App{Templates: inForce, History: tt.history}
			got := 0
			if e := FindRollback(st, tt.desired); e != nil {
				got = e.N
			}
			if got != tt.want {
				t.Errorf("FindRollback = entry %d, want %d", got, tt.want)
			}
		})
	}
}

// TestStamp: gitpace's labels and the app annotation on every object; a
// workload's change-cause names the commit that last changed its template:
// the new commit for a new template, the recorded cause for an unchanged one.
func TestStamp(t *testing.T) {
	web, api := workload("nginx:1.28"), workload("api:2")
	api.SetName("api")
	templates := TemplateHashes([]*unstructured.Unstructured{web, api})
	webKey, apiKey := appliers.RefOf(web).Key(), appliers.RefOf(api).Key()
	st := &state.App{
		Templates:    map[string]string{webKey: "old", apiKey: templates[apiKey]},
		ChangeCauses: map[string]string{webKey: "gitpace 1111111: v1", apiKey: "gitpace 2222222: api v2"},
	}
	rev := sources.Revision{Commit: "3333333abcdef", Subject: "web: nginx 1.28"}
	causes := Stamp(st, "shop-0123456789", "front", rev, []*unstructured.Unstructured{web, api}, templates)
	want := map[string]string{webKey: "gitpace 3333333: web: nginx 1.28", apiKey: "gitpace 2222222: api v2"}
	if d := cmp.Diff(want, causes); d != "" {
		t.Errorf("causes (-want +got):\n%s", d)
	}
	for _, o := range []*unstructured.Unstructured{web, api} {
		if l := o.GetLabels(); l[appliers.ManagedByLabel] != appliers.ManagedByValue || l[appliers.AgentLabel] != "shop-0123456789" || l["app"] != "web" {
			t.Errorf("%s labels %v", o.GetName(), l)
		}
		if a := o.GetAnnotations(); a[appliers.AppAnnotation] != "front" || a[appliers.ChangeCause] != want[appliers.RefOf(o).Key()] {
			t.Errorf("%s annotations %v", o.GetName(), a)
		}
	}
}

// TestStale: inventory objects desired no longer holds, by key (the API
// version does not matter), in inventory order.
func TestStale(t *testing.T) {
	ref := func(version, name string) appliers.ObjectRef {
		return appliers.ObjectRef{Group: "apps", Version: version, Kind: "Deployment", Namespace: "shop", Name: name}
	}
	inventory := []appliers.ObjectRef{ref("v1", "c"), ref("v1", "a"), ref("v1", "b"), BCSRef("shop", "legacy")}
	got := Stale(inventory, []appliers.ObjectRef{ref("v1beta1", "a")})
	want := []appliers.ObjectRef{ref("v1", "c"), ref("v1", "b"), BCSRef("shop", "legacy")}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Stale (-want +got):\n%s", d)
	}
}

// TestKustomizeObjectsNameTheirFile (fresh-user report 6, fault 12a): an
// object of a kustomize app is placed at the file kustomize read it from
// (appliers.SourceOf: duplicates, and the appliers' errors), while the
// content hash is the one of the objects placed at the kustomization, as
// before: an upgrade sees no new content.
func TestKustomizeObjectsNameTheirFile(t *testing.T) {
	files := map[string]string{
		"shop/kustomization.yaml": "resources:\n- cm.yaml\n",
		"shop/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"other/cm.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
	}
	apps := load(files)
	rev, err := Build(Config{Agent: "a", Prepare: prepareIn("shop")}, sources.Revision{Commit: "c0ffee"}, apps, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "duplicate object: ConfigMap/shop/a is declared twice: apps/other/cm.yaml:1 (app other) and apps/shop/cm.yaml:1 (app shop)"
	if b := rev.ByName["shop"]; b.Err == nil || b.Err.Error() != want {
		t.Errorf("got %v\nwant %s", b.Err, want)
	}
	for _, app := range apps {
		if app.Name != "shop" {
			continue
		}
		objs := DesiredObjects(&app)
		if got := appliers.SourceOf(objs[0]); got != "apps/shop/cm.yaml:1" {
			t.Errorf("SourceOf = %q, want apps/shop/cm.yaml:1", got)
		}
		app.Origins[0].Read = ""
		if h, before := ContentHash(objs, nil), ContentHash(DesiredObjects(&app), nil); h != before {
			t.Errorf("content hash %s, was %s without Read", h, before)
		}
	}
}
