package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/state"
)

// fakeClock is the injected clock of window tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

const denyNights = `windows:
- kind: deny
  schedule: "0 22 * * *"
  duration: 8h
  apps: ["web"]
`

// TestWindowHoldsAndFreezes: with an injected clock, a revision committed in
// a deny window waits until it closes; a rollout in flight when a deny window
// opens is frozen with spec.paused at the edge and resumed when it closes.
func TestWindowHoldsAndFreezes(t *testing.T) {
	f := newFixture(t)
	clock := &fakeClock{t: time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)} // inside the deny window
	f.repo.Commit("deploy in the night", map[string]string{
		"apps/gitpace.yaml":        denyNights,
		"apps/web/deployment.yaml": seed(t, "test1-1-0.yaml"),
	})
	f.build(nil)
	f.cfg.Now = clock.Now
	a := f.rebuild()
	ctx := context.Background()
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st := f.appState("web")
	if st.Phase != state.Held || !strings.Contains(st.Reason, "window") || !strings.Contains(st.Reason, "0 22 * * *") {
		t.Fatalf("state in the deny window = %s %q, want Held naming the window", st.Phase, st.Reason)
	}
	if f.deployment("test") != nil {
		t.Fatal("Deployment created inside a deny window")
	}

	clock.Set(time.Date(2026, 11, 27, 6, 0, 1, 0, time.UTC)) // the window closed at 06:00
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	f.eventually("v1.1.0 rolled out after the window", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV0) })

	// A slow rollout started at 21:59 is frozen when the window opens at 22:00.
	clock.Set(time.Date(2026, 11, 27, 21, 59, 0, 0, time.UTC))
	f.repo.Commit("v1.1.1 just before the window", map[string]string{"apps/web/deployment.yaml": withReadyDelay(seed(t, "test1-1-1.yaml"), "4s")})
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.appState("web"); st.Phase != state.Progressing {
		t.Fatalf("phase after applying at 21:59 = %s, want Progressing", st.Phase)
	}
	clock.Set(time.Date(2026, 11, 27, 22, 0, 1, 0, time.UTC))
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if d := f.deployment("test"); !d.Spec.Paused || rolledOut(d, imageV1) {
		t.Fatalf("at the window's edge: paused=%v, rolled out=%v; want a frozen rollout", d.Spec.Paused, rolledOut(d, imageV1))
	}
	if st := f.appState("web"); st.Phase != state.Held {
		t.Errorf("phase in the window = %s, want Held", st.Phase)
	}
	clock.Set(time.Date(2026, 11, 28, 6, 0, 1, 0, time.UTC))
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if f.deployment("test").Spec.Paused {
		t.Fatal("still paused after the window closed")
	}
	f.eventually("rollout completed after the window", time.Minute, func() bool { return rolledOut(f.deployment("test"), imageV1) })
}

// TestSignedCommitsOnly: with a trusted key file (an OpenPGP key and an SSH
// key), a head signed by either applies; an unsigned head, or one signed by
// an SSH key not in the file, is held (naming the committer, and the key) and
// the last verified revision stays in force.
func TestSignedCommitsOnly(t *testing.T) {
	f := newFixture(t)
	trusted, err := openpgp.NewEntity("Release Bot", "", "release@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "trusted.asc")
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := trusted.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	sshKey, stranger := gittest.NewSSHSigner(t), gittest.NewSSHSigner(t)
	buf.WriteString("\n# release signing over SSH\nrelease@example.com " + sshKey.AuthorizedKey() + "\n")
	if err := os.WriteFile(keyFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	kr, err := policies.LoadKeyRing(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signed := f.repo.CommitSigned("signed v1", map[string]string{"apps/web/cm.yaml": cm}, trusted)
	f.build(nil)
	f.cfg.KeyRing = kr
	a := f.rebuild()
	ctx := context.Background()
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.appState("web"); st.Applied == nil || st.Applied.Commit != signed {
		t.Fatalf("signed revision not applied: %+v", st)
	}
	unsigned := f.repo.Commit("unsigned v2", map[string]string{"apps/web/cm.yaml": strings.Replace(cm, "hello", "evil", 1)})
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st := f.appState("web")
	if st.Phase != state.Held || !strings.Contains(st.Reason, "signature") || !strings.Contains(st.Reason, "author@example.com") || !strings.Contains(st.Reason, unsigned[:7]) {
		t.Errorf("unsigned head: %s %q; want Held by signature naming the commit and committer", st.Phase, st.Reason)
	}
	if st.Applied.Commit != signed {
		t.Errorf("applied = %s, want the last verified %s", st.Applied.Commit, signed)
	}
	got, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "test-config", metav1.GetOptions{})
	if err != nil || got.Data["greeting"] != "hello" {
		t.Errorf("ConfigMap = %v, %v; want the signed revision's", got.Data, err)
	}

	sshSigned := f.repo.CommitSignedWith("ssh-signed v3", map[string]string{"apps/web/cm.yaml": strings.Replace(cm, "hello", "bonjour", 1)}, sshKey)
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.appState("web"); st.Phase != state.Synced || st.Applied.Commit != sshSigned {
		t.Fatalf("SSH-signed head: %s %q applied %s; want Synced at %s", st.Phase, st.Reason, st.Applied.Commit, sshSigned)
	}
	forged := f.repo.CommitSignedWith("stranger v4", map[string]string{"apps/web/cm.yaml": strings.Replace(cm, "hello", "evil", 1)}, stranger)
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	fp := ssh.FingerprintSHA256(stranger.Signer.PublicKey())
	if st := f.appState("web"); st.Phase != state.Held || !strings.Contains(st.Reason, forged[:7]) || !strings.Contains(st.Reason, "SSH key "+fp) || st.Applied.Commit != sshSigned {
		t.Errorf("stranger's SSH-signed head: %s %q applied %s; want Held naming %s and key %s, %s in force", st.Phase, st.Reason, st.Applied.Commit, forged[:7], fp, sshSigned[:7])
	}
	got, err = f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "test-config", metav1.GetOptions{})
	if err != nil || got.Data["greeting"] != "bonjour" {
		t.Errorf("ConfigMap = %v, %v; want the SSH-signed revision's", got.Data, err)
	}
}

// TestAllowListRefuses: an object outside gitpace.yaml's allow-list holds
// the whole revision, naming the rule; nothing of it is applied; a later
// compliant commit ends the hold.
func TestAllowListRefuses(t *testing.T) {
	f := newFixture(t)
	policy := "apps:\n- match: web\n  namespaces: [\"" + f.ns + "\"]\n  kinds: [ConfigMap]\n"
	f.repo.Commit("cm and svc", map[string]string{"apps/gitpace.yaml": policy, "apps/web/all.yaml": cm + "---\n" + svc})
	a := f.build(nil)
	ctx := context.Background()
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st := f.appState("web")
	if st.Phase != state.Held || !strings.Contains(st.Reason, "apps[0]") || !strings.Contains(st.Reason, "Service") {
		t.Errorf("state = %s %q; want Held naming rule apps[0] and the Service", st.Phase, st.Reason)
	}
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "test-config", metav1.GetOptions{}); err == nil {
		t.Error("the allowed ConfigMap of a refused revision was applied")
	}
	// A commit that obeys the rule ends the hold.
	fixed := f.repo.Commit("drop the service", map[string]string{"apps/web/all.yaml": cm})
	if err := a.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.appState("web"); st.Phase != state.Synced || st.Reason != "" || st.Applied == nil || st.Applied.Commit != fixed {
		t.Errorf("after a compliant commit: %s %q applied %+v; want Synced at %s", st.Phase, st.Reason, st.Applied, fixed[:7])
	}
}
