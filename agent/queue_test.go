package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

// namedCM is a ConfigMap named name.
func namedCM(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  v: %q\n", name, value)
}

// objectOf names the ConfigMap a request is about ("" for others).
func objectOf(r *http.Request, names ...string) string {
	for _, n := range names {
		if strings.HasSuffix(r.URL.Path, "/configmaps/"+n) {
			return n
		}
	}
	return ""
}

// TestAppsReconcileConcurrently: the first request of either of two apps
// is held until a request of the other one arrives. Reconciling one app
// after the other, the held request would wait for a request that never
// comes; with a worker per app both are in flight at once.
func TestAppsReconcileConcurrently(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("two apps", map[string]string{
		"apps/alpha/cm.yaml": namedCM("alpha-config", "1"),
		"apps/bravo/cm.yaml": namedCM("bravo-config", "1"),
	})
	rc := testenv.Config(t)
	var (
		mu      sync.Mutex
		seen    = map[string]bool{}
		arrived = map[string]chan struct{}{"alpha-config": make(chan struct{}), "bravo-config": make(chan struct{})}
		overlap atomic.Bool
	)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			name := objectOf(r, "alpha-config", "bravo-config")
			if name == "" {
				return rt.RoundTrip(r)
			}
			other := "bravo-config"
			if name == other {
				other = "alpha-config"
			}
			mu.Lock()
			first := !seen[name]
			seen[name] = true
			mu.Unlock()
			if first {
				close(arrived[name])
				select {
				case <-arrived[other]:
					overlap.Store(true)
				case <-time.After(20 * time.Second):
					// the other app never came while this one waited
				}
			}
			return rt.RoundTrip(r)
		})
	})
	a := f.build(rc)
	if err := a.ReconcileOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !overlap.Load() {
		t.Fatal("the two apps' requests never were in flight at once: apps are reconciled one after the other")
	}
	for _, app := range []string{"alpha", "bravo"} {
		if st := f.appState(app); st == nil || st.Phase != state.Synced {
			t.Errorf("app %s: %v, want Synced", app, st)
		}
	}
}

// TestTransientErrorRetriesOnlyThatApp runs the agent on a file:// remote,
// as users do. Every request about app alpha's ConfigMap fails (the API
// server unreachable for it): alpha is retried, with backoff, and its
// object arrives once the outage ends; app bravo, reconciled once, is not
// run again by alpha's retries.
func TestTransientErrorRetriesOnlyThatApp(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("two apps", map[string]string{
		"apps/alpha/cm.yaml": namedCM("alpha-config", "1"),
		"apps/bravo/cm.yaml": namedCM("bravo-config", "1"),
	})
	src, err := sources.NewGitSource(sources.GitConfig{URL: "file://" + f.repo.Dir, Branch: "main", Path: "apps", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rc := testenv.Config(t)
	var outage atomic.Bool
	outage.Store(true)
	var alphaTries, bravoRequests atomic.Int64
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch objectOf(r, "alpha-config", "bravo-config") {
			case "alpha-config":
				if outage.Load() {
					alphaTries.Add(1)
					return nil, errors.New("injected outage: connection refused")
				}
			case "bravo-config":
				bravoRequests.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	f.cfg = agent.Config{Source: src, Rest: rc, StateNamespace: f.stateNS, DefaultNamespace: f.ns,
		Interval: time.Second, Resync: time.Hour, Out: f.out, Log: f.logger()}
	f.rebuild()
	f.run()
	f.eventually("app bravo Synced while alpha fails", 30*time.Second, func() bool {
		st := f.appState("bravo")
		return st != nil && st.Phase == state.Synced
	})
	f.eventually("alpha retried", 30*time.Second, func() bool { return alphaTries.Load() >= 2 })
	bravoBefore, triesBefore := bravoRequests.Load(), alphaTries.Load()
	f.eventually("alpha retried twice more", 30*time.Second, func() bool { return alphaTries.Load() >= triesBefore+2 })
	if got := bravoRequests.Load(); got != bravoBefore {
		t.Fatalf("app bravo made %d requests while only alpha was retried; want none", got-bravoBefore)
	}
	outage.Store(false)
	f.eventually("alpha's ConfigMap applied once the outage ended", 30*time.Second, func() bool {
		_, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "alpha-config", metav1.GetOptions{})
		return err == nil
	})
	if !strings.Contains(f.logs(), "app reconcile failed; retrying with backoff") || !strings.Contains(f.logs(), "app=alpha") {
		t.Errorf("alpha's retries are not logged as per-app retries:\n%s", f.logs())
	}
}

// TestTimersFireWithRemoteRepository runs the agent on a file:// remote
// with a clock seconds before a deny window opens (the clock moves with
// real time). A rollout in flight is frozen at the window's edge by the
// edge's own timer, and commits keep arriving by the poll meanwhile: no
// timer cancels another. (TestRemotePollAfterBCSRollout has the BCS
// engine's timers and the poll together.)
func TestTimersFireWithRemoteRepository(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("slow rollout before the window", map[string]string{
		"apps/gitpace.yaml":        denyNights,
		"apps/web/deployment.yaml": withReadyDelay(seed(t, "test1-1-0.yaml"), "120s"),
		"apps/other/cm.yaml":       namedCM("other-config", "0"),
	})
	src, err := sources.NewGitSource(sources.GitConfig{URL: "file://" + f.repo.Dir, Branch: "main", Path: "apps", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	edge := time.Date(2026, 11, 27, 22, 0, 0, 0, time.UTC)
	// 15s before the edge: the first apply and the three polled commits
	// below must come before it, also on a loaded machine.
	offset := edge.Add(-15 * time.Second).Sub(time.Now())
	f.cfg = agent.Config{Source: src, Rest: testenv.Config(t), StateNamespace: f.stateNS, DefaultNamespace: f.ns,
		Interval: time.Second, Resync: time.Hour, Out: f.out, Log: f.logger(),
		Now: func() time.Time { return time.Now().Add(offset) }}
	f.rebuild()
	f.run()
	f.eventually("web applied before the window", 20*time.Second, func() bool { return f.deployment("test") != nil })
	if time.Now().Add(offset).After(edge) {
		t.Fatal("the rollout was applied after the window opened; the machine is too slow for this test's clock")
	}
	for i := 1; i <= 3; i++ {
		want := fmt.Sprint(i)
		f.repo.Commit("other "+want, map[string]string{"apps/other/cm.yaml": namedCM("other-config", want)})
		f.eventually("commit "+want+" applied by the poll", 15*time.Second, func() bool {
			c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "other-config", metav1.GetOptions{})
			return err == nil && c.Data["v"] == want
		})
	}
	f.eventually("the rollout frozen at the window's edge", 20*time.Second, func() bool {
		d := f.deployment("test")
		return d != nil && d.Spec.Paused
	})
	if now := time.Now().Add(offset); now.Before(edge) {
		t.Fatalf("frozen at %s, before the window opened at %s", now.Format(time.TimeOnly), edge.Format(time.TimeOnly))
	}
	// The state is saved right after the freeze's writes.
	f.eventually("web Held by the window", 10*time.Second, func() bool {
		st := f.appState("web")
		return st != nil && st.Phase == state.Held && strings.Contains(st.Reason, "window")
	})
}

// TestDeletedByHandComesBack runs the agent (--resync an hour) and deletes,
// behind git's back, a ConfigMap it manages, then the Namespace another
// app of the revision brings, with a ConfigMap of a third app in it. Each
// deletion queues the app that declares the object: the ConfigMap comes
// back at once, the Namespace once it is gone, and the app living in it
// waits for it meanwhile instead of being rejected.
func TestDeletedByHandComesBack(t *testing.T) {
	f := newFixture(t)
	shared := f.ns + "-s"
	t.Cleanup(func() { _ = f.kube.CoreV1().Namespaces().Delete(context.Background(), shared, metav1.DeleteOptions{}) })
	f.repo.Commit("three apps", map[string]string{
		"apps/alpha/cm.yaml":           namedCM("alpha-config", "1"),
		"apps/zz-owner/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + shared + "\n",
		"apps/consumer/cm.yaml":        strings.Replace(namedCM("consumer-config", "1"), "metadata:\n", "metadata:\n  namespace: "+shared+"\n", 1),
	})
	f.build(nil)
	f.run()
	ctx := context.Background()
	get := func(ns, name string) (string, bool) {
		c, err := f.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", false
		}
		return string(c.UID), true
	}
	f.eventually("all three apps Synced", time.Minute, func() bool {
		for _, app := range []string{"alpha", "zz-owner", "consumer"} {
			if st := f.appState(app); st == nil || st.Phase != state.Synced {
				return false
			}
		}
		return true
	})
	before, _ := get(f.ns, "alpha-config")
	if err := f.kube.CoreV1().ConfigMaps(f.ns).Delete(ctx, "alpha-config", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.eventually("alpha-config re-created without waiting for --resync", 20*time.Second, func() bool {
		uid, ok := get(f.ns, "alpha-config")
		return ok && uid != before
	})

	if err := f.kube.CoreV1().Namespaces().Delete(ctx, shared, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.eventually("the Namespace and consumer-config back after the namespace was deleted", 90*time.Second, func() bool {
		n, err := f.kube.CoreV1().Namespaces().Get(ctx, shared, metav1.GetOptions{})
		if err != nil || n.DeletionTimestamp != nil {
			return false
		}
		_, ok := get(shared, "consumer-config")
		return ok
	})
	f.eventually("consumer Synced again", 30*time.Second, func() bool {
		st := f.appState("consumer")
		return st != nil && st.Phase == state.Synced && st.Rejected == nil
	})
	if st := f.appState("consumer"); st.Rejected != nil {
		t.Errorf("consumer was rejected while its namespace was away: %+v", st.Rejected)
	}
}
