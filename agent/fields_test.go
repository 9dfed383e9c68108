package agent_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/state"
)

// fieldsFixture reads a manifest of testdata/fields.
func fieldsFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "fields", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pass runs one reconcile pass and fails the test on error.
func (f *fixture) pass(a *agent.Agent) {
	f.t.Helper()
	if err := a.ReconcileOnce(context.Background()); err != nil {
		f.t.Fatalf("reconcile: %v\noutput:\n%s", err, f.out.String())
	}
}

// assertNoWrites runs one more full pass and fails if it wrote anything,
// or if `gitpace diff` would show a change.
func (f *fixture) assertNoWrites(a *agent.Agent) {
	f.t.Helper()
	before := f.counter.writes.Load()
	f.pass(a)
	if n := f.counter.writes.Load() - before; n != 0 {
		f.t.Errorf("a further pass made %d writes, want 0\noutput:\n%s", n, f.out.String())
	}
	_, diffs, err := a.Diff(context.Background(), "")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, d := range diffs {
		if d.Error != "" {
			f.t.Errorf("diff: app %s: %s", d.App, d.Error)
		}
		for _, c := range d.Changes {
			if c.Action != appliers.Unchanged {
				f.t.Errorf("diff: app %s: %s %s, want unchanged:\n%s", d.App, c.Ref, c.Action, c.Diff)
			}
		}
	}
}

// fullPasses builds the agent with every pass a full resync (--resync 1ns),
// so that each ReconcileOnce diffs every app as a resync does.
func (f *fixture) fullPasses() *agent.Agent {
	f.build(nil)
	f.cfg.Resync = time.Nanosecond
	return f.rebuild()
}

func (f *fixture) secretKeys(name string) (map[string][]byte, string) {
	f.t.Helper()
	s, err := f.kube.CoreV1().Secrets(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return s.Data, s.ResourceVersion
}

func sortedNames[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestHandEditsUndone (case 06): additions made by hand with kubectl's field
// managers are drift. An env var (`kubectl set env`: a strategic merge
// patch by kubectl-set) and args (a JSON patch by kubectl-patch) on a
// Deployment are removed at once through the watch (--resync is an hour);
// a key added to a ConfigMap and a label added to the Deployment (merge
// patches by kubectl-patch and kubectl-label) at the next full pass. One
// correction per edit, then nothing left to correct.
func TestHandEditsUndone(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("catalog: first deploy", map[string]string{"apps/catalog/catalog.yaml": fieldsFixture(t, "hand-edits.yaml")})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	a := f.build(nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	f.eventually("catalog Synced", time.Minute, func() bool { st := f.appState("catalog"); return st != nil && st.Phase == state.Synced })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", f.logs())
		}
	})

	deploys := f.kube.AppsV1().Deployments(f.ns)
	container := func() corev1.Container { return f.deployment("catalog").Spec.Template.Spec.Containers[0] }
	if _, err := deploys.Patch(ctx, "catalog", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"catalog","env":[{"name":"DEBUG_SQL","value":"true"}]}]}}}}`),
		metav1.PatchOptions{FieldManager: "kubectl-set"}); err != nil {
		t.Fatal(err)
	}
	f.eventually("DEBUG_SQL removed by the watch", 10*time.Second, func() bool {
		env := container().Env
		return len(env) == 1 && env[0].Name == "PAGE_SIZE"
	})
	if _, err := deploys.Patch(ctx, "catalog", types.JSONPatchType,
		[]byte(`[{"op":"add","path":"/spec/template/spec/containers/0/args","value":["--trace"]}]`),
		metav1.PatchOptions{FieldManager: "kubectl-patch"}); err != nil {
		t.Fatal(err)
	}
	f.eventually("args removed by the watch", 10*time.Second, func() bool { return len(container().Args) == 0 })
	stop()
	<-done
	// One correction per edit. An edit that lands between the agent's read
	// of the object and its dry run can cost one more pass (and line),
	// which finds the edit and corrects it: at most one extra.
	edits := strings.Count(f.out.String(), "drift:")
	if edits < 2 || edits > 3 {
		t.Errorf("%d drift lines for two edits, want 2 (3 if an edit raced a pass):\n%s", edits, f.out.String())
	}
	if n := strings.Count(f.out.String(), "drift: Deployment/"+f.ns+"/catalog differed from git"); n != edits {
		t.Errorf("%d of %d drift lines name Deployment/%s/catalog:\n%s", n, edits, f.ns, f.out.String())
	}

	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Patch(context.Background(), "catalog-flags", types.MergePatchType,
		[]byte(`{"data":{"PAGE_SIZE":"200","EXPERIMENT":"b"}}`), metav1.PatchOptions{FieldManager: "kubectl-patch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := deploys.Patch(context.Background(), "catalog", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"owner":"oncall-override"}}}`), metav1.PatchOptions{FieldManager: "kubectl-label"}); err != nil {
		t.Fatal(err)
	}
	// A new agent process: its first pass is a full one, as a --resync is.
	b := f.rebuild()
	f.pass(b)
	cm, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "catalog-flags", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"SEARCH_BACKEND": "opensearch", "PAGE_SIZE": "48"}; fmt.Sprint(cm.Data) != fmt.Sprint(want) {
		t.Errorf("ConfigMap data = %v, want %v", cm.Data, want)
	}
	if _, ok := f.deployment("catalog").Labels["owner"]; ok {
		t.Error("label owner=oncall-override not removed")
	}
	if n := strings.Count(f.out.String(), "drift:"); n != edits+1 {
		t.Errorf("%d drift lines, want %d (one more for the full pass's corrections):\n%s", n, edits+1, f.out.String())
	}
	f.assertNoWrites(b)
}

// replicaLog records every spec.replicas a Deployment watch sees.
type replicaLog struct {
	mu   sync.Mutex
	seen map[string][]int32
	rv   map[string]string // resourceVersion of each Deployment as last seen
}

func watchReplicas(t *testing.T, f *fixture) *replicaLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := f.kube.AppsV1().Deployments(f.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := &replicaLog{seen: map[string][]int32{}, rv: map[string]string{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok && ev.Type != watch.Deleted && d.Spec.Replicas != nil {
				l.mu.Lock()
				l.rv[d.Name] = d.ResourceVersion
				if s := l.seen[d.Name]; len(s) == 0 || s[len(s)-1] != *d.Spec.Replicas {
					l.seen[d.Name] = append(s, *d.Spec.Replicas)
				}
				l.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return l
}

// caughtUp waits until the watch has seen Deployments names as the API
// server has them now (same resourceVersion): a check that spec.replicas
// never changed must not read the log before a change could show in it.
func (l *replicaLog) caughtUp(f *fixture, names ...string) {
	f.t.Helper()
	for _, name := range names {
		f.eventually("the Deployment watch to see "+name+" as it is", 30*time.Second, func() bool {
			d := f.deployment(name)
			l.mu.Lock()
			defer l.mu.Unlock()
			return d != nil && l.rv[name] == d.ResourceVersion
		})
	}
}

func (l *replicaLog) of(name string) []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen[name])
}

// TestHPAOwnsReplicas (case 07). Phase 1: git declares replicas 2 and an
// HPA targets the Deployment; gitpace leaves spec.replicas to the HPA (one
// note naming it), so the HPA's raise to 4 (faked as fake-hpa.sh does:
// the scale subresource, field manager horizontal-pod-autoscaler) is
// needed once and sticks over further full passes. Phase 2: git stops
// declaring replicas; neither Deployment loses its count (the other,
// without HPA, changes its image in the same commit, so it is applied:
// spec.replicas is handed over first), and a later `kubectl scale` sticks.
func TestHPAOwnsReplicas(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("search: add autoscaler; indexer at 5", map[string]string{
		"apps/search/search.yaml":   fieldsFixture(t, "hpa-search-v1.yaml"),
		"apps/indexer/indexer.yaml": fieldsFixture(t, "hpa-indexer-v1.yaml"),
	})
	a := f.fullPasses()
	seen := watchReplicas(t, f)
	ctx := context.Background()
	deploys := f.kube.AppsV1().Deployments(f.ns)
	raises := 0
	fakeHPA := func() {
		s, err := deploys.GetScale(ctx, "search", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Spec.Replicas < 4 {
			if _, err := deploys.Patch(ctx, "search", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`),
				metav1.PatchOptions{FieldManager: "horizontal-pod-autoscaler"}, "scale"); err != nil {
				t.Fatal(err)
			}
			raises++
		}
	}
	f.pass(a)
	fakeHPA()
	for range 3 {
		f.pass(a)
		fakeHPA()
	}
	if raises != 1 {
		t.Errorf("the HPA had to raise search %d times, want 1 (replicas seen: %v)", raises, seen.of("search"))
	}
	note := "spec.replicas (2 in git) is left to HorizontalPodAutoscaler/" + f.ns + "/search"
	if n := strings.Count(f.out.String(), note); n != 1 {
		t.Errorf("note %q printed %d times, want once:\n%s", note, n, f.out.String())
	}
	f.eventually("search at the HPA's 4 and indexer at 5, rolled out", time.Minute, func() bool {
		return rolledOut(f.deployment("search"), "registry.example.invalid/search:12.1.0") &&
			rolledOut(f.deployment("indexer"), "registry.example.invalid/indexer:3.0.0")
	})
	f.pass(a) // records the phase Synced
	f.assertNoWrites(a)

	f.repo.Commit("search and indexer: stop declaring replicas", map[string]string{
		"apps/search/search.yaml": fieldsFixture(t, "hpa-search-v2.yaml"),
		"apps/indexer/indexer.yaml": strings.Replace(fieldsFixture(t, "hpa-indexer-v2.yaml"),
			"indexer:3.0.0", "indexer:3.0.1", 1),
	})
	f.pass(a)
	f.eventually("indexer rolled to 3.0.1", time.Minute, func() bool {
		return rolledOut(f.deployment("indexer"), "registry.example.invalid/indexer:3.0.1")
	})
	f.pass(a)
	seen.caughtUp(f, "indexer", "search")
	if got := seen.of("indexer"); !slices.Equal(got, []int32{5}) {
		t.Errorf("indexer spec.replicas went %v, want 5 throughout", got)
	}
	if got := seen.of("search"); !slices.Equal(got, []int32{2, 4}) {
		t.Errorf("search spec.replicas went %v, want [2 4]", got)
	}
	if _, err := deploys.Patch(ctx, "indexer", types.MergePatchType, []byte(`{"spec":{"replicas":6}}`),
		metav1.PatchOptions{FieldManager: "kubectl-scale"}, "scale"); err != nil {
		t.Fatal(err)
	}
	f.eventually("indexer at 6 replicas", time.Minute, func() bool {
		return rolledOut(f.deployment("indexer"), "registry.example.invalid/indexer:3.0.1")
	})
	f.pass(a) // records the phase
	f.assertNoWrites(a)
	if got := *f.deployment("indexer").Spec.Replicas; got != 6 {
		t.Errorf("indexer after kubectl scale and a pass: %d replicas, want 6", got)
	}
	for _, app := range []string{"search", "indexer"} {
		if st := f.appState(app); st.Phase != state.Synced && st.Phase != state.Progressing {
			t.Errorf("app %s: %s %s", app, st.Phase, st.Reason)
		}
	}
}

// TestImmutableFields (case 08): a Job template change is rejected in one
// line naming file, object, field and the way out, and nothing of the
// revision is applied; with gitpace.dev/recreate the Job is deleted and
// created again, said in history. A headless Service whose clusterIP: None
// leaves git (which the API server would keep silently) is rejected the
// same way, and re-created when it opts in.
func TestImmutableFields(t *testing.T) {
	f := newFixture(t)
	file := "apps/platform/platform.yaml"
	f.repo.Commit("release 41", map[string]string{file: fieldsFixture(t, "immutable-v1.yaml")})
	a := f.fullPasses()
	f.pass(a)
	ctx := context.Background()
	jobUID := func() (types.UID, string) {
		j, err := f.kube.BatchV1().Jobs(f.ns).Get(ctx, "db-migrate", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return j.UID, j.Spec.Template.Spec.Containers[0].Image
	}
	schema := func() string {
		cm, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "migrate-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["TARGET_SCHEMA"]
	}
	clusterIP := func() string {
		s, err := f.kube.CoreV1().Services(f.ns).Get(ctx, "api-peers", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Spec.ClusterIP
	}
	uid41, _ := jobUID()
	rejected := func(object, field string) {
		t.Helper()
		st := f.appState("platform")
		if st.Phase != state.Failed || st.Rejected == nil {
			t.Fatalf("platform: %s %q, want Failed (rejected)", st.Phase, st.Reason)
		}
		msg := st.Rejected.Error
		for _, want := range []string{file, object, field, appliers.RecreateAnnotation} {
			if !strings.Contains(msg, want) {
				t.Errorf("rejection %q does not name %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") || len([]rune(msg)) > 360 || len([]rune(st.Reason)) > 400 {
			t.Errorf("rejection is not one short line (%d characters): %q", len([]rune(msg)), msg)
		}
		if len(st.Rejected.Detail) < len(msg)/2 || !strings.Contains(st.Rejected.Detail, field) {
			t.Errorf("Rejection.Detail %q lacks the server's text", st.Rejected.Detail)
		}
		for _, line := range strings.Split(f.out.String(), "\n") {
			if len(line) > 600 {
				t.Errorf("stdout line of %d bytes: %.200s...", len(line), line)
			}
		}
	}

	f.repo.Commit("release 42: migrate schema to 42", map[string]string{file: fieldsFixture(t, "immutable-v2.yaml")})
	f.pass(a)
	rejected("Job/"+f.ns+"/db-migrate", "spec.template")
	if uid, image := jobUID(); uid != uid41 || !strings.HasSuffix(image, ":41") || schema() != "41" {
		t.Errorf("rejected revision applied in part: Job %s %s, TARGET_SCHEMA %s", uid, image, schema())
	}

	f.repo.Commit("db-migrate: re-create on change", map[string]string{file: fieldsFixture(t, "immutable-v3.yaml")})
	f.pass(a)
	if uid, image := jobUID(); uid == uid41 || !strings.HasSuffix(image, ":42") || schema() != "42" {
		t.Errorf("after opting in: Job uid %s (was %s) image %s, TARGET_SCHEMA %s; want a new Job at 42", uid, uid41, image, schema())
	}
	st := f.appState("platform")
	if e := st.Last(); e == nil || !strings.Contains(e.Message, "re-created Job/"+f.ns+"/db-migrate") {
		t.Errorf("history does not record the re-creation: %+v", e)
	}
	if !strings.Contains(f.out.String(), "1 recreated") {
		t.Errorf("output does not report the re-creation:\n%s", f.out.String())
	}

	f.repo.Commit("api-peers: plain ClusterIP service", map[string]string{file: fieldsFixture(t, "immutable-v4.yaml")})
	f.pass(a)
	rejected("Service/"+f.ns+"/api-peers", "spec.clusterIP")
	if ip := clusterIP(); ip != "None" {
		t.Fatalf("clusterIP = %q, want None still", ip)
	}
	f.repo.Commit("api-peers: re-create", map[string]string{file: fieldsFixture(t, "immutable-v5.yaml")})
	f.pass(a)
	if ip := clusterIP(); ip == "None" || ip == "" {
		t.Errorf("after opting in: clusterIP = %q, want an allocated address", ip)
	}
	if st := f.appState("platform"); st.Phase != state.Synced {
		t.Errorf("platform %s %q, want Synced", st.Phase, st.Reason)
	}
	f.assertNoWrites(a)
}

// TestSecretStringData (case 13): stringData is applied as data, so a key
// that leaves stringData leaves the Secret, the same values written as data
// are no change (no write), a key removed from data goes, and no pass
// rewrites the Secret.
func TestSecretStringData(t *testing.T) {
	f := newFixture(t)
	file := "apps/mailer/mailer.yaml"
	f.repo.Commit("mailer: smtp secret", map[string]string{file: fieldsFixture(t, "stringdata-v1.yaml")})
	a := f.fullPasses()
	step := func(want ...string) string {
		t.Helper()
		f.pass(a)
		data, rv := f.secretKeys("smtp")
		if got := sortedNames(data); !slices.Equal(got, want) {
			t.Errorf("keys = %v, want %v", got, want)
		}
		if st := f.appState("mailer"); st.Phase != state.Synced {
			t.Errorf("mailer %s %q", st.Phase, st.Reason)
		}
		f.assertNoWrites(a)
		return rv
	}
	step("HOST", "LEGACY_RELAY", "PASSWORD", "USER")
	f.repo.Commit("mailer: drop the legacy relay", map[string]string{file: fieldsFixture(t, "stringdata-v2.yaml")})
	rv := step("HOST", "PASSWORD", "USER")
	f.repo.Commit("mailer: use data instead of stringData", map[string]string{file: fieldsFixture(t, "stringdata-v3.yaml")})
	if step("HOST", "PASSWORD", "USER") != rv {
		t.Error("the same values written as data rewrote the Secret")
	}
	data, _ := f.secretKeys("smtp")
	if string(data["USER"]) != "mailer" || base64.StdEncoding.EncodeToString(data["HOST"]) != "c210cC5leGFtcGxlLmludmFsaWQ=" {
		t.Error("values changed")
	}
	f.repo.Commit("mailer: USER is no longer needed", map[string]string{file: fieldsFixture(t, "stringdata-v4.yaml")})
	step("HOST", "PASSWORD")
}
