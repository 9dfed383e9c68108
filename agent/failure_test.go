package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
	"github.com/gitpace/gitpace/state"
)

const neverReadyLabel = "gitpace.dev/never-ready"

// neverReady makes a seed Deployment's new pods never Ready (the harness's
// never-Ready label on the pod template) and gives it a 5 s progress deadline.
func neverReady(manifest string) string {
	s := strings.Replace(manifest, "    metadata:\n      labels:\n        app: test\n",
		"    metadata:\n      labels:\n        app: test\n        "+neverReadyLabel+": \"true\"\n", 1)
	return strings.Replace(s, "spec:\n  replicas: 3\n", "spec:\n  progressDeadlineSeconds: 5\n  replicas: 3\n", 1)
}

// notReadyPods lists the never-Ready pods in the test's namespace by name.
func (f *fixture) notReadyPods(selector string) map[string]bool {
	f.t.Helper()
	l, err := f.kube.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range l.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if !ready {
			out[p.Name] = true
		}
	}
	return out
}

// namesFailingPods checks that the reason names at least one of the pods on
// one line, and that every recorded failing pod is one of them.
func namesFailingPods(t *testing.T, st *state.App, pods map[string]bool) {
	t.Helper()
	named := false
	for p := range pods {
		named = named || strings.Contains(st.Reason, p)
	}
	if !named {
		t.Errorf("reason %q names none of the not-Ready pods %v", st.Reason, pods)
	}
	if len(st.FailingPods) == 0 {
		t.Errorf("no failing pods recorded in the state")
	}
	for _, p := range st.FailingPods {
		if !pods[p.Name] || p.Reason == "" {
			t.Errorf("failing pod %+v: not one of the never-Ready pods %v, or no reason", p, pods)
		}
	}
	if strings.Contains(st.Reason, "\n") {
		t.Errorf("reason spans lines: %q", st.Reason)
	}
}

// runStoppable runs f.agent until the returned stop is called (or the test ends).
func (f *fixture) runStoppable() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a := f.agent
	go func() { defer close(done); _ = a.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	f.t.Cleanup(stop)
	return stop
}

// TestFailedRolloutHolds: a Deployment whose new pods never become Ready
// passes its 5 s progress deadline: the app is Failed with a reason naming
// the deadline and the not-Ready pods of the newest ReplicaSet, the history
// entry is failed with the same message; under the default onFailure: hold
// the agent commits nothing and leaves the Deployment as it is.
func TestFailedRolloutHolds(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("v1.1.0", map[string]string{"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml")})
	f.build(nil)
	stop := f.runStoppable()
	f.eventually("v1.1.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })

	c2 := f.repo.Commit("v1.1.1, never Ready", map[string]string{"apps/web/deployment.yaml": neverReady(seed(t, "test1-1-1.yaml"))})
	f.eventually("app Failed", time.Minute, func() bool { st := f.appState("web"); return st != nil && st.Phase == state.Failed })
	st := f.appState("web")
	if !strings.HasPrefix(st.Reason, `deployment "test" exceeded its progress deadline; not Ready: `) ||
		!strings.Contains(st.Reason, "readiness probe failed") || strings.Contains(st.Reason, "onFailure") {
		t.Errorf("reason = %q", st.Reason)
	}
	namesFailingPods(t, st, f.notReadyPods(neverReadyLabel))
	if len(st.History) != 2 || st.History[1].Revision.Commit != c2 || st.History[1].Outcome != state.FailedOut ||
		!strings.Contains(st.History[1].Message, "not Ready: ") {
		t.Errorf("history = %+v, want revision 2 (%s) failed with the pods", st.History, c2[:7])
	}

	// Hold: more reconciles change nothing. They are made here rather than
	// waited for (a pause of the running agent proves none happened): it
	// stops, its work in flight done, and a restarted one makes a full
	// pass and an idle one.
	d := f.deployment("test")
	stop()
	f.rebuild()
	f.pass(f.agent)
	f.pass(f.agent)
	if head := f.repo.Head(); head != c2 {
		t.Errorf("branch head moved to %s under onFailure: hold", head[:7])
	}
	after := f.deployment("test")
	if after.Generation != d.Generation || after.Spec.Paused || after.Spec.Template.Spec.Containers[0].Image != imageV1 {
		t.Errorf("Deployment changed while held: generation %d -> %d, paused %v, image %s",
			d.Generation, after.Generation, after.Spec.Paused, after.Spec.Template.Spec.Containers[0].Image)
	}
	if st := f.appState("web"); st.Phase != state.Failed || len(st.Reverts) != 0 {
		t.Errorf("state after holding: %s, reverts %+v", st.Phase, st.Reverts)
	}
	if n := strings.Count(f.out.String(), "failed: deployment \"test\" exceeded its progress deadline"); n != 1 {
		t.Errorf("failure printed %d times, want once:\n%s", n, f.out.String())
	}
}

// revertsOf returns the commits on the bare repository's main branch that
// say they revert commit, and the branch head.
func revertsOf(t *testing.T, bare, commit string) ([]*object.Commit, string) {
	t.Helper()
	out, head, err := readReverts(bare, commit)
	if err != nil {
		t.Fatal(err)
	}
	return out, head
}

// readReverts is revertsOf's read; its error is for polls to retry: while
// the agent pushes, go-git's file:// server may be rewriting the ref.
func readReverts(bare, commit string) ([]*object.Commit, string, error) {
	repo, err := git.PlainOpen(bare)
	if err != nil {
		return nil, "", err
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil {
		return nil, "", err
	}
	iter, err := repo.Log(&git.LogOptions{From: ref.Hash()})
	if err != nil {
		return nil, "", err
	}
	var out []*object.Commit
	_ = iter.ForEach(func(c *object.Commit) error {
		for _, h := range sources.ParseReverts(c.Message) {
			if h == commit {
				out = append(out, c)
			}
		}
		return nil
	})
	return out, ref.Hash().String(), nil
}

// TestFailedRolloutRevertedThroughGit: with onFailure: revert, the agent
// (following a file:// remote) commits one revert of the failed revision to
// the remote branch, its message naming the failure; the revert then arrives
// like any commit and rolls the Deployment back to v1.1.0, recorded as a
// rollback. Further reconciles commit nothing more, and a restarted agent
// that finds the failed revision in force again (here: reading the working
// clone, which never fetched the revert) holds instead of reverting twice.
func TestFailedRolloutRevertedThroughGit(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("v1.1.0", map[string]string{
		"apps/gitpace.yaml":        "onFailure: revert\n",
		"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml"),
	})
	remote := t.TempDir() + "/remote.git"
	if err := cloneBare(f.repo.Dir, remote); err != nil {
		t.Fatal(err)
	}
	src, err := sources.NewGitSource(sources.GitConfig{URL: "file://" + remote, Branch: "main", Path: "apps", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f.build(nil)
	localSrc := f.cfg.Source
	f.cfg.Source, f.cfg.Interval = src, 200*time.Millisecond
	f.rebuild()
	stop := f.runStoppable()
	f.eventually("v1.1.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })

	// Two commits arrive at once: the head, docs, leaves the app as c2 made
	// it, so the revision is recorded at c2, which is what gets reverted.
	c2 := f.repo.Commit("v1.1.1, never Ready", map[string]string{"apps/web/deployment.yaml": neverReady(seed(t, "test1-1-1.yaml"))})
	docs := f.repo.Commit("docs", map[string]string{"README.md": "web runs v1.1.1\n"})
	if err := pushBare(f.repo.Dir, remote); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f.eventually("a revert commit on the remote", time.Minute, func() bool { r, _, err := readReverts(remote, c2); return err == nil && len(r) > 0 })
	t.Logf("revert committed %s after the push", time.Since(start).Round(100*time.Millisecond))
	reverts, head := revertsOf(t, remote, c2)
	rc := reverts[0]
	if len(reverts) != 1 || head != rc.Hash.String() || rc.NumParents() != 1 || rc.ParentHashes[0].String() != docs ||
		len(sources.ParseReverts(rc.Message)) != 1 {
		t.Fatalf("remote: %d reverts of %s, head %s; want one revert of it alone on top of %s", len(reverts), c2[:7], head[:7], docs[:7])
	}
	if !strings.HasPrefix(rc.Message, "Revert \"v1.1.1, never Ready\"\n") ||
		!strings.Contains(rc.Message, `deployment "test" exceeded its progress deadline`) || !strings.Contains(rc.Message, "not Ready: ") {
		t.Errorf("revert message does not name the failure:\n%s", rc.Message)
	}
	revert := rc.Hash.String()
	// The line is printed once the push returned, which is after the
	// remote has the commit.
	f.eventually("a line naming the revert commit", 10*time.Second, func() bool {
		return strings.Contains(f.out.String(), "onFailure revert: committed "+revert[:7])
	})

	f.eventually("rolled back to v1.1.0", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })
	t.Logf("rolled back %s after the push", time.Since(start).Round(100*time.Millisecond))
	f.eventually("history shows the rollback", time.Minute, func() bool {
		st := f.appState("web")
		return st.Phase == state.Synced && len(st.History) == 3 && st.History[2].Outcome == state.RolledBack
	})
	st := f.appState("web")
	if e := st.History[1]; e.Revision.Commit != c2 || e.Outcome != state.FailedOut || !strings.Contains(e.Message, "progress deadline") {
		t.Errorf("revision 2 = %+v, want %s failed", e, c2[:7])
	}
	if e := st.History[2]; e.Revision.Commit != revert || e.RollbackTo != 1 {
		t.Errorf("revision 3 = %+v, want the revert %s rolling back to revision 1", e, revert[:7])
	}
	if len(st.Reverts) != 1 || st.Reverts[0].Failed != c2 || st.Reverts[0].Commit != revert {
		t.Errorf("state reverts = %+v", st.Reverts)
	}

	// Further reconciles commit nothing. They are made here rather than
	// waited for (a pause of the polling agent proves none happened): it
	// stops, its work in flight done, and a restarted one on the remote
	// makes a full pass and another.
	stop()
	f.rebuild()
	f.pass(f.agent)
	f.pass(f.agent)
	if r, h := revertsOf(t, remote, c2); len(r) != 1 || h != revert {
		t.Fatalf("after further reconciles: %d reverts, head %s", len(r), h[:7])
	}

	// Restart on the working clone (head: the failed revision; it never
	// fetched the revert): the agent applies it again, it fails again, and
	// the state says it was reverted once: hold, no second commit.
	// Another --repo is another agent identity by default; --name keeps
	// the identity, and with it the app's state.
	f.cfg.Source, f.cfg.Interval, f.cfg.Name = localSrc, time.Hour, f.agent.Name()
	f.rebuild()
	f.runStoppable()
	f.eventually("failed again, held", time.Minute, func() bool {
		st := f.appState("web")
		return st.Phase == state.Failed && st.Applied.Commit == c2 && strings.Contains(st.Reason, "reverted by "+revert[:7])
	})
	if hl := f.repo.Head(); hl != docs {
		t.Errorf("the restarted agent committed %s in the working clone", hl[:7])
	}
	if r, h := revertsOf(t, remote, c2); len(r) != 1 || h != revert {
		t.Errorf("after the restart: %d reverts on the remote, head %s", len(r), h[:7])
	}
	if st := f.appState("web"); len(st.Reverts) != 1 {
		t.Errorf("state reverts after the restart = %+v", st.Reverts)
	}
}

// TestBCSStartTimeoutFails: a BCS rollout whose new pods never become Ready
// outlives a 3 s start timeout (agent.Config.BCSStartTimeout): UpdateSuspend
// makes the app Failed, the reason names the new application's not-Ready
// pods, history says failed, and onFailure: hold commits nothing.
func TestBCSStartTimeoutFails(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("bcs v1.1.0", map[string]string{"apps/web/test.json": bcsSeed(t, "test1-1-0.json", f.ns)})
	f.build(nil)
	f.cfg.BCSStartTimeout = 3 * time.Second
	f.rebuild()
	f.run()
	f.eventually("application test at 2 ready", time.Minute, func() bool {
		rs, err := f.kube.AppsV1().ReplicaSets(f.ns).Get(context.Background(), "test", metav1.GetOptions{})
		return err == nil && rs.Status.ReadyReplicas == 2
	})
	f.eventually("app Synced", 30*time.Second, func() bool { st := f.appState("web"); return st != nil && st.Phase == state.Synced })

	// The label goes into the template's metadata.labels (pod labels).
	broken := bcsSeed(t, "test1-1-1.json", f.ns)
	i := strings.LastIndex(broken, `"appname": "test"`)
	broken = broken[:i] + `"appname": "test", "` + neverReadyLabel + `": "true"` + broken[i+len(`"appname": "test"`):]
	c2 := f.repo.Commit("bcs v1.1.1, never Ready", map[string]string{"apps/web/test.json": broken})
	start := time.Now()
	f.eventually("app Failed", time.Minute, func() bool { st := f.appState("web"); return st.Phase == state.Failed })
	t.Logf("Failed %s after the commit", time.Since(start).Round(100*time.Millisecond))
	st := f.appState("web")
	s := bcsStatus(f)
	if s == nil || s.Status != paced.StatusUpdateSuspend || s.Rollout == "" {
		t.Fatalf("BCS status = %+v, want UpdateSuspend", s)
	}
	if !strings.Contains(st.Reason, "suspended") || !strings.Contains(st.Reason, "start phase") ||
		!strings.Contains(st.Reason, "not Ready: "+s.Rollout+"-") {
		t.Errorf("reason = %q", st.Reason)
	}
	namesFailingPods(t, st, f.notReadyPods(vocab.LabelApplication+"="+s.Rollout))
	if e := st.Last(); e == nil || e.Revision.Commit != c2 || e.Outcome != state.FailedOut || !strings.Contains(e.Message, "not Ready: ") {
		t.Errorf("history = %+v, want revision %s failed", st.History, c2[:7])
	}
	if head := f.repo.Head(); head != c2 {
		t.Errorf("branch head moved to %s under onFailure: hold", head[:7])
	}
}

// TestFailedRolloutRevertRefused: with onFailure: revert on a local
// repository (reverted in place, nothing to push), a revert that cannot be
// made (the file has local changes) is reported in the reason and the app
// holds, Failed; a restarted agent tries once more, commits the revert in
// the repository and rolls back.
func TestFailedRolloutRevertRefused(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("v1.1.0", map[string]string{
		"apps/gitpace.yaml":        "onFailure: revert\n",
		"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml"),
	})
	f.build(nil)
	stop := f.runStoppable()
	f.eventually("v1.1.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })

	broken := neverReady(seed(t, "test1-1-1.yaml"))
	c2 := f.repo.Commit("v1.1.1, never Ready", map[string]string{"apps/web/deployment.yaml": broken})
	file := filepath.Join(f.repo.Dir, "apps", "web", "deployment.yaml")
	if err := os.WriteFile(file, []byte(broken+"# local edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.eventually("Failed, revert refused", time.Minute, func() bool {
		st := f.appState("web")
		return st.Phase == state.Failed && strings.Contains(st.Reason, "onFailure revert: reverting "+c2[:7]+" failed: ")
	})
	if st := f.appState("web"); !strings.Contains(st.Reason, "local changes") || !strings.HasSuffix(st.Reason, "; holding") || len(st.Reverts) != 0 {
		t.Errorf("reason = %q, reverts %+v", st.Reason, st.Reverts)
	}
	if head := f.repo.Head(); head != c2 {
		t.Errorf("head moved to %s though the revert failed", head[:7])
	}

	stop()
	if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	f.rebuild()
	f.runStoppable()
	f.eventually("rolled back to v1.1.0", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })
	f.eventually("history shows the rollback", 30*time.Second, func() bool {
		st := f.appState("web")
		return st.Phase == state.Synced && len(st.History) == 3 && st.History[2].Outcome == state.RolledBack
	})
	st := f.appState("web")
	head := f.repo.Head()
	if len(st.Reverts) != 1 || st.Reverts[0].Failed != c2 || st.Reverts[0].Commit != head || st.History[2].Revision.Commit != head {
		t.Errorf("reverts %+v, history %+v; want the revert %s committed in the repository", st.Reverts, st.History, head[:7])
	}
}
