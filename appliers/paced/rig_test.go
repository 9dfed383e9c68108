package paced

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// trace logs every step of every drive ($PACED_TRACE=1).
var trace = os.Getenv("PACED_TRACE") != ""

// seedSpec is the seed's deployment "test" (test1-1-0 is v1.1.0 on port
// 8000, test1-1-1 is v1.1.1 on port 8888) in namespace ns, as the agent
// would hand it to the engine. unique adds the seed's UNIQUE InnerIP
// constraint (one pod per node, old and new applications together).
func seedSpec(ns, version string, instance, surge, unavailable int32, order string, upgrade time.Duration, unique bool) Spec {
	port := int32(8000)
	if version != "v1.1.0" {
		port = 8888
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"appname": "test"}},
		Spec: appsv1.ReplicaSetSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"appname": "test"}},
				// kwok removes a deleted pod at a random time within its grace
				// period, as a kubelet would at worst; keep it short.
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr(int64(1)), Containers: []corev1.Container{{
					Name: "test", Image: "hub.docker.com:xxxx/xxxxxx:" + version,
					Command: []string{"python"}, Args: []string{"-m", "SimpleHTTPServer", fmt.Sprint(port)},
					Ports: []corev1.ContainerPort{{Name: "test-port", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
				}}},
			},
		},
	}
	if unique {
		rs.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{vocab.LabelDeployment: "test"}},
				TopologyKey:   "kubernetes.io/hostname",
			}},
		}}
	}
	return Spec{
		Namespace: ns, Name: "test", Instance: instance,
		Strategy:     Strategy{MaxSurge: surge, MaxUnavailable: unavailable, UpgradeDuration: upgrade, Order: order},
		Template:     rs,
		TemplateHash: "hash-" + version,
		Revision:     "commit-" + version,
	}
}

func image(p *corev1.Pod) string { return p.Spec.Containers[0].Image }

// event is one entry of a rig's timeline: a ReplicaSet created, scaled or
// deleted, or the pod counts of an application after a pod event.
type event struct {
	rv         uint64 // resourceVersion of the object after the change: etcd's global order
	at         time.Time
	app        string
	kind       string // "create", "scale", "delete", "pods"
	replicas   int32  // create, scale
	pods, good int32  // pods: existing and Ready pods of app
}

// rig watches one deployment's ReplicaSets and pods in a test namespace:
// it keeps a timeline for assertions and wakes the reconcile loop.
type rig struct {
	t    *testing.T
	cs   kubernetes.Interface
	ns   string
	pods *testenv.PodWatch
	wake chan struct{}

	mu       sync.Mutex
	timeline []event
	replicas map[string]int32
	rsSeen   map[string]string // resourceVersion of each ReplicaSet as the watch last saw it
	podsOf   map[string]*corev1.Pod
	maxRS    int
}

func newRig(t *testing.T) *rig {
	t.Helper()
	cs := testenv.Client(t)
	ns := testenv.Namespace(t)
	r := &rig{t: t, cs: cs, ns: ns, wake: make(chan struct{}, 1), replicas: map[string]int32{}, rsSeen: map[string]string{}, podsOf: map[string]*corev1.Pod{}}
	r.pods = testenv.WatchPods(t, cs, ns, vocab.LabelDeployment+"=test")
	ctx, cancel := context.WithCancel(context.Background())
	rsw, err := cs.AppsV1().ReplicaSets(ns).Watch(ctx, metav1.ListOptions{LabelSelector: vocab.LabelDeployment + "=test"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pw, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: vocab.LabelDeployment + "=test"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.follow(rsw, r.onRS) }()
	go func() { defer wg.Done(); r.follow(pw, r.onPod) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

func (r *rig) follow(w watch.Interface, on func(watch.Event)) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		r.mu.Lock()
		on(ev)
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (r *rig) onRS(ev watch.Event) {
	rs, ok := ev.Object.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	now, rv := time.Now(), resourceVersion(rs)
	if ev.Type == watch.Deleted {
		delete(r.rsSeen, rs.Name)
	} else {
		r.rsSeen[rs.Name] = rs.ResourceVersion
	}
	switch ev.Type {
	case watch.Added:
		r.replicas[rs.Name] = *rs.Spec.Replicas
		r.timeline = append(r.timeline, event{rv: rv, at: now, app: rs.Name, kind: "create", replicas: *rs.Spec.Replicas})
	case watch.Modified:
		if n := *rs.Spec.Replicas; n != r.replicas[rs.Name] {
			r.replicas[rs.Name] = n
			r.timeline = append(r.timeline, event{rv: rv, at: now, app: rs.Name, kind: "scale", replicas: n})
		}
	case watch.Deleted:
		delete(r.replicas, rs.Name)
		r.timeline = append(r.timeline, event{rv: rv, at: now, app: rs.Name, kind: "delete"})
	}
	r.maxRS = max(r.maxRS, len(r.replicas))
}

func (r *rig) onPod(ev watch.Event) {
	p, ok := ev.Object.(*corev1.Pod)
	if !ok {
		return
	}
	app := p.Labels[vocab.LabelApplication]
	before := r.count(app)
	if ev.Type == watch.Deleted {
		delete(r.podsOf, p.Name)
	} else {
		r.podsOf[p.Name] = p
	}
	if after := r.count(app); after.pods != before.pods || after.good != before.good {
		after.rv = resourceVersion(p)
		r.timeline = append(r.timeline, after)
	}
}

// count is app's pod counts as a "pods" event; callers hold mu.
func (r *rig) count(app string) event {
	e := event{at: time.Now(), app: app, kind: "pods"}
	for _, p := range r.podsOf {
		if p.Labels[vocab.LabelApplication] != app {
			continue
		}
		e.pods++
		if p.DeletionTimestamp == nil && testenv.PodReady(p) {
			e.good++
		}
	}
	return e
}

// events returns a copy of the timeline in etcd order: the ReplicaSet and
// pod watches are two streams, so arrival order may interleave them wrongly.
// It first waits until the watches have caught up (caughtUp).
func (r *rig) events() []event {
	r.caughtUp()
	r.mu.Lock()
	out := append([]event(nil), r.timeline...)
	r.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].rv < out[j].rv })
	return out
}

// caughtUp waits until the rig's watches have delivered every change made
// so far: until its view of the deployment's ReplicaSets and pods (each
// one's resourceVersion) is what a fresh list returns. The engine's last
// write (often the old application's delete) returns before its watch
// event arrives, so a timeline read at once may lack it; and a check that
// nothing changed must not read the timeline before a change could show.
func (r *rig) caughtUp() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := testenv.CaughtUp(ctx, r.cs, r.ns, vocab.LabelDeployment+"=test", func(rss []appsv1.ReplicaSet, pods []corev1.Pod) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return testenv.SameVersions(rss, r.rsSeen, func(rs *appsv1.ReplicaSet) string { return rs.Name }) &&
			testenv.SameVersions(pods, testenv.PodVersions(r.podsOf), func(p *corev1.Pod) string { return p.Name })
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

// mark is the cluster's current resourceVersion: events after it have
// larger ones.
func (r *rig) mark(ctx context.Context) uint64 {
	r.t.Helper()
	list, err := r.cs.AppsV1().ReplicaSets(r.ns).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		r.t.Fatal(err)
	}
	rv, err := strconv.ParseUint(list.ResourceVersion, 10, 64)
	if err != nil {
		r.t.Fatalf("list resourceVersion %q: %v", list.ResourceVersion, err)
	}
	return rv
}

func resourceVersion(obj metav1.Object) uint64 {
	rv, _ := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	return rv
}

// steps renders the timeline's ReplicaSet changes as "create new 0",
// "new 2", "old 1", "delete old"; role maps an application name to its role.
func (r *rig) steps(since uint64, role func(string) string) []string {
	var out []string
	for _, e := range r.events() {
		if e.rv <= since {
			continue
		}
		switch e.kind {
		case "create":
			out = append(out, fmt.Sprintf("create %s %d", role(e.app), e.replicas))
		case "scale":
			out = append(out, fmt.Sprintf("%s %d", role(e.app), e.replicas))
		case "delete":
			out = append(out, "delete "+role(e.app))
		}
	}
	return out
}

// roles names "test" old and every other application new.
func roles(app string) string {
	if app == "test" {
		return "old"
	}
	return "new"
}

// drive calls Reconcile until done says stop, waiting between calls for a
// watch event or the returned RequeueAfter, within ctx. engine is called
// for every step (return a fresh Engine to forget everything in memory); a
// call ending in errCrash is followed by the next call at once.
func (r *rig) drive(ctx context.Context, engine func() *Engine, spec Spec, c *Controls, done func(Status) bool) Status {
	r.t.Helper()
	for {
		cc := *c
		cc.Now = time.Now()
		st, err := engine().Reconcile(ctx, spec, cc)
		if errors.Is(err, errCrash) {
			continue // a simulated crash: the next call takes over
		}
		if err != nil {
			r.t.Fatalf("Reconcile: %v", err)
		}
		if trace {
			r.t.Logf("%s %s requeue %s", time.Now().Format("15:04:05.000"), describeStatus(st), st.RequeueAfter)
		}
		if done(st) {
			return st
		}
		timer := time.NewTimer(st.RequeueAfter)
		select {
		case <-r.wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			r.t.Fatalf("deployment %s/test: %v; last status %s", r.ns, ctx.Err(), describeStatus(st))
		}
		timer.Stop()
	}
}

func describeStatus(s Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s phase=%s cycle %d of %d rollout=%s reason=%q action=%q", s.Status, s.Phase, s.Cycle, s.Cycles, s.Rollout, s.Reason, s.Action)
	for _, a := range s.Apps {
		fmt.Fprintf(&b, "\n  %s %s %d/%d %s", a.Name, a.Status, a.RunningInstance, a.Instance, a.Message)
	}
	return b.String()
}

func isDone(s Status) bool { return s.Done }

// rsReplicas returns the ReplicaSets of deployment test by name with their
// spec.replicas.
func (r *rig) rsReplicas(ctx context.Context) map[string]int32 {
	r.t.Helper()
	list, err := r.cs.AppsV1().ReplicaSets(r.ns).List(ctx, metav1.ListOptions{LabelSelector: Selector("test")})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]int32{}
	for _, rs := range list.Items {
		out[rs.Name] = *rs.Spec.Replicas
	}
	return out
}

// waitPods waits until the deployment's pods are exactly n Ready pods of
// image version.
func (r *rig) waitPods(ctx context.Context, n int, version string) {
	r.t.Helper()
	err := r.pods.Until(ctx, fmt.Sprintf("%d Ready pods of %s and no others", n, version), func(pods []corev1.Pod) bool {
		if len(pods) != n {
			return false
		}
		for i := range pods {
			if !strings.HasSuffix(image(&pods[i]), ":"+version) || !testenv.PodReady(&pods[i]) {
				return false
			}
		}
		return true
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

// hold calls reconcile for d, on every watch event and at least every
// 200ms (the agent's timer), to show that nothing moves.
func (r *rig) hold(ctx context.Context, d time.Duration, reconcile func()) {
	hold, stop := context.WithTimeout(ctx, d)
	defer stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for hold.Err() == nil {
		reconcile()
		select {
		case <-r.wake:
		case <-tick.C:
		case <-hold.Done():
		}
	}
}

func ptr[T any](v T) *T { return &v }
