package main_test

// "Secrets never leave the cluster through gitpace": the real binary is run
// through a Secret's whole life (created from data and stringData, in a
// plain file and in a List; values changed, a key removed, a key added; a
// Secret pruned; a kubectl-made Secret with its last-applied copy adopted;
// Secrets the API server refuses with their values in the message), and
// every output it has is collected: diff and plan in every format, status
// and history in every format, the agent's stdout and its logs in text and
// JSON, /metrics, and the state it keeps in the cluster. No value may
// appear in any of them, neither plain nor in base64 nor as the base64 of
// that base64; the key names and how they changed must.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/state"
	"github.com/gitpace/gitpace/status"
)

// gp runs the gitpace binary to the end and returns its stdout, stderr and
// exit code.
func gp(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, gitpaceBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("gitpace %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// secretValues are the test's Secret values, each distinctive (a random
// suffix per run) so that finding one in an output can only be a leak.
type secretValues map[string]string

func (v secretValues) b64(name string) string {
	return base64.StdEncoding.EncodeToString([]byte(v[name]))
}

func TestSecretValuesNeverShown(t *testing.T) {
	ctx := within(t, 4*time.Minute)
	ns, stateNS := testenv.Namespace(t), testenv.Namespace(t)
	kube := testenv.Client(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	tag := hex.EncodeToString(suffix)
	val := secretValues{}
	for _, n := range []string{"user1", "password1", "password2", "token1", "newkey2", "dbpassword1",
		"apikey1", "apikey2", "oldpw1", "legacy1", "legacyold1", "legacy2", "refused1", "warned2"} {
		val[n] = "gpv-" + n + "-" + tag
	}
	val["keystore1"] = string(append([]byte{0x00, 0xfe, 0x89}, "PNG-keystore-"+tag+"\x00\xff"...))
	val["pin"] = fmt.Sprintf("73910%05d", int(suffix[0])<<8|int(suffix[1])) // a YAML number
	refuseWhenKey, warnWhenKey := "REFUSE_ME", "WARN_ME"
	policyEchoing(t, ctx, kube, ns, refuseWhenKey, admissionv1.Deny)
	policyEchoing(t, ctx, kube, ns, warnWhenKey, admissionv1.Warn)

	repo := gittest.New(t)
	smtp := func(data map[string]string, stringData map[string]string) string {
		return secretYAML("smtp", ns, data, stringData, val)
	}
	v1Files := map[string]string{
		"apps/mail/smtp.yaml": smtp(map[string]string{"USER": "user1", "PASSWORD": "password1", "KEYSTORE": "keystore1"},
			map[string]string{"TOKEN": "token1"}),
		"apps/mail/list.yaml": listYAML(ns, "apikey1", val),
		"apps/mail/old.yaml":  secretYAML("old", ns, map[string]string{"OLD_PW": "oldpw1"}, nil, val),
	}
	v1 := repo.Commit("mail: secrets", v1Files)
	args := func(verb string, more ...string) []string {
		return append([]string{verb, "--repo", repo.Dir, "--path", "apps", "--kubeconfig", testenv.Kubeconfig(),
			"--state-namespace", stateNS, "--default-namespace", ns}, more...)
	}
	outputs := map[string]string{} // what gitpace printed, by where
	collect := func(label string, wantCode int, a ...string) string {
		t.Helper()
		out, errOut, code := gp(t, ctx, a...)
		outputs[label+" stdout"], outputs[label+" stderr"] = out, errOut
		if code != wantCode {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", label, code, wantCode, out, errOut)
		}
		return out
	}
	reviews := func(rev string, wantCode int) {
		t.Helper()
		for _, o := range []string{"", "json", "yaml"} {
			more := []string{"--rev", rev}
			if o != "" {
				more = append(more, "-o", o)
			}
			collect(fmt.Sprintf("diff %s -o %q", rev[:7], o), wantCode, args("diff", more...)...)
			collect(fmt.Sprintf("plan %s -o %q", rev[:7], o), wantCode, args("plan", more...)...)
		}
		collect(fmt.Sprintf("plan %s --format markdown", rev[:7]), wantCode, args("plan", "--rev", rev, "--format", "markdown")...)
	}

	// 1. Created: every key is added.
	reviews(v1, 2)
	if d := outputs[fmt.Sprintf("diff %s -o %q stdout", v1[:7], "")]; !strings.Contains(d, "TOKEN: '*** (added)'") ||
		!strings.Contains(d, "API_KEY: '*** (added)'") || !strings.Contains(d, "gpv-visible-"+tag) {
		t.Errorf("diff of the new Secrets does not show their keys added, or hides the ConfigMap's value:\n%s", d)
	}
	collect("run --once v1 (text logs)", 0, args("run", "--once", "--listen", "", "--log-format", "text", "--log-level", "debug")...)

	// 2. A Secret made by `kubectl apply` (its values in the annotation
	// kubectl.kubernetes.io/last-applied-configuration) that git adopts.
	createKubectlSecret(t, ctx, kube, ns, val)

	// 3. Changed, removed and added keys; a Secret pruned; the kubectl
	// Secret adopted with a changed value; an app whose Secrets the API
	// server refuses, echoing their values.
	v2 := repo.Commit("mail: rotate; bad: refused secrets", map[string]string{
		"apps/mail/smtp.yaml": smtp(map[string]string{"PASSWORD": "password2", "KEYSTORE": "keystore1", "NEW_KEY": "newkey2"},
			map[string]string{"TOKEN": "token1"}),
		"apps/mail/list.yaml":   listYAML(ns, "apikey2", val),
		"apps/mail/old.yaml":    gittest.Delete,
		"apps/mail/legacy.yaml": secretYAML("legacy", ns, map[string]string{"LEGACY_PW": "legacy2"}, nil, val),
		"apps/mail/warned.yaml": secretYAML("warned", ns, map[string]string{warnWhenKey: "warned2"}, nil, val),
		"apps/bad/refused.yaml": secretYAML("refused", ns, map[string]string{refuseWhenKey: "refused1"}, nil, val),
	})
	reviews(v2, 1) // app bad is invalid
	for label, stdout := range outputs {
		if !strings.HasPrefix(label, "diff "+v2[:7]) && !strings.HasPrefix(label, "plan "+v2[:7]) || !strings.HasSuffix(label, " stdout") {
			continue
		}
		label = strings.TrimSuffix(label, " stdout")
		out := stdout + outputs[label+" stderr"] // `diff` without -o reports invalid apps on stderr
		for _, want := range []string{"PASSWORD: '*** (old value)'", "PASSWORD: '*** (changed)'", "NEW_KEY: '*** (added)'",
			"USER: '*** (removed)'", "API_KEY: '*** (changed)'", "LEGACY_PW: '*** (changed)'", "OLD_PW: '*** (removed)'",
			"KEYSTORE: '***'", "Secret/" + ns + "/refused"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s does not show %q:\n%s", label, want, out)
			}
		}
	}

	// 4. The agent applies v2 (JSON logs, /metrics served), then once more
	// with text logs.
	ag := startAgent(t, "json logs", args("run", "--listen", "127.0.0.1:0", "--interval", "1s",
		"--log-format", "json", "--log-level", "debug")...)
	actx := ag.alive(ctx)
	apps := waitApps(t, actx, kube, stateNS, func(apps map[string]status.App) bool {
		m, b := apps["mail"], apps["bad"]
		return m.Applied != nil && m.Applied.Commit == v2 && m.Phase == state.Synced && b.Phase == state.Failed
	})
	if r := apps["bad"].Reason; !strings.Contains(r, "***") {
		t.Errorf("app bad's reason shows no redaction (the refusals echo the values): %q", r)
	}
	// The warning was logged before the state was saved, but reaches
	// ag.stderr through a pipe that exec copies in a goroutine of its own.
	if !untilOutput(actx, 10*time.Second, &ag.stderr, "echo: "+warnWhenKey+" is ***") {
		t.Errorf("the JSON log has no redacted warning of the admission policy:\n%s", ag.stderr.String())
	}
	outputs["/metrics"] = scrape(t, actx, ag)
	ag.stop()
	outputs["run v2 (json logs) stdout"], outputs["run v2 (json logs) stderr"] = ag.stdout.String(), ag.stderr.String()
	collect("run --once v2 (text logs)", 1, args("run", "--once", "--listen", "", "--log-format", "text", "--log-level", "debug")...)
	if !strings.Contains(outputs["run --once v2 (text logs) stderr"], "Secret/"+ns+"/refused") {
		t.Errorf("the text log does not name the refused Secret:\n%s", outputs["run --once v2 (text logs) stderr"])
	}

	// 5. What gitpace reports afterwards, and the state it keeps.
	read := []string{"--kubeconfig", testenv.Kubeconfig(), "--state-namespace", stateNS}
	for _, o := range []string{"", "json", "yaml"} {
		var more []string
		if o != "" {
			more = []string{"-o", o}
		}
		collect(fmt.Sprintf("status -o %q", o), 0, append(append([]string{"status"}, read...), more...)...)
		for _, app := range []string{"mail", "bad"} {
			collect(fmt.Sprintf("history %s -o %q", app, o), 0, append(append([]string{"history", app}, read...), more...)...)
		}
	}
	if s := outputs[`status -o "json" stdout`]; !strings.Contains(s, "Secret/"+ns+"/refused") || !strings.Contains(s, "***") {
		t.Errorf("status -o json does not name the refused Secret with its values redacted:\n%s", s)
	}
	cms, err := kube.CoreV1().ConfigMaps(stateNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := json.Marshal(cms.Items)
	outputs["state ConfigMaps"] = string(stored)

	// 6. A Secret whose value does not decode into its Go type (a YAML
	// number in data) is refused when loaded, naming the field, never the
	// value. (Its own commit: an app invalid at load holds every prune,
	// which would hide step 3's pruned Secret.)
	v3 := repo.Commit("bad: a typed Secret", map[string]string{"apps/bad/typed.yaml": fmt.Sprintf(
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: typed\n  namespace: %s\ndata:\n  PIN: %s\n", ns, val["pin"])})
	reviews(v3, 1)
	if d := outputs[fmt.Sprintf("diff %s -o %q stderr", v3[:7], "")]; !strings.Contains(d, "Secret/"+ns+"/typed") || !strings.Contains(d, "data.PIN") {
		t.Errorf("diff of v3 does not name the typed Secret's field:\n%s", d)
	}
	collect("run --once v3 (text logs)", 1, args("run", "--once", "--listen", "", "--log-format", "text", "--log-level", "debug")...)
	collect("status v3", 0, append([]string{"status", "-o", "json"}, read...)...)
	if cms, err = kube.CoreV1().ConfigMaps(stateNS).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	stored, _ = json.Marshal(cms.Items)
	outputs["state ConfigMaps after v3"] = string(stored)

	// Neither a value nor its base64 nor the base64 of that, anywhere.
	labels := make([]string, 0, len(outputs))
	for l := range outputs {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	names := make([]string, 0, len(val))
	for n := range val {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, label := range labels {
		out := outputs[label]
		for _, n := range names {
			plain := val[n]
			b := val.b64(n)
			for form, s := range map[string]string{"plain": plain, "base64": b, "unpadded base64": strings.TrimRight(b, "="),
				"base64 of base64": base64.StdEncoding.EncodeToString([]byte(b))} {
				if i := strings.Index(out, s); i >= 0 {
					t.Errorf("%s shows Secret value %s (%s) at %d: ...%q...", label, n, form, i, excerpt(out, i, len(s)))
				}
			}
		}
	}
}

// excerpt is out around [i, i+n).
func excerpt(out string, i, n int) string {
	return out[max(i-80, 0):min(i+n+80, len(out))]
}

// secretYAML is a Secret with data (values named in val, base64-encoded
// here) and stringData (values named in val, as they are).
func secretYAML(name, ns string, data, stringData map[string]string, val secretValues) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\n", name, ns)
	for _, f := range []struct {
		field  string
		m      map[string]string
		encode bool
	}{{"data", data, true}, {"stringData", stringData, false}} {
		if len(f.m) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:\n", f.field)
		for _, k := range sortedKeysOf(f.m) {
			v := val[f.m[k]]
			if f.encode {
				v = val.b64(f.m[k])
			}
			fmt.Fprintf(&b, "  %s: %q\n", k, v)
		}
	}
	return b.String()
}

// listYAML is a List holding Secret api (DB_PASSWORD in data, API_KEY in
// stringData with the value named apiKey) and a ConfigMap, whose value is
// no secret and shows in diffs.
func listYAML(ns, apiKey string, val secretValues) string {
	tag := strings.TrimPrefix(val["user1"], "gpv-user1-")
	return fmt.Sprintf(`apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata:
    name: api
    namespace: %[1]s
  data:
    DB_PASSWORD: %[2]q
  stringData:
    API_KEY: %[3]q
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: settings
    namespace: %[1]s
  data:
    mode: gpv-visible-%[4]s
`, ns, val.b64("dbpassword1"), val[apiKey], tag)
}

func sortedKeysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// createKubectlSecret makes Secret legacy as `kubectl apply` (client-side)
// does: field manager kubectl-client-side-apply, and the applied object,
// values included, in the last-applied-configuration annotation.
func createKubectlSecret(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string, val secretValues) {
	t.Helper()
	applied := map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "legacy", "namespace": ns},
		"data":       map[string]any{"LEGACY_PW": val.b64("legacy1")},
		"stringData": map[string]any{"LEGACY_OLD": val["legacyold1"]},
	}
	la, err := json.Marshal(applied)
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: ns,
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(la) + "\n"}},
		Data:       map[string][]byte{"LEGACY_PW": []byte(val["legacy1"])},
		StringData: map[string]string{"LEGACY_OLD": val["legacyold1"]},
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}); err != nil {
		t.Fatalf("creating the kubectl-made Secret: %v", err)
	}
}

// policyEchoing installs a ValidatingAdmissionPolicy that, in namespace
// ns, refuses (action Deny) or warns about (Warn) any Secret holding key,
// with a message that prints the key's value, in base64 (as a careless
// policy does),
// and waits until it is in force.
func policyEchoing(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, key string, action admissionv1.ValidationAction) {
	t.Helper()
	name := "gitpace-test-" + strings.ToLower(strings.ReplaceAll(key, "_", "-")) + "-" + ns
	fail := admissionv1.Fail
	pol := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression:        fmt.Sprintf("!has(object.data) || !(%q in object.data)", key),
				MessageExpression: fmt.Sprintf("'echo: %[1]s is ' + string(object.data[%[1]q])", key),
			}},
		},
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the admission policy: %v", err)
	}
	t.Cleanup(func() {
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	bind := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{action},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}},
		},
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the admission policy binding: %v", err)
	}
	t.Cleanup(func() {
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}, Data: map[string][]byte{key: []byte("probe")}}
	cfg := testenv.Config(t)
	warnings := &warningRecorder{}
	cfg.WarningHandler = warnings
	probing, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(200 * time.Millisecond) // polling until the policy is in force
	defer tick.Stop()
	for {
		_, err := probing.CoreV1().Secrets(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		echo := "echo: " + key + " is " + base64.StdEncoding.EncodeToString([]byte("probe")) // CEL sees data as base64
		if action == admissionv1.Deny && err != nil && strings.Contains(err.Error(), echo) ||
			action == admissionv1.Warn && err == nil && strings.Contains(warnings.String(), echo) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the admission policy is not in force: last dry run: %v", err)
		case <-tick.C:
		}
	}
}

// warningRecorder keeps the warnings of the API server's answers.
type warningRecorder struct{ testenv.Buffer }

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, message string) {
	_, _ = w.Write([]byte(message + "\n"))
}

// waitApps polls gitpace's state until done holds for the apps.
func waitApps(t *testing.T, ctx context.Context, kube kubernetes.Interface, stateNS string, done func(map[string]status.App) bool) map[string]status.App {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond) // polling the state ConfigMaps
	defer tick.Stop()
	var last map[string]status.App
	for {
		list, err := status.Collect(ctx, kube, stateNS, "", "")
		if err == nil {
			last = map[string]status.App{}
			for _, a := range list {
				last[a.Name] = a
			}
			if done(last) {
				return last
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for the apps: %v; last state: %+v (err %v)", context.Cause(ctx), last, err)
		case <-tick.C:
		}
	}
}

// untilOutput polls out, an agent's output copied from its pipe, until it
// holds want; false if it does not within d (or ctx ends).
func untilOutput(ctx context.Context, d time.Duration, out *syncBuffer, want string) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond) // polling the copied output
	defer tick.Stop()
	for !strings.Contains(out.String(), want) {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

var listenAddr = regexp.MustCompile(`"msg":"serving /metrics[^}]*"addr":"([^"]+)"`)

// scrape reads /metrics from an agent started with --listen and JSON logs.
func scrape(t *testing.T, ctx context.Context, p *agentProc) string {
	t.Helper()
	m := listenAddr.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no listen address in the agent's log:\n%s", p.stderr.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m[1]+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	if !strings.Contains(string(b), `gitpace_app_phase{app="mail",phase="Synced"} 1`) {
		t.Errorf("/metrics has no phase of app mail:\n%s", b)
	}
	return string(b)
}
