package agent_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
	"github.com/gitpace/gitpace/status"
)

// shop is a small app: Deployment, Service, ConfigMap and Secret, with no
// namespace (they get the fixture's default namespace).
const shop = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: registry.example/shop/web:1.0.0
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  THEME: winter
---
apiVersion: v1
kind: Secret
metadata:
  name: web-session-keys
data:
  key: c2Vzc2lvbg==
`

// uids reads the uid of each object of shop in ns, and the Service's
// clusterIP.
func (f *fixture) shopUIDs(ns string) map[string]string {
	f.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	if d, err := f.kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		out["deploy"] = string(d.UID)
	}
	if s, err := f.kube.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		out["svc"], out["clusterIP"] = string(s.UID), s.Spec.ClusterIP
	}
	if c, err := f.kube.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{}); err == nil {
		out["cm"] = string(c.UID)
	}
	if s, err := f.kube.CoreV1().Secrets(ns).Get(ctx, "web-session-keys", metav1.GetOptions{}); err == nil {
		out["secret"] = string(s.UID)
	}
	return out
}

func (f *fixture) podNames(selector string) []string {
	f.t.Helper()
	l, err := f.kube.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

func rsNames(rs []appsv1.ReplicaSet) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

// TestRenameAppHandsOverInPlace (case 02): `git mv apps/shop-frontend
// apps/storefront`, then to apps/frontend, with no byte changed: the objects
// keep their uids, the Service its clusterIP, the pods and ReplicaSets stay;
// the old app's state goes, its line says it handed the objects over and
// pruned nothing, and the new app's history says it took them over.
func TestRenameAppHandsOverInPlace(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("shop", map[string]string{"apps/shop-frontend/shop.yaml": shop})
	f.build(nil)
	f.pass(f.agent)
	before := f.shopUIDs(f.ns)
	if len(before) != 5 {
		t.Fatalf("objects after the first apply: %v", before)
	}
	f.eventually("3 pods", time.Minute, func() bool { return len(f.podNames("app=web")) == 3 })
	pods, rss := f.podNames("app=web"), rsNames(f.settledReplicaSets("web", "app=web"))

	for _, step := range []struct{ from, to string }{{"shop-frontend", "storefront"}, {"storefront", "frontend"}} {
		f.repo.Commit("rename "+step.from+" to "+step.to, map[string]string{
			"apps/" + step.from + "/shop.yaml": gittest.Delete, "apps/" + step.to + "/shop.yaml": shop})
		f.pass(f.agent)
		if got := f.shopUIDs(f.ns); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Fatalf("after renaming %s to %s: uids/clusterIP %v, want %v (objects were deleted and re-created)", step.from, step.to, got, before)
		}
		if got := f.podNames("app=web"); fmt.Sprint(got) != fmt.Sprint(pods) {
			t.Errorf("pods after the rename: %v, want %v", got, pods)
		}
		// Settled: a template the rename changed would show as a new
		// ReplicaSet only once the Deployment controller observed it.
		if got := rsNames(f.settledReplicaSets("web", "app=web")); fmt.Sprint(got) != fmt.Sprint(rss) {
			t.Errorf("ReplicaSets after the rename: %v, want %v", got, rss)
		}
		if st := f.appState(step.from); st != nil {
			t.Errorf("state of the old app %s still exists: %+v", step.from, st.Inventory)
		}
		st := f.appState(step.to)
		if st == nil || len(st.Inventory) != 4 {
			t.Fatalf("state of %s: %+v", step.to, st)
		}
		if st.Phase == state.Failed || st.Phase == state.Held {
			t.Errorf("%s is %s: %s", step.to, st.Phase, st.Reason)
		}
		if e := st.Last(); e == nil || !strings.Contains(e.Message, "took over 4 objects from app "+step.from) {
			t.Errorf("history of %s does not say it took the objects over: %+v", step.to, st.History)
		}
		want := fmt.Sprintf("app %s: removed from git; handed over 4 objects to app %s; pruned 0 objects", step.from, step.to)
		if !strings.Contains(f.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, f.out.String())
		}
		d := f.deployment("web")
		if got := d.Annotations[appliers.AppAnnotation]; got != step.to {
			t.Errorf("Deployment's %s = %q, want %q", appliers.AppAnnotation, got, step.to)
		}
		if got := d.Labels[appliers.AgentLabel]; got != f.agent.Name() {
			t.Errorf("Deployment's %s = %q, want %q", appliers.AgentLabel, got, f.agent.Name())
		}
	}
}

// TestMoveObjectBetweenApps: a ConfigMap moved from app a to app b in one
// commit keeps its uid, and the history of both apps says so.
func TestMoveObjectBetweenApps(t *testing.T) {
	f := newFixture(t)
	moved := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: moved\ndata:\n  k: v\n"
	stay := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stay-%s\ndata:\n  k: v\n"
	f.repo.Commit("two apps", map[string]string{
		"apps/a/moved.yaml": moved, "apps/a/stay.yaml": fmt.Sprintf(stay, "a"), "apps/b/stay.yaml": fmt.Sprintf(stay, "b")})
	f.build(nil)
	f.pass(f.agent)
	uid := f.cmUID("moved")
	f.repo.Commit("move", map[string]string{"apps/a/moved.yaml": gittest.Delete, "apps/b/moved.yaml": moved})
	f.pass(f.agent)
	if got := f.cmUID("moved"); got != uid || got == "" {
		t.Fatalf("ConfigMap moved: uid %q, want %q", got, uid)
	}
	a, b := f.appState("a"), f.appState("b")
	if e := a.Last(); len(a.History) != 2 || !strings.Contains(e.Message, "handed over ConfigMap/"+f.ns+"/moved to app b") {
		t.Errorf("history of a: %+v", a.History)
	}
	if e := b.Last(); len(b.History) != 2 || !strings.Contains(e.Message, "took over ConfigMap/"+f.ns+"/moved from app a") {
		t.Errorf("history of b: %+v", b.History)
	}
	if len(a.Inventory) != 1 || len(b.Inventory) != 2 {
		t.Errorf("inventories: a %v, b %v", a.Inventory, b.Inventory)
	}
}

func (f *fixture) cmUID(name string) string {
	c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return string(c.UID)
}

// newAgent builds another agent over repo (a URL or path) and path, sharing
// the fixture's state namespace and cluster.
func (f *fixture) newAgent(repo, path, name string, allowEmpty bool) *agent.Agent {
	f.t.Helper()
	src, err := sources.NewGitSource(sources.GitConfig{URL: repo, Branch: "main", Path: path, CacheDir: f.t.TempDir()})
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Name: name, AllowEmpty: allowEmpty, Source: src, Rest: testenv.Config(f.t),
		StateNamespace: f.stateNS, DefaultNamespace: f.ns, Interval: time.Hour, Resync: time.Hour, Out: f.out, Log: f.logger()})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// TestTwoAgentsOneCluster: an agent for repository B (a file:// URL) run
// --once against a cluster that an agent for repository A manages, in the
// same state namespace, prunes nothing of A's, even with an app of the same
// name; status lists both agents' apps, each as its agent's.
func TestTwoAgentsOneCluster(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("A", map[string]string{"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-a\ndata:\n  k: a\n"})
	a := f.newAgent(f.repo.Dir, "apps", "", false)
	ctx := context.Background()
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	uid := f.cmUID("from-a")
	repoB := gittest.New(t)
	repoB.Commit("B", map[string]string{"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-b\ndata:\n  k: b\n"})
	b := f.newAgent("file://"+repoB.Dir, "apps", "", false)
	if a.Name() == b.Name() {
		t.Fatalf("two repositories gave one identity %q", a.Name())
	}
	if err := b.ReconcileAndReport(ctx); err != nil {
		t.Fatalf("agent B --once: %v\n%s", err, f.out.String())
	}
	if got := f.cmUID("from-a"); got != uid {
		t.Fatalf("agent B touched agent A's ConfigMap: uid %q, want %q\n%s", got, uid, f.out.String())
	}
	if f.cmUID("from-b") == "" {
		t.Fatal("agent B did not apply its ConfigMap")
	}
	// A reconciles again: B's app of the same name is not its own.
	f.repo.Commit("A again", map[string]string{"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-a\ndata:\n  k: a2\n"})
	if err := a.ReconcileAndReport(ctx); err != nil {
		t.Fatal(err)
	}
	if f.cmUID("from-b") == "" {
		t.Fatal("agent A pruned agent B's ConfigMap")
	}
	apps, err := status.Collect(ctx, f.kube, f.stateNS, "web", "")
	if err != nil {
		t.Fatal(err)
	}
	agents := map[string]int{}
	for _, s := range apps {
		agents[s.Agent] = s.Objects
	}
	if len(apps) != 2 || agents[a.Name()] != 1 || agents[b.Name()] != 1 {
		t.Errorf("status of app web: %+v, want one app per agent %s and %s", apps, a.Name(), b.Name())
	}
	if _, err := status.History(ctx, f.kube, f.stateNS, "web", ""); err == nil || !strings.Contains(err.Error(), "--agent") {
		t.Errorf("history of an app two agents have: %v, want a request for --agent", err)
	}

	// B also declares A's ConfigMap: it takes it over in place (a fight,
	// logged as such); when B drops it again, B must not delete it, since
	// A still declares it.
	shared := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-a\ndata:\n  k: a2\n"
	repoB.Commit("B declares A's object", map[string]string{"apps/web/shared.yaml": shared})
	if err := b.ReconcileAndReport(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.logs(), "taking over an object another agent applied") || !strings.Contains(f.out.String(), "took over ConfigMap/"+f.ns+"/from-a from agent "+a.Name()+", app web") {
		t.Errorf("a takeover from another agent was not reported:\n%s", f.out.String())
	}
	repoB.Commit("B drops it", map[string]string{"apps/web/shared.yaml": gittest.Delete})
	if err := b.ReconcileAndReport(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.cmUID("from-a"); got != uid {
		t.Fatalf("agent B deleted the ConfigMap agent A declares (uid %q, want %q)\n%s", got, uid, f.out.String())
	}
	if want := "ConfigMap/" + f.ns + "/from-a not pruned: agent " + a.Name() + ", app web still declares it"; !strings.Contains(f.out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, f.out.String())
	}
}

// TestPathChangedIsARename: the same repository reconciled first with
// --path apps, then with --path . (every app renamed apps/<app>): nothing is
// deleted, neither the objects nor the Namespace with a ConfigMap gitpace
// never managed. With --name kept, the old apps are handed over and their
// state goes; with a new identity, the old agent's state stays, its own.
func TestPathChangedIsARename(t *testing.T) {
	f := newFixture(t)
	ns := f.ns + "-x"
	t.Cleanup(func() { _ = f.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	f.repo.Commit("web", map[string]string{"apps/web/all.yaml": fmt.Sprintf(
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: %s\ndata:\n  k: v\n", ns, ns)})
	ctx := context.Background()
	first := f.newAgent(f.repo.Dir, "apps", "", false)
	if err := first.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	unmanaged, err := f.kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hand-made"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj, _ := f.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})

	// A new identity (the default for another --path): a new agent.
	second := f.newAgent(f.repo.Dir, ".", "", false)
	if second.Name() == first.Name() {
		t.Fatal("--path did not change the default identity")
	}
	if err := second.ReconcileAndReport(ctx); err != nil {
		t.Fatalf("--path .: %v\n%s", err, f.out.String())
	}
	// The same identity with the new path: app web becomes apps/web.
	third := f.newAgent(f.repo.Dir, ".", first.Name(), false)
	if err := third.ReconcileAndReport(ctx); err != nil {
		t.Fatalf("--path . --name %s: %v\n%s", first.Name(), err, f.out.String())
	}
	got, err := f.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || got.UID != nsObj.UID || got.DeletionTimestamp != nil {
		t.Fatalf("Namespace %s: %v %v (deleting: %v)", ns, err, got.UID, got.DeletionTimestamp)
	}
	if c, err := f.kube.CoreV1().ConfigMaps(ns).Get(ctx, "hand-made", metav1.GetOptions{}); err != nil || c.UID != unmanaged.UID {
		t.Fatalf("the ConfigMap gitpace never managed: %v", err)
	}
	if c, err := f.kube.CoreV1().ConfigMaps(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil || c.Annotations[appliers.AppAnnotation] != "apps/web" {
		t.Fatalf("ConfigMap web: %v %v", err, c.Annotations)
	}
	all, err := state.NewStore(f.kube, f.stateNS).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range all {
		names = append(names, st.Agent+":"+st.Name)
	}
	sort.Strings(names)
	want := []string{first.Name() + ":apps/web", second.Name() + ":apps/web"}
	sort.Strings(want)
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("states: %v, want %v (the renamed agent's old app goes, the other agent's stays)", names, want)
	}
}

// TestEmptyRevisionIsHeld: a path that yields no app, and a revision that
// would prune every object the agent manages, are held (nothing pruned,
// --once fails naming --allow-empty); with AllowEmpty they go ahead.
func TestEmptyRevisionIsHeld(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("web", map[string]string{"apps/web/cm.yaml": cm, "docs/README.md": "no manifests here\n"})
	ctx := context.Background()
	if err := f.newAgent(f.repo.Dir, "apps", "gp-empty", false).ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	uid := f.cmUID("test-config")
	// --path docs for the same agent: no app at all.
	err := f.newAgent(f.repo.Dir, "docs", "gp-empty", false).ReconcileAndReport(ctx)
	if err == nil || !strings.Contains(err.Error(), "holds no app") || !strings.Contains(err.Error(), "--allow-empty") {
		t.Fatalf("--path docs: %v", err)
	}
	// Every object replaced by others: would prune everything.
	f.repo.Commit("other", map[string]string{"apps/web/cm.yaml": gittest.Delete, "apps/new/cm.yaml": strings.Replace(cm, "test-config", "other", 1)})
	err = f.newAgent(f.repo.Dir, "apps", "gp-empty", false).ReconcileAndReport(ctx)
	if err == nil || !strings.Contains(err.Error(), "keeps none of this agent's 1 app and would prune every object") {
		t.Fatalf("a revision pruning everything: %v", err)
	}
	if f.cmUID("test-config") != uid || f.cmUID("other") != "" {
		t.Fatalf("a held revision changed the cluster: %q %q", f.cmUID("test-config"), f.cmUID("other"))
	}
	if err := f.newAgent(f.repo.Dir, "apps", "gp-empty", true).ReconcileAndReport(ctx); err != nil {
		t.Fatalf("--allow-empty: %v", err)
	}
	if f.cmUID("test-config") != "" || f.cmUID("other") == "" {
		t.Fatalf("--allow-empty did not apply the revision: %q %q", f.cmUID("test-config"), f.cmUID("other"))
	}
}

// TestNamespaceWithObjectsIsNotPruned (case 03): a Namespace that leaves git
// while objects that git still declares, or that gitpace never managed, are
// in it is kept and said so; an object annotated gitpace.dev/prune: disabled
// stays when it leaves git; the rest is pruned.
func TestNamespaceWithObjectsIsNotPruned(t *testing.T) {
	f := newFixture(t)
	pay, shared := f.ns+"-p", f.ns+"-s"
	for _, ns := range []string{pay, shared} {
		t.Cleanup(func() { _ = f.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	}
	nsYAML := func(n string) string { return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + n + "\n" }
	cmIn := func(name, ns string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  k: v\n", name, ns)
	}
	f.repo.Commit("v1", map[string]string{
		"apps/payments/namespace.yaml": nsYAML(pay), "apps/payments/api.yaml": cmIn("payments-api", pay),
		"apps/team-a/namespace.yaml": nsYAML(shared), "apps/team-a/worker.yaml": cmIn("a-worker", shared),
		"apps/team-a/keep.yaml":   strings.Replace(cmIn("a-keep", shared), "metadata:\n", "metadata:\n  annotations:\n    gitpace.dev/prune: disabled\n", 1),
		"apps/team-b/worker.yaml": cmIn("b-worker", shared),
	})
	f.build(nil)
	f.pass(f.agent)
	ctx := context.Background()
	uid := func(ns, name string) string {
		c, err := f.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return string(c.UID)
	}
	apiUID, bUID, keepUID := uid(pay, "payments-api"), uid(shared, "b-worker"), uid(shared, "a-keep")

	// Part A: only the Namespace of payments leaves git.
	f.repo.Commit("drop payments namespace", map[string]string{"apps/payments/namespace.yaml": gittest.Delete})
	f.pass(f.agent)
	notTerminating := func(ns string) {
		t.Helper()
		n, err := f.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || n.DeletionTimestamp != nil {
			t.Fatalf("Namespace %s: %v, deleting %v\n%s", ns, err, n.DeletionTimestamp, f.out.String())
		}
	}
	notTerminating(pay)
	if uid(pay, "payments-api") != apiUID {
		t.Fatal("payments-api was re-created")
	}
	if st := f.appState("payments"); st.Phase != state.Synced || len(st.Inventory) != 1 {
		t.Errorf("payments: %s %s %v", st.Phase, st.Reason, st.Inventory)
	}
	if !strings.Contains(f.out.String(), "Namespace/"+pay+" not pruned: the revision still declares ConfigMap/"+pay+"/payments-api (app payments) in it") {
		t.Errorf("no word about keeping %s:\n%s", pay, f.out.String())
	}

	// Part B: all of team-a leaves git; team-b still has an object in the
	// namespace team-a declared.
	f.repo.Commit("drop team-a", map[string]string{"apps/team-a/namespace.yaml": gittest.Delete,
		"apps/team-a/worker.yaml": gittest.Delete, "apps/team-a/keep.yaml": gittest.Delete})
	f.pass(f.agent)
	notTerminating(shared)
	if uid(shared, "a-worker") != "" {
		t.Error("a-worker (team-a left git) was not pruned")
	}
	if uid(shared, "b-worker") != bUID {
		t.Error("b-worker was touched")
	}
	if uid(shared, "a-keep") != keepUID {
		t.Error("a-keep (gitpace.dev/prune: disabled) was pruned")
	}
	for _, want := range []string{
		"Namespace/" + shared + " not pruned: the revision still declares ConfigMap/" + shared + "/b-worker (app team-b) in it",
		"ConfigMap/" + shared + "/a-keep not pruned: gitpace.dev/prune: disabled",
		"app team-a: removed from git; pruned 1 object",
	} {
		if !strings.Contains(f.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, f.out.String())
		}
	}

	// team-b leaves too: the namespace still holds a-keep, which gitpace
	// does not prune, and a ConfigMap gitpace never managed, so it stays
	// (and says what it holds).
	if _, err := f.kube.CoreV1().ConfigMaps(shared).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hand-made"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("drop team-b, add a namespace owner", map[string]string{"apps/team-b/worker.yaml": gittest.Delete,
		"apps/ns/namespace.yaml": nsYAML(shared)})
	f.pass(f.agent)
	f.repo.Commit("drop the namespace", map[string]string{"apps/ns/namespace.yaml": gittest.Delete})
	f.pass(f.agent)
	notTerminating(shared)
	if want := "Namespace/" + shared + " not pruned: it still holds ConfigMap/" + shared + "/a-keep, ConfigMap/" + shared + "/hand-made"; !strings.Contains(f.out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, f.out.String())
	}
}

// TestProtectedNamespacesNeverPruned (case 17): Namespace default (labels
// managed through git) and gitpace's own state namespace leave git: neither
// is deleted, gitpace says so once and does not try again, and --once
// succeeds.
func TestProtectedNamespacesNeverPruned(t *testing.T) {
	f := newFixture(t)
	label := "gitpace-test-" + strings.ReplaceAll(f.ns, "-", "")[:20]
	ctx := context.Background()
	t.Cleanup(func() {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, label)
		_, _ = f.kube.CoreV1().Namespaces().Patch(ctx, "default", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	})
	nsWithLabel := func(n string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    %s: managed\n", n, label)
	}
	f.repo.Commit("v1", map[string]string{"apps/platform/ns.yaml": nsWithLabel("default") + "---\n" + nsWithLabel(f.stateNS),
		"apps/web/cm.yaml": cm})
	f.build(nil)
	f.pass(f.agent)
	if n, _ := f.kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); n.Labels[label] != "managed" {
		t.Fatalf("label not applied to default: %v", n.Labels)
	}
	f.repo.Commit("drop them", map[string]string{"apps/platform/ns.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: platform\ndata:\n  k: v\n"})
	if err := f.agent.ReconcileAndReport(ctx); err != nil {
		t.Fatalf("--once after dropping them: %v", err)
	}
	for range 2 { // resyncs: no second attempt, no second message
		f.agent = f.rebuild()
		if err := f.agent.ReconcileAndReport(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"default", f.stateNS} {
		n, err := f.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || n.DeletionTimestamp != nil {
			t.Fatalf("Namespace %s: %v (deleting %v)", ns, err, n.DeletionTimestamp)
		}
	}
	out := f.out.String()
	for _, want := range []string{"Namespace/default not pruned: built-in namespace", "Namespace/" + f.stateNS + " not pruned: gitpace's state namespace"} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("%q printed %d times, want once:\n%s", want, n, out)
		}
	}
	if st := f.appState("web"); st == nil || len(st.History) != 1 {
		t.Errorf("web's state was lost: %+v", st)
	}
	if st := f.appState("platform"); st.Phase != state.Synced || len(st.Inventory) != 1 {
		t.Errorf("platform: %s %s %v", st.Phase, st.Reason, st.Inventory)
	}
}

// TestDuplicateAfterNamespaceDefaulting (case 09): `Deployment gateway`
// (defaulted to the fixture's namespace) and `Deployment <ns>/gateway`, and
// a ClusterRole with and without a stray namespace, are one object each:
// the revision is rejected naming both places, nothing of it is applied,
// and later passes neither roll nor report drift. The same object in two
// apps rejects both.
func TestDuplicateAfterNamespaceDefaulting(t *testing.T) {
	f := newFixture(t)
	role := "case09-" + f.ns
	ctx := context.Background()
	t.Cleanup(func() { _ = f.kube.RbacV1().ClusterRoles().Delete(ctx, role, metav1.DeleteOptions{}) })
	dep := func(image string, ns string) string {
		nsLine := ""
		if ns != "" {
			nsLine = "\n  namespace: " + ns
		}
		return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: gateway%s\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: gateway\n  template:\n    metadata:\n      labels:\n        app: gateway\n    spec:\n      containers:\n      - name: gw\n        image: %s\n", nsLine, image)
	}
	cr := func(ns, verb string) string {
		nsLine := ""
		if ns != "" {
			nsLine = "\n  namespace: " + ns
		}
		return fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: %s%s\nrules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [%q]\n", role, nsLine, verb)
	}
	f.repo.Commit("v1", map[string]string{"apps/gateway/gateway.yaml": dep("gw:2.0.0", "") + "---\n" + cr("", "get")})
	f.build(nil)
	f.pass(f.agent)
	rsBefore := rsNames(f.settledReplicaSets("gateway", "app=gateway"))
	if len(rsBefore) != 1 {
		t.Fatalf("ReplicaSets after the first apply: %v", rsBefore)
	}
	f.repo.Commit("hotfix", map[string]string{"apps/gateway/hotfix.yaml": dep("gw:2.0.1-hotfix", f.ns) + "---\n" + cr(f.ns, "list")})
	for range 3 {
		f.pass(f.agent)
		f.agent = f.rebuild() // as at each resync: a fresh diff
	}
	st := f.appState("gateway")
	if st.Phase != state.Failed || st.Rejected == nil {
		t.Fatalf("gateway: %s %s", st.Phase, st.Reason)
	}
	for _, want := range []string{"Deployment/" + f.ns + "/gateway is declared twice: apps/gateway/gateway.yaml:1 and apps/gateway/hotfix.yaml:1",
		"ClusterRole/" + role + " is declared twice: apps/gateway/gateway.yaml:", "apps/gateway/hotfix.yaml:"} {
		if !strings.Contains(st.Rejected.Error, want) {
			t.Errorf("rejection lacks %q: %s", want, st.Rejected.Error)
		}
	}
	if img := f.deployment("gateway").Spec.Template.Spec.Containers[0].Image; img != "gw:2.0.0" {
		t.Errorf("image %s: the duplicate was applied", img)
	}
	if got := rsNames(f.settledReplicaSets("gateway", "app=gateway")); fmt.Sprint(got) != fmt.Sprint(rsBefore) {
		t.Errorf("ReplicaSets %v, want %v", got, rsBefore)
	}
	if r, _ := f.kube.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{}); r.Rules[0].Verbs[0] != "get" {
		t.Errorf("ClusterRole changed: %v", r.Rules)
	}
	if strings.Contains(f.out.String(), "drift") {
		t.Errorf("drift reported:\n%s", f.out.String())
	}

	// Across apps: both apps are rejected, each naming the other.
	f.repo.Commit("fix, then copy into another app", map[string]string{"apps/gateway/hotfix.yaml": gittest.Delete,
		"apps/copy/gateway.yaml": dep("gw:9.9.9", f.ns)})
	f.pass(f.agent)
	for _, app := range []string{"gateway", "copy"} {
		st := f.appState(app)
		if st.Rejected == nil || !strings.Contains(st.Rejected.Error, "apps/copy/gateway.yaml:1 (app copy) and apps/gateway/gateway.yaml:1 (app gateway)") {
			t.Errorf("app %s: %+v", app, st.Rejected)
		}
	}
	if img := f.deployment("gateway").Spec.Template.Spec.Containers[0].Image; img != "gw:2.0.0" {
		t.Errorf("image %s: the duplicate was applied", img)
	}
	f.repo.Commit("fixed", map[string]string{"apps/copy/gateway.yaml": gittest.Delete})
	f.pass(f.agent)
	if st := f.appState("gateway"); st.Rejected != nil || st.Phase == state.Failed {
		t.Errorf("gateway after the fix: %s %s", st.Phase, st.Reason)
	}
}

// TestNamespaceTerminatingIsAWait (case 04): objects of an app whose
// Namespace is being deleted (a finalizer holds it) are refused by the API
// server; the revision waits instead of failing, and goes in by itself
// once the namespace is gone, with no new commit and no resync.
func TestNamespaceTerminatingIsAWait(t *testing.T) {
	f := newFixture(t)
	ns := f.ns + "-t"
	ctx := context.Background()
	t.Cleanup(func() { _ = f.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
	app := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: promo-banners-v%%d\n  namespace: %s\ndata:\n  banner: new\n", ns, ns)
	f.repo.Commit("promo", map[string]string{"apps/promo/promo.yaml": fmt.Sprintf(app, 1), "apps/other/cm.yaml": cm})
	f.build(nil)
	f.run()
	f.eventually("promo applied", 30*time.Second, func() bool {
		st := f.appState("promo")
		return st != nil && st.Phase == state.Synced
	})
	hold := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cleanup-pending", Finalizers: []string{"example.invalid/hold"}}}
	if _, err := f.kube.CoreV1().ConfigMaps(ns).Create(ctx, hold, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Someone deletes the namespace by hand; the finalizer keeps it
	// Terminating. Then a commit adds an object to it (Kubernetes refuses
	// new objects in a terminating namespace, not changes to existing ones).
	if err := f.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.eventually("namespace terminating", 30*time.Second, func() bool {
		n, err := f.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err == nil && n.Status.Phase == corev1.NamespaceTerminating
	})
	f.repo.Commit("promo v2", map[string]string{"apps/promo/promo.yaml": fmt.Sprintf(app, 2)})
	f.eventually("promo waits for the namespace", 30*time.Second, func() bool {
		st := f.appState("promo")
		return st.Phase == state.OutOfSync && strings.Contains(st.Reason, "namespace "+ns+" is being terminated")
	})
	if st := f.appState("promo"); st.Rejected != nil {
		t.Fatalf("a terminating namespace rejected the revision: %s", st.Rejected.Error)
	}
	f.repo.Commit("other changes meanwhile", map[string]string{"apps/other/cm.yaml": strings.Replace(cm, "hello", "hi", 1)})
	f.eventually("other app reconciled meanwhile", 30*time.Second, func() bool {
		c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "test-config", metav1.GetOptions{})
		return err == nil && c.Data["greeting"] == "hi"
	})
	// T0: the namespace can go.
	if _, err := f.kube.CoreV1().ConfigMaps(ns).Patch(ctx, "cleanup-pending", "application/merge-patch+json",
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	f.eventually("namespace re-created and app Synced at v2", 30*time.Second, func() bool {
		_, err := f.kube.CoreV1().ConfigMaps(ns).Get(ctx, "promo-banners-v2", metav1.GetOptions{})
		st := f.appState("promo")
		return err == nil && st.Phase == state.Synced
	})
	if _, err := f.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Fatal("namespace not re-created")
	}
}

// TestPruneHeldWhileAnotherAppInvalid: while app b's revision is invalid,
// nothing is pruned (what b declares is unknown), and app a, which dropped
// a ConfigMap, says so in its state and status instead of staying silent;
// once b is fixed, a's ConfigMap is pruned and the note goes.
func TestPruneHeldWhileAnotherAppInvalid(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  k: v\n"
	}
	f.repo.Commit("a and b", map[string]string{"apps/a/a1.yaml": cm("a1"), "apps/a/a2.yaml": cm("a2"), "apps/b/b.yaml": cm("b")})
	f.build(nil)
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("a drops a2; b broken", map[string]string{"apps/a/a2.yaml": gittest.Delete, "apps/b/b.yaml": "kind: [ConfigMap\n"})
	_ = f.agent.ReconcileOnce(ctx)
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "a2", metav1.GetOptions{}); err != nil {
		t.Fatalf("a2 pruned while b's revision is invalid: %v", err)
	}
	want := "1 object not pruned while app b has an invalid revision"
	if st := f.appState("a"); !strings.Contains(st.PruneHeld, want) {
		t.Errorf("a's pruneHeld = %q, want %q", st.PruneHeld, want)
	}
	if !strings.Contains(f.out.String(), "app a: "+want) {
		t.Errorf("no line says the prune is held:\n%s", f.out.String())
	}
	f.repo.Commit("b fixed", map[string]string{"apps/b/b.yaml": cm("b")})
	if err := f.agent.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "a2", metav1.GetOptions{}); err == nil {
		t.Error("a2 not pruned once b was fixed")
	}
	if !strings.Contains(f.out.String(), "app a: pruned what earlier revisions dropped, held until now") {
		t.Errorf("the deferred prune is not said as such:\n%s", f.out.String())
	}
	if st := f.appState("a"); st.PruneHeld != "" || len(st.Inventory) != 1 {
		t.Errorf("a after the fix: pruneHeld %q, inventory %v", st.PruneHeld, st.Inventory)
	}
}
