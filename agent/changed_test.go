package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/state"
)

// sourcePass runs a's source pass and returns the apps it queued; step
// names the commit in failures.
func (f *fixture) sourcePass(a *agent.Agent, step string) []string {
	f.t.Helper()
	apps, err := a.SourcePass(context.Background())
	if err != nil {
		f.t.Fatalf("%s: source pass: %v", step, err)
	}
	return apps
}

// runApps reconciles apps and fails the test on error.
func (f *fixture) runApps(a *agent.Agent, apps []string, step string) {
	f.t.Helper()
	if err := a.RunApps(context.Background(), apps); err != nil {
		f.t.Fatalf("%s: %v\noutput:\n%s", step, err, f.out.String())
	}
}

// configMapValue is data.v of ConfigMap name in f.ns ("" if absent).
func (f *fixture) configMapValue(name string) string {
	cm, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return cm.Data["v"]
}

// TestNewHeadQueuesChangedApps: of three apps, a commit that changes one
// queues that one alone, and it is applied; a PAUSE marker in the
// directory above all of them (their ancestor) queues and pauses every
// app, and its removal resumes every app; an app removed from git is
// queued (and pruned) alone; a change of gitpace.yaml queues every app.
func TestNewHeadQueuesChangedApps(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("three apps", map[string]string{
		"apps/alpha/cm.yaml":   namedCM("alpha-config", "1"),
		"apps/bravo/cm.yaml":   namedCM("bravo-config", "1"),
		"apps/charlie/cm.yaml": namedCM("charlie-config", "1"),
	})
	a := f.build(nil)
	all := []string{"alpha", "bravo", "charlie"}
	if got := f.sourcePass(a, "first pass"); !slices.Equal(got, all) {
		t.Fatalf("first pass of the process queued %v, want every app %v", got, all)
	}
	f.runApps(a, all, "first pass")

	f.repo.Commit("change bravo", map[string]string{"apps/bravo/cm.yaml": namedCM("bravo-config", "2")})
	if got := f.sourcePass(a, "bravo changed"); !slices.Equal(got, []string{"bravo"}) {
		t.Fatalf("a commit changing app bravo queued %v, want [bravo]", got)
	}
	f.runApps(a, []string{"bravo"}, "bravo changed")
	if v := f.configMapValue("bravo-config"); v != "2" {
		t.Fatalf("bravo-config v = %q after its change, want 2", v)
	}

	f.repo.Commit("pause all", map[string]string{"apps/PAUSE": "incident 42\n"})
	if got := f.sourcePass(a, "PAUSE above every app"); !slices.Equal(got, all) {
		t.Fatalf("a PAUSE marker above every app queued %v, want %v", got, all)
	}
	f.runApps(a, all, "PAUSE above every app")
	for _, app := range all {
		if st := f.appState(app); st.Phase != state.Paused {
			t.Errorf("app %s: %s %q under apps/PAUSE, want Paused", app, st.Phase, st.Reason)
		}
	}
	f.repo.Commit("resume", map[string]string{"apps/PAUSE": gittest.Delete})
	if got := f.sourcePass(a, "PAUSE removed"); !slices.Equal(got, all) {
		t.Fatalf("removing apps/PAUSE queued %v, want %v", got, all)
	}
	f.runApps(a, all, "PAUSE removed")
	for _, app := range all {
		if st := f.appState(app); st.Phase != state.Synced {
			t.Errorf("app %s: %s %q once apps/PAUSE is gone, want Synced", app, st.Phase, st.Reason)
		}
	}

	f.repo.Commit("remove charlie", map[string]string{"apps/charlie/cm.yaml": gittest.Delete})
	if got := f.sourcePass(a, "charlie removed"); !slices.Equal(got, []string{"charlie"}) {
		t.Fatalf("removing app charlie queued %v, want [charlie]", got)
	}
	f.runApps(a, []string{"charlie"}, "charlie removed")
	if v := f.configMapValue("charlie-config"); v != "" {
		t.Errorf("charlie-config still there after app charlie left git")
	}

	f.repo.Commit("policy file", map[string]string{"apps/gitpace.yaml": "onFailure: hold\n"})
	if got := f.sourcePass(a, "gitpace.yaml"); !slices.Equal(got, []string{"alpha", "bravo"}) {
		t.Fatalf("a change of gitpace.yaml queued %v, want every app [alpha bravo]", got)
	}
}

// TestUnsignedHeadHoldsEveryApp: with a key ring, a new head that changes
// one app of two still queues both, since the signature gate checks the
// head commit that every app's revision moves to: an unsigned head holds
// both apps, and nothing of it is applied.
func TestUnsignedHeadHoldsEveryApp(t *testing.T) {
	f := newFixture(t)
	trusted, err := openpgp.NewEntity("Release Bot", "", "release@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := trusted.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	keyFile := filepath.Join(t.TempDir(), "trusted.asc")
	if err := os.WriteFile(keyFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	kr, err := policies.LoadKeyRing(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signed := f.repo.CommitSigned("signed", map[string]string{
		"apps/alpha/cm.yaml": namedCM("alpha-config", "1"),
		"apps/bravo/cm.yaml": namedCM("bravo-config", "1"),
	}, trusted)
	f.build(nil)
	f.cfg.KeyRing = kr
	a := f.rebuild()
	both := []string{"alpha", "bravo"}
	f.runApps(a, f.sourcePass(a, "signed"), "signed")

	unsigned := f.repo.Commit("unsigned change of alpha", map[string]string{"apps/alpha/cm.yaml": namedCM("alpha-config", "evil")})
	got := f.sourcePass(a, "unsigned")
	if !slices.Equal(got, both) {
		t.Fatalf("an unsigned head changing app alpha queued %v, want both apps %v", got, both)
	}
	f.runApps(a, got, "unsigned")
	for _, app := range both {
		st := f.appState(app)
		if st.Phase != state.Held || st.Applied == nil || st.Applied.Commit != signed || !bytes.Contains([]byte(st.Reason), []byte(unsigned[:7])) {
			t.Errorf("app %s under unsigned head %s: %s %q; want Held naming it, %s in force", app, unsigned[:7], st.Phase, st.Reason, signed[:7])
		}
	}
	if v := f.configMapValue("alpha-config"); v != "1" {
		t.Errorf("alpha-config v = %q under an unsigned head, want the signed 1", v)
	}
}
