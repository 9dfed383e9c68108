package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/textenc"
	"github.com/gitpace/gitpace/state"
)

// Tests of issue 8 section 4, "every file and repository form a user
// commits": encodings (case 12), symlinks (case 15), local repository forms.
// Fixtures: testdata/inputs/case12 and case15, byte for byte as the cases
// ship them; the case's namespace is replaced by the test's own, keeping
// each file's encoding, byte order mark and line ends.

// fixtureFile reads testdata/inputs/rel with every "caseNN" namespace
// replaced by ns, re-encoded as the file was (UTF-16LE and the UTF-8 byte
// order mark kept; CRLF untouched).
func fixtureFile(t *testing.T, rel, ns string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "inputs", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	text, enc, err := textenc.ToUTF8(raw)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("case12", ns, "case15", ns).Replace(string(text))
	return string(textenc.Encode(s, enc))
}

// uids returns the uids of the named objects of f.ns ("deploy/x", "svc/x",
// "cm/x"); a missing object has uid "".
func (f *fixture) uids(names ...string) map[string]types.UID {
	f.t.Helper()
	ctx := context.Background()
	out := map[string]types.UID{}
	for _, n := range names {
		kind, name, _ := strings.Cut(n, "/")
		var m metav1.Object
		var err error
		switch kind {
		case "deploy":
			m, err = f.kube.AppsV1().Deployments(f.ns).Get(ctx, name, metav1.GetOptions{})
		case "svc":
			m, err = f.kube.CoreV1().Services(f.ns).Get(ctx, name, metav1.GetOptions{})
		case "cm":
			m, err = f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, name, metav1.GetOptions{})
		default:
			f.t.Fatalf("uids: unknown kind in %q", n)
		}
		if err == nil {
			out[n] = m.GetUID()
		} else {
			out[n] = ""
		}
	}
	return out
}

// pass runs one reconcile pass (the head commit is then processed:
// applied, found unchanged, or rejected) and returns app's state. A
// rejected revision is not a pass error.
func (f *fixture) passApp(app string) *state.App {
	f.t.Helper()
	if err := f.agent.ReconcileOnce(context.Background()); err != nil {
		f.t.Fatalf("reconcile: %v", err)
	}
	return f.appState(app)
}

// waitSynced makes one pass (so the head commit is processed), then runs
// the agent until app is Synced with n objects (rollouts are followed while
// it runs), and stops it. A rejection of the head fails the test.
func (f *fixture) waitSynced(app string, n int, step string) *state.App {
	f.t.Helper()
	if st := f.passApp(app); st == nil || st.Rejected != nil {
		f.t.Fatalf("%s: %s", step, describe(st))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.agent.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var st *state.App
	f.eventually(fmt.Sprintf("%s: Synced with %d objects", step, n), time.Minute, func() bool {
		st = f.appState(app)
		return st != nil && st.Rejected == nil && st.Phase == state.Synced && len(st.Inventory) == n
	})
	return st
}

// requireRejected fails unless the app's newest revision, commit, was
// rejected with an error holding every one of parts, and inForce stays.
func (f *fixture) requireRejected(st *state.App, commit, inForce string, parts ...string) {
	f.t.Helper()
	if st == nil || st.Rejected == nil || st.Rejected.Revision.Commit != commit || st.Applied == nil || st.Applied.Commit != inForce {
		f.t.Fatalf("want %s rejected with %s in force; got %s", commit[:7], inForce[:7], describe(st))
	}
	f.t.Logf("rejected %s: %s", commit[:7], st.Rejected.Error)
	for _, p := range parts {
		if !strings.Contains(st.Rejected.Error, p) {
			f.t.Errorf("rejection %q does not say %q", st.Rejected.Error, p)
		}
	}
}

func describe(st *state.App) string {
	if st == nil {
		return "no state"
	}
	b, _ := json.Marshal(struct {
		Applied   *sources.Revision
		Phase     state.Phase
		Reason    string
		Rejected  *state.Rejection
		Inventory int
	}{st.Applied, st.Phase, st.Reason, st.Rejected, len(st.Inventory)})
	return string(b)
}

// TestCase12Encodings: case 12 on the control plane. A Windows re-save of
// stock.yaml as UTF-16LE (BOM, CRLF) and scripts.yaml as UTF-8 (BOM, CRLF)
// reads all six objects again (same uids, nothing pruned); a truncated
// UTF-16 file is rejected naming file and encoding, nothing pruned; a JSON
// file with a BOM is read; `name: 0755` is rejected saying metadata.name
// must be a string and YAML read 0755 as a number (quote it), with file and
// line, nothing changed; back to plain files: same uids.
func TestCase12Encodings(t *testing.T) {
	f := newFixture(t)
	file := func(step, name string) string {
		return fixtureFile(t, "case12/"+step+"/apps/inventory/"+name, f.ns)
	}
	plain := map[string]string{
		"apps/inventory/stock.yaml":    file("v1", "stock.yaml"),
		"apps/inventory/scripts.yaml":  file("v1", "scripts.yaml"),
		"apps/inventory/settings.json": file("v1", "settings.json"),
	}
	watched := []string{"deploy/stock", "svc/stock", "cm/stock-scripts", "cm/stock-scripts-extra", "cm/stock-settings"}
	deployed := f.repo.Commit("inventory: first deploy", plain)
	f.build(nil)
	first := f.waitSynced("inventory", 6, "step 1 (plain UTF-8)")
	same := f.baseline(first, watched...)

	// Step 2: the Windows re-save.
	utf16 := file("v2", "stock.yaml")
	if !strings.HasPrefix(utf16, "\xff\xfe") || !strings.Contains(file("v2", "scripts.yaml"), "\r\n") {
		t.Fatal("fixture: v2 stock.yaml is not UTF-16LE, or scripts.yaml has no CRLF")
	}
	f.repo.Commit("inventory: re-export stock.yaml from PowerShell", map[string]string{
		"apps/inventory/stock.yaml":   utf16,
		"apps/inventory/scripts.yaml": file("v2", "scripts.yaml"),
	})
	same(f.waitSynced("inventory", 6, "step 2 (UTF-16LE, UTF-8 BOM, CRLF)"), "step 2")

	// A UTF-16 file cut in the middle of a character cannot be decoded: the
	// revision is rejected naming it and its encoding; nothing is pruned.
	inForce := f.appState("inventory").Applied.Commit
	cut := f.repo.Commit("inventory: a truncated UTF-16 file", map[string]string{"apps/inventory/stock.yaml": utf16[:len(utf16)-1]})
	f.requireRejected(f.passApp("inventory"), cut, inForce, "apps/inventory/stock.yaml", "UTF-16LE", "odd number of bytes")
	same(f.appState("inventory"), "truncated UTF-16")

	// Step 3: settings.json with a UTF-8 BOM is read; then names.yaml's
	// `name: 0755` is rejected and nothing changes.
	bomJSON := file("v3", "settings.json")
	if !strings.HasPrefix(bomJSON, "\xef\xbb\xbf") {
		t.Fatal("fixture: v3 settings.json has no BOM")
	}
	f.repo.Commit("inventory: edit settings.json in Notepad", map[string]string{
		"apps/inventory/stock.yaml":    utf16,
		"apps/inventory/settings.json": bomJSON,
	})
	same(f.waitSynced("inventory", 6, "step 3 (settings.json with a BOM)"), "step 3")
	cms, err := f.kube.CoreV1().ConfigMaps(f.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inForce = f.appState("inventory").Applied.Commit
	numbered := f.repo.Commit("inventory: add mode map", map[string]string{"apps/inventory/names.yaml": file("v3", "names.yaml")})
	f.requireRejected(f.passApp("inventory"), numbered, inForce,
		"apps/inventory/names.yaml:5", "metadata.name must be a string", "YAML read 0755 as a number", `quote it, "0755"`)
	after, err := f.kube.CoreV1().ConfigMaps(f.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Items) != len(cms.Items) {
		t.Errorf("the rejected revision changed the ConfigMaps: %d, was %d", len(after.Items), len(cms.Items))
	}
	same(f.appState("inventory"), "step 3 (0755 rejected)")

	// Step 4: back to plain files. The revision after the rejection is
	// applied; it declares the objects of every step before, so the
	// revision in force is still the commit that made them.
	plain["apps/inventory/names.yaml"] = gittest.Delete
	f.repo.Commit("inventory: back to UTF-8", plain)
	st := f.waitSynced("inventory", 6, "step 4 (plain again)")
	same(st, "step 4")
	if st.Applied.Commit != deployed {
		t.Errorf("step 4: %s in force, want %s (the re-saves and step 4 leave the objects of the first deploy)", st.Applied.Commit[:7], deployed[:7])
	}
}

// baseline records the objects an app read (its content hash in st) and the
// uids of the named live objects ("deploy/x", "svc/x", "cm/x"), which must
// all exist. The returned check fails unless a later state read the same
// objects and they still live with the same uids (nothing pruned or
// re-created).
func (f *fixture) baseline(st *state.App, names ...string) func(*state.App, string) {
	f.t.Helper()
	uids := f.uids(names...)
	for n, u := range uids {
		if u == "" {
			f.t.Fatalf("%s was not created", n)
		}
	}
	return func(later *state.App, step string) {
		f.t.Helper()
		if later.ContentHash != st.ContentHash {
			f.t.Errorf("%s: the objects read differ from the plain files' (content hash %s, want %s)", step, later.ContentHash, st.ContentHash)
		}
		if got := f.uids(names...); !equalUIDs(got, uids) {
			f.t.Fatalf("%s: uids %v, want %v (nothing pruned or re-created)", step, got, uids)
		}
	}
}

func equalUIDs(a, b map[string]types.UID) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if v == "" || b[k] != v {
			return false
		}
	}
	return true
}

// TestCase12BCSVariant: the seed's test1-1-0.json with a UTF-8 BOM creates
// application "test" as the plain file does; re-saved as UTF-16LE (BOM) and
// back to plain, gitpace reads the same deployment (the hash of what it read
// is unchanged, nothing is rejected): the same ReplicaSet (uid), no new
// application.
func TestCase12BCSVariant(t *testing.T) {
	f := newFixture(t)
	seedJSON := bcsSeed(t, "test1-1-0.json", f.ns)
	f.repo.Commit("bcs with a BOM", map[string]string{"apps/bcs/test.json": string(textenc.Encode(seedJSON, textenc.UTF8BOM))})
	f.build(nil)
	// The paced engine creates the application while the agent runs.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.agent.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			cancel()
			<-done
			stopped = true
		}
	}
	t.Cleanup(stop)
	rs := func() *appsv1.ReplicaSet {
		rs, err := f.kube.AppsV1().ReplicaSets(f.ns).Get(context.Background(), "test", metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return rs
	}
	var first *state.App
	f.eventually("the BOM file applied: application test at 2 ready, app Synced", time.Minute, func() bool {
		first = f.appState("bcs")
		r := rs()
		return first != nil && first.Rejected == nil && first.Phase == state.Synced && r != nil && r.Status.ReadyReplicas == 2
	})
	stop() // the next revisions are read by single passes: each has been processed when its pass returns
	uid := rs().UID
	for _, step := range []struct {
		name string
		data string
	}{
		{"UTF-16LE", string(textenc.Encode(seedJSON, textenc.UTF16LE))},
		{"plain", seedJSON},
	} {
		f.repo.Commit("bcs as "+step.name, map[string]string{"apps/bcs/test.json": step.data})
		st := f.passApp("bcs")
		if st == nil || st.Rejected != nil || st.Phase != state.Synced || st.ContentHash != first.ContentHash {
			t.Fatalf("%s: want the BOM file's deployment read again, Synced; got %s (content hash %s, want %s)",
				step.name, describe(st), st.ContentHash, first.ContentHash)
		}
		if r := rs(); r == nil || r.UID != uid {
			t.Fatalf("%s: ReplicaSet test %v, want uid %q (the same application)", step.name, r, uid)
		}
		l, err := f.kube.AppsV1().ReplicaSets(f.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil || len(l.Items) != 1 {
			t.Fatalf("%s: want only application test, got %d ReplicaSets (%v)", step.name, len(l.Items), err)
		}
	}
}

// TestCase15Symlinks: case 15 on the control plane. A manifest replaced by
// an in-repository symlink to an identical file is read through the link
// (same uid, 3 objects); links leaving the repository reject the revision
// naming both links, nothing is pruned, and no host file's content appears
// in any object, state, output or log; plain files again: same uid.
func TestCase15Symlinks(t *testing.T) {
	f := newFixture(t)
	defaults := fixtureFile(t, "case15/shared/defaults.yaml", f.ns)
	f.repo.Commit("shop: first deploy", map[string]string{
		"shared/defaults.yaml":    defaults,
		"apps/shop/shop.yaml":     fixtureFile(t, "case15/apps/shop/shop.yaml", f.ns),
		"apps/shop/defaults.yaml": defaults,
	})
	f.build(nil)
	first := f.waitSynced("shop", 3, "step 1 (plain copy)")
	watched := []string{"cm/shop-defaults", "deploy/shop"}
	same := f.baseline(first, watched...)

	f.repo.Commit("shop: link the shared defaults", map[string]string{
		"apps/shop/defaults.yaml": gittest.Symlink("../../shared/defaults.yaml"),
	})
	same(f.waitSynced("shop", 3, "step 2 (in-repository link)"), "step 2")

	inForce := f.appState("shop").Applied.Commit
	step3 := f.repo.Commit("shop: links pointing outside the repository", map[string]string{
		"apps/shop/host.yaml":   gittest.Symlink("/etc/hostname"),
		"apps/shop/passwd.yaml": gittest.Symlink("../../../../../../etc/passwd"),
	})
	st := f.passApp("shop")
	f.requireRejected(st, step3, inForce,
		"apps/shop/host.yaml: symlink to /etc/hostname leaves the repository",
		"apps/shop/passwd.yaml: symlink to ../../../../../../etc/passwd leaves the repository")
	same(st, "step 3")
	var leaks []string
	for _, host := range []string{"/etc/hostname", "/etc/passwd"} {
		b, err := os.ReadFile(host)
		if err != nil {
			continue
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if len(line) < 4 {
			continue
		}
		stateJSON, _ := json.Marshal(st)
		cms, err := f.kube.CoreV1().ConfigMaps(f.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		objects, _ := json.Marshal(cms)
		for where, text := range map[string][]byte{"state": stateJSON, "ConfigMaps": objects, "output": []byte(f.out.String()), "logs": []byte(f.logs())} {
			if bytes.Contains(text, []byte(line)) {
				leaks = append(leaks, host+" in "+where)
			}
		}
	}
	if len(leaks) > 0 {
		t.Errorf("host file content leaked: %v", leaks)
	}

	f.repo.Commit("shop: plain files again", map[string]string{
		"apps/shop/host.yaml":     gittest.Delete,
		"apps/shop/passwd.yaml":   gittest.Delete,
		"apps/shop/defaults.yaml": defaults,
	})
	same(f.waitSynced("shop", 3, "step 4 (plain again)"), "step 4")
}

// TestLocalRepositoryFormsReconcile: an agent running on a bare repository
// (pushed to) and one on a linked worktree (committed to through the main
// worktree) each apply the first commit and then notice a new commit by
// watching the repository, not by polling (the poll interval is an hour).
func TestLocalRepositoryFormsReconcile(t *testing.T) {
	for _, form := range []string{"bare", "linked worktree"} {
		t.Run(form, func(t *testing.T) {
			f := newFixture(t)
			cm := func(v string) string {
				return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: form\ndata:\n  v: \"" + v + "\"\n"
			}
			f.repo.Commit("one", map[string]string{"apps/web/cm.yaml": cm("1")})
			var url string
			publish := func() {}
			if form == "bare" {
				url = f.repo.Bare()
				publish = func() { f.repo.PushTo(url) }
			} else {
				url = f.repo.LinkedWorktree()
			}
			src, err := sources.NewGitSource(sources.GitConfig{URL: url, Branch: "main", Path: "apps"})
			if err != nil {
				t.Fatal(err)
			}
			f.build(nil)
			f.cfg.Source = src
			f.rebuild()
			f.run()
			value := func() string {
				c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "form", metav1.GetOptions{})
				if err != nil {
					return ""
				}
				return c.Data["v"]
			}
			f.eventually("first commit applied from the "+form, time.Minute, func() bool { return value() == "1" })
			two := f.repo.Commit("two", map[string]string{"apps/web/cm.yaml": cm("2")})
			publish()
			f.eventually("second commit applied from the "+form+" (watched)", 30*time.Second, func() bool {
				st := f.appState("web")
				return value() == "2" && st != nil && st.Applied != nil && st.Applied.Commit == two
			})
		})
	}
}

// TestSecretNotBase64Rejected (fresh-user report 6, fault 4): a Secret
// whose data value is not base64 is refused by the API server with a 500
// that no retry cures. It rejects the revision at build time, naming
// file:line, object and field but never the value; the app is Failed with
// that error, the last good revision stays in force, and `gitpace diff`
// marks just that app invalid. The next good commit applies.
func TestSecretNotBase64Rejected(t *testing.T) {
	const value = "MySecretNotB64!!value"
	secret := func(v string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  user: YWRtaW4=\n  password: \"" + v + "\"\n"
	}
	f := newFixture(t)
	good := f.repo.Commit("vault", map[string]string{"apps/vault/secret.yaml": secret("c2VjcmV0"), "apps/other/cm.yaml": cm})
	f.build(nil)
	if st := f.passApp("vault"); st.Phase != state.Synced || st.Applied.Commit != good {
		t.Fatalf("first deploy: %s", describe(st))
	}
	bad := f.repo.Commit("vault: new password", map[string]string{"apps/vault/secret.yaml": secret(value)})
	st := f.passApp("vault")
	f.requireRejected(st, bad, good, "apps/vault/secret.yaml:7: Secret/db: invalid object: data.password: illegal base64 data at input byte 14")
	if st.Phase != state.Failed || !strings.Contains(st.Reason, "data.password: illegal base64 data at input byte 14") {
		t.Errorf("status %s %q, want Failed with the error", st.Phase, st.Reason)
	}
	s, err := f.kube.CoreV1().Secrets(f.ns).Get(context.Background(), "db", metav1.GetOptions{})
	if err != nil || string(s.Data["password"]) != "secret" {
		t.Errorf("the Secret changed: %v %q", err, s.Data["password"])
	}
	_, diffs, err := f.agent.Diff(context.Background(), "")
	if err != nil {
		t.Fatalf("diff aborted: %v", err)
	}
	for _, d := range diffs {
		switch {
		case d.App == "vault" && !strings.Contains(d.Error, "data.password: illegal base64 data at input byte 14"):
			t.Errorf("diff of vault: error %q, want the rejection", d.Error)
		case d.App != "vault" && d.Error != "":
			t.Errorf("diff of %s: %s", d.App, d.Error)
		}
	}
	raw, _ := json.Marshal(f.appState("vault"))
	for what, text := range map[string]string{"output": f.out.String(), "logs": f.logs(), "status": string(raw), "diff": fmt.Sprint(diffs)} {
		if strings.Contains(text, value) {
			t.Errorf("the Secret's value is in the %s", what)
		}
	}
	fixed := f.repo.Commit("vault: password in base64", map[string]string{"apps/vault/secret.yaml": secret("bmV3")})
	if st := f.passApp("vault"); st.Phase != state.Synced || st.Rejected != nil || st.Applied.Commit != fixed {
		t.Errorf("the fix: %s", describe(st))
	}
}

// TestKustomizeUnknownKindNamesItsFile (fresh-user report 6, fault 12a):
// an object of a kind the server does not serve, in a file a
// kustomization includes, rejects the revision naming that file and line,
// not the kustomization.
func TestKustomizeUnknownKindNamesItsFile(t *testing.T) {
	f := newFixture(t)
	good := f.repo.Commit("shop", map[string]string{"apps/shop/kustomization.yaml": "resources:\n- cm.yaml\n", "apps/shop/cm.yaml": cm})
	f.build(nil)
	if st := f.passApp("shop"); st.Phase != state.Synced {
		t.Fatalf("first deploy: %s", describe(st))
	}
	bad := f.repo.Commit("shop: foobar", map[string]string{"apps/shop/kustomization.yaml": "resources:\n- cm.yaml\n- foobar.yaml\n",
		"apps/shop/foobar.yaml": "# not served\napiVersion: example.gitpace.dev/v1\nkind: FooBar\nmetadata:\n  name: x\n"})
	f.requireRejected(f.passApp("shop"), bad, good, "apps/shop/foobar.yaml:2: FooBar/x: unknown kind")
}

// TestPolicyFileErrorsNameRepoPath (fresh-user report 6, fault 12b): an
// error in gitpace.yaml names it by its path in the repository
// (apps/gitpace.yaml under --path apps), as manifest errors name theirs.
func TestPolicyFileErrorsNameRepoPath(t *testing.T) {
	f := newFixture(t)
	good := f.repo.Commit("shop", map[string]string{"apps/shop/cm.yaml": cm})
	f.build(nil)
	if st := f.passApp("shop"); st.Phase != state.Synced {
		t.Fatalf("first deploy: %s", describe(st))
	}
	bad := f.repo.Commit("policy typo", map[string]string{"apps/gitpace.yaml": "onFailure: later\n"})
	f.requireRejected(f.passApp("shop"), bad, good, `apps/gitpace.yaml: onFailure: must be "hold" or "revert", got "later"`)
}
