package agent_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
	"github.com/gitpace/gitpace/status"
)

// TestTwoAgentsShareAnObjectNoLoop: two running agents (two repositories,
// two state namespaces) both declare ConfigMap shared, with other data.
// The second agent's start (a full diff) takes it over: one write. The
// first agent's watch sees it leave (its cache watches only its own
// label) and its drift pass leaves the object to the other agent, with a
// conflict in its status, instead of taking it back at once (which made
// the two write it in turn several times a second, for ever). A further
// drift pass of each agent (an own object deleted by hand, re-created)
// writes nothing to the shared object.
func TestTwoAgentsShareAnObjectNoLoop(t *testing.T) {
	ctx := context.Background()
	kube := testenv.Client(t)
	ns := testenv.Namespace(t)
	shared := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  k: " + v + "\n"
	}
	deployment := func(image string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shared-d\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: shared-d}\n" +
			"  template:\n    metadata:\n      labels: {app: shared-d}\n    spec:\n      containers:\n        - name: x\n          image: registry.example/" + image + "\n"
	}
	own := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  k: v\n"
	}
	type runner struct {
		agent   *agent.Agent
		stateNS string
		out     *syncBuffer
	}
	start := func(repo *gittest.Repo) runner {
		r := runner{stateNS: testenv.Namespace(t), out: &syncBuffer{}}
		src, err := sources.NewGitSource(sources.GitConfig{URL: repo.Dir, Branch: "main", Path: "apps", CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		r.agent, err = agent.New(agent.Config{Source: src, Rest: testenv.Config(t), StateNamespace: r.stateNS, DefaultNamespace: ns,
			Interval: time.Hour, Resync: time.Hour, Out: r.out, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = r.agent.Run(runCtx) }()
		t.Cleanup(func() {
			cancel()
			<-done
			if t.Failed() {
				t.Logf("agent %s output:\n%s\nlogs:\n%s", r.agent.Name(), r.out.String(), logs.String())
			}
		})
		return r
	}
	appState := func(r runner, app string) *state.App {
		st, err := state.NewStore(kube, r.stateNS).Get(ctx, r.agent.Name(), app)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	cm := func(name string) *corev1.ConfigMap {
		c, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	dep := func() *appsv1.Deployment {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, "shared-d", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond) // poll interval of the condition
		}
	}

	repoA, repoB := gittest.New(t), gittest.New(t)
	repoA.Commit("A", map[string]string{"apps/web/shared.yaml": shared("a"), "apps/web/deploy.yaml": deployment("a:1"), "apps/web/own.yaml": own("web-own")})
	repoB.Commit("B", map[string]string{"apps/hand/shared.yaml": shared("b"), "apps/hand/deploy.yaml": deployment("b:1"), "apps/hand/own.yaml": own("hand-own")})
	a := start(repoA)
	eventually("agent A applied ConfigMap shared and Deployment shared-d", func() bool {
		c, d := cm("shared"), dep()
		return c != nil && c.Labels[appliers.AgentLabel] == a.agent.Name() && d != nil && d.Labels[appliers.AgentLabel] == a.agent.Name()
	})
	first, firstD := cm("shared"), dep()

	// Every write to the shared ConfigMap from here on, as the watch
	// delivers them.
	w, err := kube.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=shared", ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	var versions []string
	go func() {
		for ev := range w.ResultChan() {
			if c, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Modified {
				mu.Lock()
				versions = append(versions, c.ResourceVersion)
				mu.Unlock()
			}
		}
	}()
	// The Deployment's spec changes (its status is the controller's).
	wd, err := kube.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=shared-d", ResourceVersion: firstD.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer wd.Stop()
	generations := map[int64]bool{}
	go func() {
		for ev := range wd.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Generation != firstD.Generation {
				mu.Lock()
				generations[d.Generation] = true
				mu.Unlock()
			}
		}
	}()
	writes := func() int {
		mu.Lock()
		defer mu.Unlock()
		return max(len(versions), len(generations))
	}

	b := start(repoB)
	wantConflict := "ConfigMap/" + ns + "/shared is also declared by agent " + b.agent.Name() + ", app hand, which applied it last"
	wantConflictD := "Deployment/" + ns + "/shared-d is also declared by agent " + b.agent.Name() + ", app hand, which applied it last"
	eventually("agent A's status saying that agent B declares ConfigMap shared and Deployment shared-d too", func() bool {
		if n := writes(); n > 2 {
			t.Fatalf("ConfigMap shared or Deployment shared-d written %d times since agent B started: the two agents fight over it", n)
		}
		st := appState(a, "web")
		return st != nil && strings.Contains(st.Conflict, wantConflict) && strings.Contains(st.Conflict, wantConflictD)
	})
	c := cm("shared")
	if c.Labels[appliers.AgentLabel] != b.agent.Name() || c.Data["k"] != "b" || c.UID != first.UID {
		t.Fatalf("ConfigMap shared: agent %q, data %v, uid %s; want agent B's (%s) data b, taken over in place (uid %s)",
			c.Labels[appliers.AgentLabel], c.Data, c.UID, b.agent.Name(), first.UID)
	}
	settled := c.ResourceVersion
	eventually("Deployment shared-d taken over by agent B", func() bool {
		d := dep()
		return d.Labels[appliers.AgentLabel] == b.agent.Name() && d.Spec.Template.Spec.Containers[0].Image == "registry.example/b:1"
	})
	settledGen := dep().Generation

	// Another drift pass of each agent: both re-create their own object,
	// and neither writes the shared one.
	for _, name := range []string{"web-own", "hand-own"} {
		if err := kube.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually("both agents' drift passes re-created their own ConfigMap", func() bool {
		return cm("web-own") != nil && cm("hand-own") != nil
	})
	if c := cm("shared"); c.ResourceVersion != settled {
		t.Errorf("ConfigMap shared written by a drift pass (resourceVersion %s, was %s; data %v, agent %q)",
			c.ResourceVersion, settled, c.Data, c.Labels[appliers.AgentLabel])
	}
	if d := dep(); d.Generation != settledGen {
		t.Errorf("Deployment shared-d written by a drift pass (generation %d, was %d; image %s)", d.Generation, settledGen, d.Spec.Template.Spec.Containers[0].Image)
	}
	mu.Lock()
	n, g := len(versions), len(generations)
	mu.Unlock()
	if n < 1 || n > 2 || g < 1 || g > 2 {
		t.Errorf("after agent B started, ConfigMap shared written %d times and Deployment shared-d's spec %d times; want 1 (B's takeover) or 2 each", n, g)
	}

	// Said once per change (once, or twice when A's watch saw the
	// ConfigMap change before the Deployment's), in agent A's output and
	// `gitpace status`.
	if n := strings.Count(a.out.String(), "app web: conflict: "); n < 1 || n > 2 {
		t.Errorf("agent A printed the conflict %d times, want once per object that changed hands at most:\n%s", n, a.out.String())
	}
	if !strings.Contains(b.out.String(), "app hand: took over 2 objects from agent "+a.agent.Name()+", app web") {
		t.Errorf("agent B did not say it took ConfigMap shared and Deployment shared-d over:\n%s", b.out.String())
	}
	apps, err := status.Collect(ctx, kube, a.stateNS, "web", "")
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	status.AppsTable(apps)(&table)
	if got := table.String(); !strings.Contains(got, "; conflict: ") || !strings.Contains(got, wantConflict) || !strings.Contains(got, wantConflictD) {
		t.Errorf("gitpace status of agent A does not show the conflict:\n%s", table.String())
	}
}
