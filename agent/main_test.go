package agent_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// syncBuffer collects output safely; see testenv.Buffer.
type syncBuffer = testenv.Buffer

// requestCounter counts the API requests a client makes, split into writes
// (persisted: POST/PUT/PATCH/DELETE without dryRun) and the rest.
type requestCounter struct {
	writes, dryRuns, reads atomic.Int64
	rt                     http.RoundTripper
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case r.Method == http.MethodGet:
		c.reads.Add(1)
	case strings.Contains(r.URL.RawQuery, "dryRun="):
		c.dryRuns.Add(1)
	default:
		c.writes.Add(1)
	}
	return c.rt.RoundTrip(r)
}

// fixture is one test's git repository, namespaces and agent.
type fixture struct {
	t       *testing.T
	repo    *gittest.Repo
	ns      string
	stateNS string
	kube    kubernetes.Interface
	out     *syncBuffer
	logBuf  *syncBuffer
	counter *requestCounter
	agent   *agent.Agent
	cfg     agent.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, repo: gittest.New(t), ns: testenv.Namespace(t), stateNS: testenv.Namespace(t),
		kube: testenv.Client(t), out: &syncBuffer{}, logBuf: &syncBuffer{}, counter: &requestCounter{}}
	return f
}

// start builds the agent over f.repo's "apps" directory with a counting
// client. It does not run it.
func (f *fixture) build(rc *rest.Config) *agent.Agent {
	f.t.Helper()
	src, err := sources.NewGitSource(sources.GitConfig{URL: f.repo.Dir, Branch: "main", Path: "apps"})
	if err != nil {
		f.t.Fatal(err)
	}
	if rc == nil {
		rc = testenv.Config(f.t)
	}
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { f.counter.rt = rt; return f.counter })
	f.cfg = agent.Config{Source: src, Rest: rc, StateNamespace: f.stateNS, DefaultNamespace: f.ns,
		Interval: time.Hour, Resync: time.Hour, Out: f.out, Log: f.logger()}
	a, err := agent.New(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.agent = a
	return a
}

// rebuild makes a new agent from f.cfg (after a test changed it).
func (f *fixture) rebuild() *agent.Agent {
	f.t.Helper()
	a, err := agent.New(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.agent = a
	return a
}

// run starts the agent in the background until the test ends.
func (f *fixture) run() {
	f.t.Helper()
	if f.agent == nil {
		f.build(nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.agent.Run(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		<-done
		if f.t.Failed() {
			f.t.Logf("agent output:\n%s\nlogs:\n%s", f.out.String(), f.logs())
		}
	})
}

func (f *fixture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(f.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (f *fixture) logs() string { return f.logBuf.String() }

// eventually polls cond (a read of cluster or agent state) until it holds.
func (f *fixture) eventually(what string, timeout time.Duration, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %s waiting for %s\nagent output:\n%s", timeout, what, f.out.String())
		}
		time.Sleep(100 * time.Millisecond) // poll interval of the condition, not a stand-in for it
	}
}

func (f *fixture) appState(app string) *state.App {
	f.t.Helper()
	st, err := state.NewStore(f.kube, f.stateNS).Find(context.Background(), app)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) deployment(name string) *appsv1.Deployment {
	d, err := f.kube.AppsV1().Deployments(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return d
}

// settledReplicaSets waits until the Deployment controller has observed
// Deployment name's current generation (so the ReplicaSet of its current
// template exists), then lists the ReplicaSets matching selector. A bare
// list right after an apply races the controller: it may not have created
// the first ReplicaSet yet.
func (f *fixture) settledReplicaSets(name, selector string) []appsv1.ReplicaSet {
	f.t.Helper()
	f.eventually("the Deployment controller to observe "+name, time.Minute, func() bool {
		d := f.deployment(name)
		return d != nil && d.Status.ObservedGeneration >= d.Generation
	})
	return f.replicaSets(selector)
}

func (f *fixture) replicaSets(selector string) []appsv1.ReplicaSet {
	l, err := f.kube.AppsV1().ReplicaSets(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		f.t.Fatal(err)
	}
	return l.Items
}

func seed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withReadyDelay adds a pod-template annotation to a seed manifest so each
// pod takes d to become Ready.
func withReadyDelay(manifest, d string) string {
	return strings.Replace(manifest, "    metadata:\n      labels:\n        app: test\n",
		"    metadata:\n      annotations:\n        pod-ready.stage.kwok.x-k8s.io/delay: \""+d+"\"\n      labels:\n        app: test\n", 1)
}

func rolledOut(d *appsv1.Deployment, image string) bool {
	if d == nil || d.Spec.Template.Spec.Containers[0].Image != image {
		return false
	}
	want := *d.Spec.Replicas
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.Replicas == want && d.Status.AvailableReplicas == want
}

const (
	imageV0 = "hub.docker.com:xxxx/xxxxxx:v1.1.0"
	imageV1 = "hub.docker.com:xxxx/xxxxxx:v1.1.1"
)
