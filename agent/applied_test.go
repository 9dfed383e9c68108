package agent_test

import (
	"testing"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/state"
)

// TestRestartAfterResumeAllWritesNothing: `gitpace pause --all` then
// `gitpace resume --all` (apps/PAUSE committed, then removed) change no
// app's content. The running agent keeps each app's applied revision at
// the commit that made its content, and so does a restarted agent: its
// first pass (a full one) writes nothing, neither state nor objects.
func TestRestartAfterResumeAllWritesNothing(t *testing.T) {
	f := newFixture(t)
	c0 := f.repo.Commit("web and api 1.0.0", map[string]string{
		"apps/api/deploy.yaml": appDeployment("api", webImage("1.0.0"), "1s", false),
		"apps/web/deploy.yaml": appDeployment("web", webImage("1.0.0"), "1s", false),
	})
	a := f.build(nil)
	apps := []string{"api", "web"}
	for _, app := range apps {
		f.waitSynced(app, 1, "1.0.0")
	}
	f.repo.Commit("gitpace pause --all", map[string]string{"apps/PAUSE": "maintenance\n"})
	f.pass(a)
	for _, app := range apps {
		if st := f.appState(app); st.Phase != state.Paused {
			t.Fatalf("app %s under apps/PAUSE: %s", app, describe(st))
		}
	}
	f.repo.Commit("gitpace resume --all", map[string]string{"apps/PAUSE": gittest.Delete})
	requireApplied := func(step string) {
		t.Helper()
		for _, app := range apps {
			st := f.appState(app)
			if st.Phase != state.Synced || st.Applied == nil || st.Applied.Commit != c0 || len(st.History) != 1 {
				t.Fatalf("%s: app %s: %s; want Synced, applied %s (the commit of its content), one history entry", step, app, describe(st), c0[:7])
			}
		}
	}
	for _, app := range apps {
		f.waitSynced(app, 1, "resumed")
	}
	requireApplied("running agent, resumed")
	f.assertNoWrites(a)

	b := f.rebuild() // a restart: its first pass diffs every app, as a resync does
	f.assertNoWrites(b)
	requireApplied("restarted agent")
}

// TestHistoryNamesCommitThatChangedPausedApp: web paused by its PAUSE
// marker (P), its image changed under the PAUSE (C1), then the PAUSE
// removed (R): the rollout is recorded at C1, the commit that changed web,
// in its history, its applied revision and its Deployment's change-cause,
// as when no pause intervenes; for an agent that saw each commit, and for
// one started only once R was pushed.
func TestHistoryNamesCommitThatChangedPausedApp(t *testing.T) {
	for _, restarted := range []bool{false, true} {
		name := "running"
		if restarted {
			name = "restarted"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.repo.Commit("web 1.0.0", map[string]string{"apps/web/deploy.yaml": appDeployment("web", webImage("1.0.0"), "1s", false)})
			a := f.build(nil)
			f.waitSynced("web", 1, "1.0.0")
			commit := func(msg string, files map[string]string) string {
				c := f.repo.Commit(msg, files)
				if !restarted {
					f.pass(a)
				}
				return c
			}
			commit("pause web", map[string]string{"apps/web/PAUSE": "checking 1.0.0\n"})
			c1 := commit("web 1.0.1", map[string]string{"apps/web/deploy.yaml": appDeployment("web", webImage("1.0.1"), "1s", false)})
			if st := f.appState("web"); !restarted && st.Phase != state.Paused {
				t.Fatalf("web 1.0.1 under PAUSE: %s", describe(st))
			}
			if img := f.deployment("web").Spec.Template.Spec.Containers[0].Image; img != webImage("1.0.0") {
				t.Fatalf("image %s under PAUSE, want 1.0.0 kept", img)
			}
			r := f.repo.Commit("resume web", map[string]string{"apps/web/PAUSE": gittest.Delete})
			if restarted {
				f.rebuild()
			}
			st := f.waitSynced("web", 1, "resumed")
			if img := f.deployment("web").Spec.Template.Spec.Containers[0].Image; img != webImage("1.0.1") {
				t.Fatalf("image %s once resumed, want 1.0.1", img)
			}
			if n := len(st.History); n != 2 || st.History[1].Revision.Commit != c1 || st.Applied == nil || st.Applied.Commit != c1 {
				t.Fatalf("%s; want 2 history entries, the second and the applied revision at %s (web 1.0.1), not %s (resume web)", describe(st), c1[:7], r[:7])
			}
			want := "gitpace " + c1[:7] + ": web 1.0.1"
			if cause := f.deployment("web").Annotations[appliers.ChangeCause]; cause != want {
				t.Errorf("change-cause %q, want %q", cause, want)
			}
		})
	}
}
