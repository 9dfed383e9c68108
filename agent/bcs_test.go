package agent_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
	"github.com/gitpace/gitpace/state"
)

var constraint = regexp.MustCompile(`(?s)"constraint": \{.*?\n    \},\n`)

// bcsSeed returns a seed v4 JSON in the test's namespace with shorter
// cycles and the given fields replaced.
func bcsSeed(t *testing.T, name, ns string, repl ...string) string {
	t.Helper()
	s := strings.ReplaceAll(seed(t, name), `"namespace": "defaultGroup"`, `"namespace": "`+ns+`"`)
	s = strings.Replace(s, `"upgradeDuration": 60`, `"upgradeDuration": 1`, 1)
	return strings.NewReplacer(repl...).Replace(s)
}

// unconstrained drops the seed's UNIQUE InnerIP constraint: with 3 fake
// nodes it cannot place more than 3 pods of old and new applications
// together (BCS's "have not enough resources").
func unconstrained(s string) string { return constraint.ReplaceAllString(s, "") }

// rsRecorder follows the ReplicaSets of a BCS deployment and records each
// one's spec.replicas changes and the most ReplicaSets seen at once.
type rsRecorder struct {
	mu      sync.Mutex
	steps   map[string][]int32
	live    map[string]string // name: resourceVersion last seen
	maxLive int
}

func recordReplicaSets(t *testing.T, f *fixture, deployment string) *rsRecorder {
	t.Helper()
	r := &rsRecorder{steps: map[string][]int32{}, live: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := f.kube.AppsV1().ReplicaSets(f.ns).Watch(ctx, metav1.ListOptions{LabelSelector: vocab.LabelDeployment + "=" + deployment})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			rs, ok := ev.Object.(*appsv1.ReplicaSet)
			if !ok {
				continue
			}
			r.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(r.live, rs.Name)
			} else {
				r.live[rs.Name] = rs.ResourceVersion
				s := r.steps[rs.Name]
				if n := *rs.Spec.Replicas; len(s) == 0 || s[len(s)-1] != n {
					r.steps[rs.Name] = append(s, n)
				}
			}
			r.maxLive = max(r.maxLive, len(r.live))
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// get returns the replica steps by ReplicaSet and the most ReplicaSets
// seen at once, once the watch has caught up with the cluster: its view
// of deployment's ReplicaSets (each one's resourceVersion) is what a list
// returns. A read right after the API showed the rollout done may
// otherwise lack its last steps (the old application's 0 and delete).
func (r *rsRecorder) get(f *fixture, deployment string) (map[string][]int32, int) {
	f.t.Helper()
	f.eventually("the ReplicaSet watch to catch up", 30*time.Second, func() bool {
		l, err := f.kube.AppsV1().ReplicaSets(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: vocab.LabelDeployment + "=" + deployment})
		if err != nil {
			f.t.Fatal(err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return testenv.SameVersions(l.Items, r.live, func(rs *appsv1.ReplicaSet) string { return rs.Name })
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := map[string][]int32{}
	for k, v := range r.steps {
		cp[k] = append([]int32(nil), v...)
	}
	return cp, r.maxLive
}

var versioned = regexp.MustCompile(`^test-v[0-9]+$`)

// bcsDone: only the versioned application remains, at want ready pods of image.
func bcsDone(f *fixture, want int32, image string) bool {
	l, err := f.kube.AppsV1().ReplicaSets(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: vocab.LabelDeployment + "=test"})
	if err != nil || len(l.Items) != 1 {
		return false
	}
	rs := l.Items[0]
	return versioned.MatchString(rs.Name) && *rs.Spec.Replicas == want && rs.Status.ReadyReplicas == want &&
		rs.Spec.Template.Spec.Containers[0].Image == image
}

func bcsStatus(f *fixture) *paced.Status {
	st := f.appState("web")
	if st == nil || len(st.BCS) == 0 {
		return nil
	}
	return &st.BCS[0]
}

// TestBCSSeedThroughGit: the seed's test1-1-0.json creates application
// "test"; test1-1-1.json rolls it cycle by cycle (CreateFirst, surge 1,
// unavailable 1) into test-v<seconds>; never three applications; history
// records both revisions.
func TestBCSSeedThroughGit(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("bcs v1.1.0", map[string]string{"apps/web/test.json": bcsSeed(t, "test1-1-0.json", f.ns)})
	rec := recordReplicaSets(t, f, "test")
	f.run()
	f.eventually("application test at 2 ready", time.Minute, func() bool {
		rs, err := f.kube.AppsV1().ReplicaSets(f.ns).Get(context.Background(), "test", metav1.GetOptions{})
		return err == nil && rs.Status.ReadyReplicas == 2
	})
	f.eventually("app Synced", 30*time.Second, func() bool { st := f.appState("web"); return st != nil && st.Phase == state.Synced })

	pw := testenv.WatchPods(t, f.kube, f.ns, vocab.LabelDeployment+"=test")
	var mu sync.Mutex
	var shared []string // UNIQUE InnerIP violations: two pods on one node
	f.repo.Commit("bcs v1.1.1 on 8888", map[string]string{"apps/web/test.json": bcsSeed(t, "test1-1-1.json", f.ns)})
	sawRolling := false
	f.eventually("rolled into test-v<seconds>", 2*time.Minute, func() bool {
		if s := bcsStatus(f); s != nil && s.Status == paced.StatusRollingUpdate {
			sawRolling = true
		}
		nodes := map[string]string{}
		for _, p := range pw.Snapshot() {
			if n := p.Spec.NodeName; n != "" {
				if other, ok := nodes[n]; ok {
					mu.Lock()
					shared = append(shared, other+" and "+p.Name+" on "+n)
					mu.Unlock()
				}
				nodes[n] = p.Name
			}
		}
		return bcsDone(f, 2, "hub.docker.com:xxxx/xxxxxx:v1.1.1")
	})
	if len(shared) > 0 {
		t.Errorf("UNIQUE InnerIP broken: %v", shared)
	}
	if maxPods, _ := pw.Extremes(); maxPods != 3 {
		t.Errorf("at most %d pods at once; CreateFirst with surge 1 should reach 3", maxPods)
	}
	steps, maxLive := rec.get(f, "test")
	if maxLive > 2 {
		t.Errorf("%d applications at once, want at most 2", maxLive)
	}
	if got := steps["test"]; len(got) < 3 || got[len(got)-2] != 1 || got[len(got)-1] != 0 {
		t.Errorf("old application replica steps = %v, want ... 2 1 0", got)
	}
	for name, s := range steps {
		if versioned.MatchString(name) && (len(s) != 3 || s[0] != 0 || s[1] != 1 || s[2] != 2) {
			t.Errorf("new application %s replica steps = %v, want 0 1 2 (one per cycle)", name, s)
		}
	}
	if !sawRolling {
		t.Error("status never showed RollingUpdate during the update")
	}
	f.eventually("history settled", 30*time.Second, func() bool {
		st := f.appState("web")
		return len(st.History) == 2 && st.History[1].Outcome == state.RolledOut && st.Phase == state.Synced
	})
	if st := f.appState("web"); st.Health != health.Healthy {
		t.Errorf("health %s (%s), want Healthy", st.Health, st.HealthReason)
	}
	if strings.Contains(f.logs(), "reading the health") {
		t.Errorf("health of the BCS app could not be read:\n%s", f.logs())
	}
}

// TestBCSManualPromotes: rollingManually stops after each cycle; two
// PROMOTE commits release two cycles and no more.
func TestBCSManualPromotes(t *testing.T) {
	f := newFixture(t)
	manual := []string{`"rollingManually": false`, `"rollingManually": true`, `"instance": 2`, `"instance": 4`}
	f.repo.Commit("v1.1.0", map[string]string{"apps/web/test.json": unconstrained(bcsSeed(t, "test1-1-0.json", f.ns, manual...))})
	f.run()
	f.eventually("4 ready", time.Minute, func() bool {
		rs, err := f.kube.AppsV1().ReplicaSets(f.ns).Get(context.Background(), "test", metav1.GetOptions{})
		return err == nil && rs.Status.ReadyReplicas == 4
	})
	f.repo.Commit("v1.1.1", map[string]string{"apps/web/test.json": unconstrained(bcsSeed(t, "test1-1-1.json", f.ns, manual...))})
	pausedAfter := func(cycle int32) func() bool {
		return func() bool {
			s := bcsStatus(f)
			return s != nil && s.Status == paced.StatusUpdatePaused && s.Cycle == cycle && s.Rollout != ""
		}
	}
	newReplicas := func(name string) int32 {
		rs, err := f.kube.AppsV1().ReplicaSets(f.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return -1
		}
		return *rs.Spec.Replicas
	}
	f.eventually("paused after cycle 1", time.Minute, pausedAfter(1))
	rollout := bcsStatus(f).Rollout
	if n := newReplicas(rollout); n != 1 {
		t.Fatalf("after cycle 1 the new application has %d replicas, want 1", n)
	}
	for i, want := range []int32{2, 3} {
		if _, err := sources.Promote(f.repo.Dir, "apps", "web", rollout, i+1); err != nil {
			t.Fatal(err)
		}
		f.eventually("paused after the promoted cycle", time.Minute, pausedAfter(int32(i+2)))
		if n := newReplicas(rollout); n != want {
			t.Fatalf("after promote %d the new application has %d replicas, want %d", i+1, n, want)
		}
	}
	// No third promote: the rollout must hold past its upgradeDuration.
	hold := time.Now().Add(3 * time.Second)
	f.eventually("upgradeDuration passed", 10*time.Second, func() bool { return time.Now().After(hold) })
	if n := newReplicas(rollout); n != 3 || !pausedAfter(3)() {
		t.Fatalf("a cycle ran without a promote: new application at %d replicas", n)
	}
}

// TestBCSPauseThenRevertCancels: PAUSE after a cycle holds the next one;
// a revert while paused cancels the rollout: the new application is deleted
// and the old one restored to its full count at once.
func TestBCSPauseThenRevertCancels(t *testing.T) {
	f := newFixture(t)
	slow := []string{`"upgradeDuration": 1`, `"upgradeDuration": 3`, `"instance": 2`, `"instance": 3`}
	f.repo.Commit("v1.1.0", map[string]string{"apps/web/test.json": unconstrained(bcsSeed(t, "test1-1-0.json", f.ns, slow...))})
	f.run()
	f.eventually("3 ready", time.Minute, func() bool {
		rs, err := f.kube.AppsV1().ReplicaSets(f.ns).Get(context.Background(), "test", metav1.GetOptions{})
		return err == nil && rs.Status.ReadyReplicas == 3
	})
	update := f.repo.Commit("v1.1.1", map[string]string{"apps/web/test.json": unconstrained(bcsSeed(t, "test1-1-1.json", f.ns, slow...))})
	f.eventually("cycle 1 done", time.Minute, func() bool {
		s := bcsStatus(f)
		return s != nil && s.Cycle == 1 && s.Phase == paced.PhaseIdle
	})
	if _, err := sources.Pause(f.repo.Dir, "apps", "web", "check canary"); err != nil {
		t.Fatal(err)
	}
	f.eventually("UpdatePaused", 30*time.Second, func() bool {
		s := bcsStatus(f)
		return s != nil && s.Status == paced.StatusUpdatePaused
	})
	s := bcsStatus(f)
	rollout, cycle := s.Rollout, s.Cycle
	hold := time.Now().Add(4 * time.Second) // past upgradeDuration
	f.eventually("upgradeDuration passed", 10*time.Second, func() bool { return time.Now().After(hold) })
	if s := bcsStatus(f); s.Cycle != cycle || s.Status != paced.StatusUpdatePaused {
		t.Fatalf("a cycle started while paused: %+v", s)
	}
	if _, err := sources.Revert(f.repo.Dir, []string{update}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("cancelled: old application back at 3, new gone", 30*time.Second, func() bool {
		l, err := f.kube.AppsV1().ReplicaSets(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: vocab.LabelDeployment + "=test"})
		if err != nil || len(l.Items) != 1 {
			return false
		}
		return l.Items[0].Name == "test" && *l.Items[0].Spec.Replicas == 3
	})
	if _, err := f.kube.AppsV1().ReplicaSets(f.ns).Get(context.Background(), rollout, metav1.GetOptions{}); err == nil {
		t.Errorf("new application %s still exists after the revert", rollout)
	}
}

// TestBCSInvalidManifests: invalid v4 files are rejected with the JSON path
// at fault and nothing is applied.
func TestBCSInvalidManifests(t *testing.T) {
	f := newFixture(t)
	f.build(nil)
	for name, c := range map[string]struct {
		repl []string
		path string
	}{
		"bad rollingOrder": {[]string{`"rollingOrder": "CreateFirst"`, `"rollingOrder": "Sideways"`}, "spec.strategy.rollingupdate.rollingOrder"},
		"bad cpu":          {[]string{`"cpu": "0.5"`, `"cpu": "half"`}, "resources.limits.cpu"},
		"bad operator":     {[]string{`"operate": "UNIQUE"`, `"operate": "SOMETIMES"`}, "constraint.IntersectionItem[0].unionData[0].operate"},
		"syntax error":     {[]string{`"instance": 2,`, `"instance": 2,,`}, "test.json:"},
	} {
		c := c
		t.Run(name, func(t *testing.T) {
			commit := f.repo.Commit(name, map[string]string{"apps/web/test.json": bcsSeed(t, "test1-1-0.json", f.ns, c.repl...)})
			if err := f.agent.ReconcileOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			st := f.appState("web")
			if st.Rejected == nil || st.Rejected.Revision.Commit != commit || !strings.Contains(st.Rejected.Error, c.path) {
				t.Fatalf("rejection = %+v, want one naming %s", st.Rejected, c.path)
			}
			l, err := f.kube.AppsV1().ReplicaSets(f.ns).List(context.Background(), metav1.ListOptions{})
			if err != nil || len(l.Items) != 0 {
				t.Fatalf("ReplicaSets after an invalid revision: %d (%v)", len(l.Items), err)
			}
		})
	}
}
