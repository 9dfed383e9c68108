package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
)

// -apps is the size of the side-by-side scenarios (the 200 apps of
// ConfigMap + Service + Deployment), -big-apps that of the scale ones.
// Smaller sizes make a quick trial of the harness:
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/ -args -apps 10 -big-apps 20
var (
	appsFlag    = flag.Int("apps", 200, "apps in the side-by-side scenarios")
	bigAppsFlag = flag.Int("big-apps", 1000, "apps in the scale scenarios")
)

// changedApp is the app of -big-apps whose ConfigMap one commit changes: the
// middle one.
func changedApp() string { return fmt.Sprintf("app-%04d", *bigAppsFlag/2) }

const (
	// floorInFlight bounds the floor's concurrent requests.
	floorInFlight = 16
	// idleInterval is --interval of the idle agent, and idleWindow how long
	// its requests are counted once it settled: ten polls.
	idleInterval, idleWindow = time.Second, 10 * time.Second
	// quiet is how long a running agent must have sent no request (but
	// watches) to count as settled.
	quiet = 5 * time.Second
)

// BenchmarkSideBySide measures, in one run on one control plane and each
// in namespaces of its own (deleted, and waited for, before the next):
//
//   - kubectl apply --server-side -R -f of 200 apps: cold and no-op;
//   - the floor: client-go server-side apply in this process, a dry run of
//     every object, then the apply of every object, 16 requests in flight;
//   - gitpace run --once at its default flags on the same 200 apps, from a
//     bare repository as a file:// URL: cold; then, once every rollout
//     finished, gitpace run polling every second: the requests of ten polls
//     once it settled (idle); then, that agent stopped, a no-op in a fresh
//     process (an agent restart);
//   - 1,000 apps: gitpace run --once cold; then, once every Deployment
//     rolled out, gitpace run on the bare repository's path (watched with
//     fsnotify): its start (a no-op of 1,000 apps in a fresh process, which
//     records the rollouts run --once left in flight as Synced), ten seconds idle, and a push changing one
//     app's ConfigMap: push → first write of the app's objects, and every
//     object read or written meanwhile.
//
// It prints one table (wall time, requests by verb, peak RSS), the
// requests by kind, the ratios against kubectl and the floor, and the
// issue's goals as PASS or MISS; it fails only when a contestant fails
// (exits non-zero, or leaves objects missing), never on a timing.
func BenchmarkSideBySide(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h := newHarness(b)
		h.kubectl()
		h.floor()
		h.gitpace200()
		h.gitpace1000()
		b.StopTimer()
		h.report(os.Stdout)
	}
}

// harness holds what the scenarios share.
type harness struct {
	b          *testing.B
	cs         kubernetes.Interface // admin, direct: setup, checks, cleanup
	px         *proxy               // every contestant's way to the API server
	env        []string             // KUBECONFIG through px, for processes
	kubectlBin string
	gitpace    string
	built      time.Duration
	start      time.Time
	rows       []*row
	change     changeResult
	notes      []string
}

// row is one contestant's figures in one scenario.
type row struct {
	key                  string // e.g. "gitpace-cold", for ratios and goals
	contestant, scenario string
	wall                 time.Duration
	reqs                 []request
	rss                  int64   // bytes; 0 when not a process of its own
	server               float64 // apiserver_request_total delta over the scenario (all clients); <0 unknown
	stateNS              string  // requests there are gitpace's state
	uncounted            bool    // the contestant did not go through the proxy
}

func newHarness(b *testing.B) *harness {
	h := &harness{b: b, cs: testenv.Client(b), start: time.Now()}
	h.kubectlBin = findKubectl(b)
	h.gitpace, h.built = buildGitpace(b)
	h.px = startProxy(b, testenv.Config(b))
	h.env = []string{"KUBECONFIG=" + h.px.kubeconfig}
	h.progress("built gitpace in %s; kubectl %s; proxy %s", h.built.Round(time.Millisecond), h.kubectlBin, h.px.srv.URL)
	h.waitNoTerminating()
	b.ResetTimer()
	return h
}

// progress prints a line on stderr as the scenarios go (they take minutes).
func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %6s  %s\n", time.Since(h.start).Round(time.Second), fmt.Sprintf(format, args...))
}

// measure runs f, a contestant's scenario, and records its requests, the
// API server's request count meanwhile, its wall time and, for a process,
// its peak RSS.
func (h *harness) measure(key, contestant, scenario, stateNS string, f func() (time.Duration, *proc)) *row {
	h.progress("%s: %s", contestant, scenario)
	before := h.apiserverRequests()
	h.px.rec.take()
	wall, p := f()
	r := row{key: key, contestant: contestant, scenario: scenario, wall: wall, reqs: h.px.rec.take(), server: -1, stateNS: stateNS}
	if after := h.apiserverRequests(); before >= 0 && after >= 0 {
		r.server = after - before
	}
	if p != nil {
		r.rss = p.peakRSS()
	}
	h.rows = append(h.rows, &r)
	h.progress("  %s, %d requests", wall.Round(time.Millisecond), len(r.reqs))
	return &r
}

// run runs a process to its end and returns its wall time.
func (h *harness) run(label, bin string, args ...string) (time.Duration, *proc) {
	p := startProc(h.b, label, h.env, bin, args...)
	p.wait(h.b)
	return p.wall(), p
}

func (h *harness) kubectl() {
	ns := testenv.Namespace(h.b)
	dir := h.b.TempDir()
	writeFiles(h.b, dir, appFiles(ns, *appsFlag))
	// kubectl's discovery cache, warmed first: a user's kubectl has one.
	cache := h.b.TempDir()
	h.run("kubectl api-resources", h.kubectlBin, "--cache-dir", cache, "api-resources")
	apply := []string{"--cache-dir", cache, "apply", "--server-side", "-R", "-f", filepath.Join(dir, "apps")}
	h.measure("kubectl-cold", "kubectl apply --server-side", fmt.Sprintf("%d apps cold", *appsFlag), "", func() (time.Duration, *proc) {
		return h.run("kubectl apply (cold)", h.kubectlBin, apply...)
	})
	h.checkApplied(ns, *appsFlag)
	h.measure("kubectl-noop", "kubectl apply --server-side", fmt.Sprintf("%d apps no-op", *appsFlag), "", func() (time.Duration, *proc) {
		return h.run("kubectl apply (no-op)", h.kubectlBin, apply...)
	})
	// The same, straight to the API server: what the proxy costs.
	direct := []string{"KUBECONFIG=" + testenv.Kubeconfig()}
	directCache := h.b.TempDir()
	startProc(h.b, "kubectl api-resources (direct)", direct, h.kubectlBin, "--cache-dir", directCache, "api-resources").wait(h.b)
	r := h.measure("kubectl-noop-direct", "kubectl apply --server-side", fmt.Sprintf("%d apps no-op, no proxy", *appsFlag), "", func() (time.Duration, *proc) {
		p := startProc(h.b, "kubectl apply (no-op, direct)", direct, h.kubectlBin, append([]string{"--cache-dir", directCache}, apply[2:]...)...)
		p.wait(h.b)
		return p.wall(), p
	})
	r.uncounted = true
	h.deleteNamespaces(ns)
}

func (h *harness) floor() {
	ns := testenv.Namespace(h.b)
	objs := objectsOf(h.b, appFiles(ns, *appsFlag))
	dyn, err := dynamic.NewForConfig(h.px.restConfig(h.b))
	if err != nil {
		h.b.Fatal(err)
	}
	h.measure("floor-cold", fmt.Sprintf("floor (client-go SSA, %d in flight)", floorInFlight), fmt.Sprintf("%d apps cold", *appsFlag), "", func() (time.Duration, *proc) {
		start := time.Now()
		for _, dryRun := range []bool{true, false} {
			if err := applyAll(context.Background(), dyn, objs, dryRun); err != nil {
				h.b.Fatalf("floor (dry run %v): %v", dryRun, err)
			}
		}
		return time.Since(start), nil
	})
	h.checkApplied(ns, *appsFlag)
	h.deleteNamespaces(ns)
}

func (h *harness) gitpace200() {
	ns, stateNS := testenv.Namespace(h.b), testenv.Namespace(h.b)
	repo := gittest.New(h.b)
	gitCommit(h.b, repo.Dir, fmt.Sprintf("%d apps", *appsFlag), appFiles(ns, *appsFlag))
	once := []string{"run", "--once", "--repo", "file://" + repo.Bare(), "--path", "apps", "--state-namespace", stateNS}
	h.measure("gitpace-cold", "gitpace run --once", fmt.Sprintf("%d apps cold", *appsFlag), stateNS, func() (time.Duration, *proc) {
		return h.run("gitpace run --once (cold)", h.gitpace, once...)
	})
	h.checkApplied(ns, *appsFlag)
	h.waitRolledOut(ns)

	// Idle: a running agent polling the file:// remote every second. It
	// settles first: its first pass records the rollouts that run --once
	// left in flight, finished since (Progressing, now Synced).
	args := append([]string{"run", "--interval", idleInterval.String(), "--listen", ""}, once[2:]...)
	p := startProc(h.b, "gitpace run (idle)", h.env, h.gitpace, args...)
	h.settle(p, "gitpace run (idle)", p.start)
	r := h.measure("gitpace-idle", "gitpace run --interval 1s", fmt.Sprintf("%d apps idle, %s (%d polls)", *appsFlag, idleWindow, int(idleWindow/idleInterval)), stateNS, func() (time.Duration, *proc) {
		time.Sleep(idleWindow) // a measuring window, not a wait for a condition
		return idleWindow, nil
	})
	p.stop(h.b)
	r.rss = p.peakRSS()

	// No-op: that agent restarted (a fresh process), nothing changed since
	// it stopped: objects equal to git, every state as it recorded it.
	h.measure("gitpace-noop", "gitpace run --once", fmt.Sprintf("%d apps no-op, fresh process (agent restart)", *appsFlag), stateNS, func() (time.Duration, *proc) {
		return h.run("gitpace run --once (no-op)", h.gitpace, once...)
	})
	h.deleteNamespaces(ns, stateNS)
}

func (h *harness) gitpace1000() {
	ns, stateNS := testenv.Namespace(h.b), testenv.Namespace(h.b)
	files := appFiles(ns, *bigAppsFlag)
	repo := gittest.New(h.b)
	gitCommit(h.b, repo.Dir, fmt.Sprintf("%d apps", *bigAppsFlag), files)
	bare := repo.Bare()
	h.measure("gitpace-1000-cold", "gitpace run --once", fmt.Sprintf("%d apps cold", *bigAppsFlag), stateNS, func() (time.Duration, *proc) {
		return h.run("gitpace run --once (1000 cold)", h.gitpace, "run", "--once", "--repo", "file://"+bare, "--path", "apps", "--state-namespace", stateNS)
	})
	h.checkApplied(ns, *bigAppsFlag)
	// The running agent's start records the rollouts run --once left in
	// flight; once they finished, so that idle and the change that follow
	// measure an agent with nothing else to do.
	h.waitRolledOut(ns)

	// The same agent identity (a path and its file:// URL are one), now
	// running on the path: read in place, refs watched with fsnotify.
	h.px.rec.take()
	p := startProc(h.b, "gitpace run (1000)", h.env, h.gitpace, "run", "--repo", bare, "--path", "apps", "--state-namespace", stateNS, "--listen", "")
	before := h.apiserverRequests()
	last := h.settle(p, "gitpace run (1000)", p.start)
	start := h.measureSince("gitpace-1000-start", "gitpace run (local repo)", fmt.Sprintf("%d apps, start (no-op, fresh process)", *bigAppsFlag), stateNS, last.Sub(p.start), before)
	idle := h.measure("gitpace-1000-idle", "gitpace run (local repo)", fmt.Sprintf("%d apps idle, %s", *bigAppsFlag, idleWindow), stateNS, func() (time.Duration, *proc) {
		time.Sleep(idleWindow) // a measuring window, not a wait for a condition
		return idleWindow, nil
	})

	// One app changes: its ConfigMap's data.
	ctx := context.Background()
	w := h.watchConfigMap(ctx, ns)
	defer func() { w.Stop() }()
	key := "apps/" + changedApp() + "/all.yaml"
	gitCommit(h.b, repo.Dir, "change "+changedApp(), map[string]string{key: strings.Replace(files[key], `setting: "on"`, `setting: "off"`, 1)})
	h.progress("gitpace run (local repo): push changing %s", changedApp())
	before = h.apiserverRequests()
	h.px.rec.take()
	pushed := time.Now()
	repo.PushTo(bare)
	h.change.applied = h.waitConfigMap(ctx, ns, &w, pushed)
	last = h.settle(p, "gitpace run (1000), after the push", pushed)
	ch := h.measureSince("gitpace-1000-change", "gitpace run (local repo)", fmt.Sprintf("one app of %d changed (push → settled)", *bigAppsFlag), stateNS, last.Sub(pushed), before)
	h.change.analyse(ch.reqs, ns, stateNS, pushed)

	p.stop(h.b)
	for _, r := range []*row{start, idle, ch} {
		r.rss = p.peakRSS() // the running process's peak over its whole life
	}
	// The last scenario: its namespaces go when the benchmark ends
	// (testenv.Namespace), unwaited for.
}

// measureSince records a row for the requests the proxy saw since the last
// take, with wall time wall and the API server's count since before.
func (h *harness) measureSince(key, contestant, scenario, stateNS string, wall time.Duration, before float64) *row {
	r := row{key: key, contestant: contestant, scenario: scenario, wall: wall, reqs: h.px.rec.take(), server: -1, stateNS: stateNS}
	if after := h.apiserverRequests(); before >= 0 && after >= 0 {
		r.server = after - before
	}
	h.rows = append(h.rows, &r)
	h.progress("%s: %s: %s, %d requests", contestant, scenario, wall.Round(time.Millisecond), len(r.reqs))
	return &r
}

// settle waits until the running agent p has sent at least one request
// after since and then none but watches for `quiet`, and returns when its
// last request arrived. It fails the benchmark if p exits, and notes it if
// p does not settle within ten minutes.
func (h *harness) settle(p *proc, label string, since time.Time) time.Time {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		select {
		case <-p.done:
			h.b.Fatalf("%s exited: %v\nstderr (end):\n%s", label, p.err, tail(p.stderr.String()))
		case <-time.After(100 * time.Millisecond):
		}
		last := h.px.rec.last()
		if last.After(since) && time.Since(last) >= quiet {
			return last
		}
		if time.Now().After(deadline) {
			h.notes = append(h.notes, fmt.Sprintf("%s did not settle within 10 minutes (requests continued)", label))
			return time.Now()
		}
	}
}

// watchConfigMap watches the changed app's ConfigMap. It starts at the
// watch cache's newest version (no resourceVersion: an ADDED event of the
// object as it is first), since a watch from a GET's newer version ends at
// once ("Too large resource version") when a loaded API server's watch
// cache lags behind etcd.
func (h *harness) watchConfigMap(ctx context.Context, ns string) watch.Interface {
	w, err := h.cs.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + changedApp()})
	if err != nil {
		h.b.Fatal(err)
	}
	return w
}

// waitConfigMap waits for the watched ConfigMap to carry the changed data
// and returns how long after pushed it did (0 and a note after 10
// minutes). A watch the API server ends is started again; if the change
// came meanwhile, the time is when the new watch saw it (noted).
func (h *harness) waitConfigMap(ctx context.Context, ns string, w *watch.Interface, pushed time.Time) time.Duration {
	timeout := time.After(10 * time.Minute)
	restarted := false
	for {
		select {
		case ev, ok := <-(*w).ResultChan():
			if !ok {
				*w, restarted = h.watchConfigMap(ctx, ns), true
				continue
			}
			cm, isCM := ev.Object.(*corev1.ConfigMap)
			if !isCM || cm.Data["setting"] != "off" || (ev.Type != watch.Modified && ev.Type != watch.Added) {
				continue
			}
			if ev.Type == watch.Added && restarted {
				h.notes = append(h.notes, "the watch of the changed ConfigMap ended before the change: push → ConfigMap changed is an upper bound")
			}
			return time.Since(pushed)
		case <-timeout:
			h.notes = append(h.notes, fmt.Sprintf("ConfigMap %s did not change within 10 minutes of the push", changedApp()))
			return 0
		}
	}
}

// changeResult is what a one-app change did.
type changeResult struct {
	applied    time.Duration // push → the ConfigMap changed (seen by a watch)
	firstWrite time.Duration // push → first write naming one of the app's objects (seen by the proxy); 0 none
	thisApp    []string      // requests naming the app's objects
	otherApps  []string      // requests naming other apps' objects (up to 5 shown, otherN in all)
	otherN     int
	wideLists  []string // lists of the apps' namespace without a selector: they read every app
	state      int      // requests in the state namespace
	rest       int      // everything else but watches (discovery, cluster-scoped, selected lists)
}

func (c *changeResult) analyse(reqs []request, ns, stateNS string, pushed time.Time) {
	for _, r := range reqs {
		desc := describe(r)
		switch {
		case r.Verb == "watch":
		case r.Namespace == stateNS:
			c.state++
		case r.Namespace == ns && r.Resource != "namespaces" && r.Name == changedApp():
			c.thisApp = append(c.thisApp, desc+" "+r.Name)
			if r.write() && c.firstWrite == 0 {
				c.firstWrite = r.At.Sub(pushed)
			}
		case r.Namespace == ns && r.Resource != "namespaces" && r.Name != "":
			c.otherN++
			if len(c.otherApps) < 5 {
				c.otherApps = append(c.otherApps, desc+" "+r.Name)
			}
		case r.Namespace == ns && r.Verb == "list" && !r.Selector:
			c.wideLists = append(c.wideLists, desc)
		default:
			c.rest++
		}
	}
}

// describe names a request's kind: "apply configmaps (dry run)".
func describe(r request) string {
	s := r.Verb + " " + r.Resource
	if r.Subresource != "" {
		s += "/" + r.Subresource
	}
	if r.DryRun {
		s += " (dry run)"
	}
	return s
}

// appFiles is n apps of ConfigMap + Service + Deployment in namespace ns,
// as files apps/app-NNNN/all.yaml.
func appFiles(ns string, n int) map[string]string {
	files := make(map[string]string, n)
	for i := range n {
		name := fmt.Sprintf("app-%04d", i)
		files["apps/"+name+"/all.yaml"] = fmt.Sprintf(appYAML, name, ns)
	}
	return files
}

// appYAML is one app (the agent package's benchmark app), %[1]s its name,
// %[2]s its namespace. Its Service is headless: the local control plane's
// Service IP range (--service-cluster-ip-range 10.0.0.0/24) holds 254
// addresses, too few for 1,000 apps, or for 200 while another test holds
// some.
const appYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: web
        image: example/web:v1
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  clusterIP: None
  selector: {app: %[1]s}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s
  namespace: %[2]s
data:
  setting: "on"
`

func writeFiles(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// gitCommit writes files into the worktree dir and commits them with the
// git binary (go-git's Worktree.Add computes the whole status per file:
// quadratic in 1,000 apps).
func gitCommit(tb testing.TB, dir, msg string, files map[string]string) {
	tb.Helper()
	writeFiles(tb, dir, files)
	sig := gittest.Signature()
	for _, args := range [][]string{
		{"add", "-A"},
		{"-c", "user.name=" + sig.Name, "-c", "user.email=" + sig.Email, "-c", "commit.gpgsign=false", "commit", "-q", "-m", msg},
	} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// object is one manifest object, as the floor applies it.
type object struct {
	gvr       schema.GroupVersionResource
	ns, name  string
	body      []byte // JSON
	kindLabel string
}

// resources maps the kinds of appYAML to their resources (the floor does
// no discovery).
var resources = map[string]schema.GroupVersionResource{
	"Deployment": {Group: "apps", Version: "v1", Resource: "deployments"},
	"Service":    {Version: "v1", Resource: "services"},
	"ConfigMap":  {Version: "v1", Resource: "configmaps"},
}

func objectsOf(tb testing.TB, files map[string]string) []object {
	tb.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var objs []object
	for _, n := range names {
		for _, doc := range strings.Split(files[n], "\n---\n") {
			body, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				tb.Fatalf("%s: %v", n, err)
			}
			var m struct {
				Kind     string `json:"kind"`
				Metadata struct{ Name, Namespace string }
			}
			if err := json.Unmarshal(body, &m); err != nil {
				tb.Fatalf("%s: %v", n, err)
			}
			gvr, ok := resources[m.Kind]
			if !ok {
				tb.Fatalf("%s: kind %q has no resource here", n, m.Kind)
			}
			objs = append(objs, object{gvr: gvr, ns: m.Metadata.Namespace, name: m.Metadata.Name, body: body, kindLabel: m.Kind})
		}
	}
	return objs
}

// applyAll server-side applies every object (a dry run if dryRun),
// floorInFlight at a time, and returns the first error.
func applyAll(ctx context.Context, dyn dynamic.Interface, objs []object, dryRun bool) error {
	opts := metav1.PatchOptions{FieldManager: "bench-floor", Force: new(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	sem := make(chan struct{}, floorInFlight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, o := range objs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := dyn.Resource(o.gvr).Namespace(o.ns).Patch(ctx, o.name, types.ApplyPatchType, o.body, opts)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s %s/%s: %w", o.kindLabel, o.ns, o.name, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// checkApplied fails the benchmark unless namespace ns holds n ConfigMaps,
// Services and Deployments named app-NNNN.
func (h *harness) checkApplied(ns string, n int) {
	h.b.Helper()
	ctx := context.Background()
	count := map[string]int{}
	cms, err := h.cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, o := range cms.Items {
			if strings.HasPrefix(o.Name, "app-") {
				count["ConfigMaps"]++
			}
		}
	}
	svcs, err2 := h.cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err2 == nil {
		count["Services"] = len(svcs.Items)
	}
	deps, err3 := h.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err3 == nil {
		count["Deployments"] = len(deps.Items)
	}
	for _, e := range []error{err, err2, err3} {
		if e != nil {
			h.b.Fatalf("listing namespace %s: %v", ns, e)
		}
	}
	for _, kind := range []string{"ConfigMaps", "Services", "Deployments"} {
		if count[kind] != n {
			h.b.Fatalf("namespace %s holds %d %s named app-*, want %d", ns, count[kind], kind, n)
		}
	}
}

// waitRolledOut waits (up to 10 minutes, then notes it) until every
// Deployment in namespace ns has rolled out: its status observed its
// generation and all its replicas are updated and available.
func (h *harness) waitRolledOut(ns string) {
	ctx := context.Background()
	start := time.Now()
	for {
		list, err := h.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			h.b.Fatal(err)
		}
		pending := 0
		for _, d := range list.Items {
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			if s := d.Status; s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.AvailableReplicas != want {
				pending++
			}
		}
		if pending == 0 {
			h.progress("every Deployment of %s rolled out (%s)", ns, time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > 10*time.Minute {
			h.notes = append(h.notes, fmt.Sprintf("%d Deployments of %s not rolled out within 10 minutes", pending, ns))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// deleteNamespaces deletes the namespaces and waits until they are gone
// (their objects, ReplicaSets and pods deleted), so that the next scenario
// does not share the control plane with the cleanup.
func (h *harness) deleteNamespaces(names ...string) {
	ctx := context.Background()
	start := time.Now()
	for _, ns := range names {
		if err := h.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			h.b.Fatalf("deleting namespace %s: %v", ns, err)
		}
	}
	deadline := start.Add(10 * time.Minute)
	for _, ns := range names {
		for {
			_, err := h.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				h.b.Fatalf("namespace %s still there 10 minutes after its deletion (err %v)", ns, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	h.progress("deleted namespaces %s in %s", strings.Join(names, ", "), time.Since(start).Round(100*time.Millisecond))
}

// waitNoTerminating waits (up to 3 minutes) for namespaces being deleted,
// e.g. by an earlier benchmark, to go, so that their cleanup does not load
// the control plane during the measurements; it notes those that stay.
func (h *harness) waitNoTerminating() {
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		list, err := h.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			h.b.Fatal(err)
		}
		var terminating []string
		for _, ns := range list.Items {
			if ns.Status.Phase == corev1.NamespaceTerminating {
				terminating = append(terminating, ns.Name)
			}
		}
		if len(terminating) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.notes = append(h.notes, fmt.Sprintf("namespaces still being deleted when the measurements began: %s", strings.Join(terminating, ", ")))
			return
		}
		time.Sleep(time.Second)
	}
}

// apiserverRequests is the sum of the API server's apiserver_request_total
// (every client's completed requests, watches when they end), read from
// its /metrics with the admin client; -1 if it cannot be read.
func (h *harness) apiserverRequests() float64 {
	raw, err := h.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		return -1
	}
	var sum float64
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return -1
		}
		sum += v
	}
	return sum
}
