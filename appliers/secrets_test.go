package appliers

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// secret builds a Secret with data given decoded (encoded here) and
// stringData as is; nil maps leave the field out.
func secret(data, stringData map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "s", "namespace": "ns"},
		"type":     "Opaque",
	}}
	if data != nil {
		m := map[string]any{}
		for k, v := range data {
			m[k] = b64(v)
		}
		u.Object["data"] = m
	}
	if stringData != nil {
		m := map[string]any{}
		for k, v := range stringData {
			m[k] = v
		}
		u.Object["stringData"] = m
	}
	return u
}

// assertHidden fails when text holds any of values, plain, in base64 or in
// base64 of base64.
func assertHidden(t *testing.T, text string, values ...string) {
	t.Helper()
	for _, v := range values {
		for _, form := range []string{v, b64(v), b64(b64(v))} {
			if strings.Contains(text, form) {
				t.Errorf("value %q shows (as %q) in:\n%s", v, form, text)
			}
		}
	}
}

func TestMaskSecrets(t *testing.T) {
	binOld := string([]byte{0x00, 0xff, 0x10, 'k', 'e', 'y', 0x80, 0x7f})
	binNew := string([]byte{0x00, 0xff, 0x10, 'k', 'e', 'y', 0x80, 0x7e})
	ref := ObjectRef{Version: "v1", Kind: "Secret", Namespace: "ns", Name: "s"}
	for _, tc := range []struct {
		name          string
		live, desired *unstructured.Unstructured
		wantLive      map[string]any // data after masking; nil: no data
		wantDesired   map[string]any
		values        []string
	}{{
		name:        "equal values: the same mask on both sides, no diff",
		live:        secret(map[string]string{"PASSWORD": "hunter2-equal"}, nil),
		desired:     secret(map[string]string{"PASSWORD": "hunter2-equal"}, nil),
		wantLive:    map[string]any{"PASSWORD": MaskUnchanged},
		wantDesired: map[string]any{"PASSWORD": MaskUnchanged},
		values:      []string{"hunter2-equal"},
	}, {
		name:        "changed, added and removed keys",
		live:        secret(map[string]string{"KEEP": "same-value-1", "TOKEN": "old-token-2", "USER": "gone-user-3"}, nil),
		desired:     secret(map[string]string{"KEEP": "same-value-1", "TOKEN": "new-token-4", "API_KEY": "added-key-5"}, nil),
		wantLive:    map[string]any{"KEEP": MaskUnchanged, "TOKEN": MaskOld, "USER": MaskRemoved},
		wantDesired: map[string]any{"KEEP": MaskUnchanged, "TOKEN": MaskChanged, "API_KEY": MaskAdded},
		values:      []string{"same-value-1", "old-token-2", "gone-user-3", "new-token-4", "added-key-5"},
	}, {
		name:        "binary data: compared by bytes",
		live:        secret(map[string]string{"keystore": binOld, "same": binOld}, nil),
		desired:     secret(map[string]string{"keystore": binNew, "same": binOld}, nil),
		wantLive:    map[string]any{"keystore": MaskOld, "same": MaskUnchanged},
		wantDesired: map[string]any{"keystore": MaskChanged, "same": MaskUnchanged},
		values:      []string{binOld, binNew},
	}, {
		name:        "stringData is compared decoded with data and shown under data",
		live:        secret(map[string]string{"HOST": "smtp.example.test", "PASSWORD": "pw-before-6"}, nil),
		desired:     secret(map[string]string{"HOST": "smtp.example.test"}, map[string]string{"PASSWORD": "pw-after-7", "PORT": "2525"}),
		wantLive:    map[string]any{"HOST": MaskUnchanged, "PASSWORD": MaskOld},
		wantDesired: map[string]any{"HOST": MaskUnchanged, "PASSWORD": MaskChanged, "PORT": MaskAdded},
		values:      []string{"smtp.example.test", "pw-before-6", "pw-after-7", "2525"},
	}, {
		name:        "created: every key added",
		desired:     secret(nil, map[string]string{"NEW": "brand-new-8"}),
		wantDesired: map[string]any{"NEW": MaskAdded},
		values:      []string{"brand-new-8"},
	}, {
		name:     "pruned: every key removed",
		live:     secret(map[string]string{"OLD": "pruned-value-9"}, nil),
		wantLive: map[string]any{"OLD": MaskRemoved},
		values:   []string{"pruned-value-9"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ml, md := MaskSecrets(tc.live, tc.desired)
			if tc.live != nil {
				if diff := cmp.Diff(tc.wantLive, ml.Object["data"]); diff != "" {
					t.Errorf("live data (-want +got):\n%s", diff)
				}
				if _, ok := ml.Object["stringData"]; ok {
					t.Errorf("live stringData kept: %v", ml.Object)
				}
			}
			if tc.desired != nil {
				if diff := cmp.Diff(tc.wantDesired, md.Object["data"]); diff != "" {
					t.Errorf("desired data (-want +got):\n%s", diff)
				}
				if _, ok := md.Object["stringData"]; ok {
					t.Errorf("desired stringData kept: %v", md.Object)
				}
			}
			// The inputs are not modified.
			if tc.desired != nil && tc.desired.Object["data"] != nil {
				for _, v := range tc.desired.Object["data"].(map[string]any) {
					if strings.HasPrefix(v.(string), "***") {
						t.Errorf("MaskSecrets changed its input: %v", tc.desired.Object)
					}
				}
			}
			d := UnifiedDiff(ref, tc.live, tc.desired)
			assertHidden(t, d, tc.values...)
			for k := range tc.wantLive {
				if !strings.Contains(d, k) && tc.wantLive[k] != MaskUnchanged {
					t.Errorf("diff does not name key %s:\n%s", k, d)
				}
			}
		})
	}
}

func TestUnifiedDiffOfSecretNamesKeysAndChanges(t *testing.T) {
	ref := ObjectRef{Version: "v1", Kind: "Secret", Namespace: "ns", Name: "s"}
	live := secret(map[string]string{"KEEP": "keep-me-1", "TOKEN": "old-token-2", "USER": "gone-user-3"}, nil)
	desired := secret(map[string]string{"KEEP": "keep-me-1", "TOKEN": "new-token-4"}, map[string]string{"API_KEY": "added-key-5"})
	got := UnifiedDiff(ref, live, desired)
	want := `--- live/Secret/ns/s
+++ git/Secret/ns/s
@@ -1,8 +1,8 @@
 apiVersion: v1
 data:
+  API_KEY: '*** (added)'
   KEEP: '***'
-  TOKEN: '*** (old value)'
-  USER: '*** (removed)'
+  TOKEN: '*** (changed)'
 kind: Secret
 metadata:
   name: s
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UnifiedDiff (-want +got):\n%s", diff)
	}
	// Unchanged values give no diff at all.
	if d := UnifiedDiff(ref, live, live.DeepCopy()); strings.Contains(d, "@@") {
		t.Errorf("equal Secrets diff:\n%s", d)
	}
}

func TestMaskSecretsLastApplied(t *testing.T) {
	live := secret(map[string]string{"PASSWORD": "kubectl-pw-1"}, nil)
	live.SetAnnotations(map[string]string{LastAppliedAnnotation: `{"apiVersion":"v1","kind":"Secret","stringData":{"PASSWORD":"kubectl-pw-1"}}`, "team": "mail"})
	ml, _ := MaskSecrets(live, nil)
	want := map[string]string{LastAppliedAnnotation: MaskLastApplied, "team": "mail"}
	if diff := cmp.Diff(want, ml.GetAnnotations()); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	assertHidden(t, UnifiedDiff(RefOf(live), live, nil), "kubectl-pw-1")
}

func TestMaskSecretsLeavesOtherKinds(t *testing.T) {
	cm := secret(map[string]string{"k": "v"}, nil)
	cm.SetKind("ConfigMap")
	l, d := MaskSecrets(cm, cm)
	if l != cm || d != cm {
		t.Errorf("a ConfigMap was masked")
	}
	// A Secret of another group is not a core Secret.
	if IsSecret(ObjectRef{Group: "example.com", Version: "v1", Kind: "Secret"}) {
		t.Errorf("example.com/Secret taken for a core Secret")
	}
}

func TestMaskSecretsMalformedData(t *testing.T) {
	live := secret(map[string]string{"K": "live-value-1"}, nil)
	desired := secret(nil, nil)
	desired.Object["data"] = "not-a-map-value-2"
	ml, md := MaskSecrets(live, desired)
	if md.Object["data"] != MaskAdded || ml.Object["data"].(map[string]any)["K"] != MaskRemoved {
		t.Errorf("masked: live %v desired %v", ml.Object["data"], md.Object["data"])
	}
}

func TestRedactSecretValues(t *testing.T) {
	pem := "-----BEGIN KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w\n-----END KEY-----\n"
	s := secret(map[string]string{"PASSWORD": "s3cr3t-Pa55", "PEM": pem, "PIN": "42"}, map[string]string{"TOKEN": `tok"en\value`})
	s.Object["data"].(map[string]any)["NUM"] = int64(1234567) // YAML made a number of it
	for _, tc := range []struct{ in, want string }{
		{"plain s3cr3t-Pa55 here", "plain *** here"},
		{"base64 " + b64("s3cr3t-Pa55"), "base64 ***"},
		{"base64 of base64 " + b64(b64("s3cr3t-Pa55")), "base64 of base64 ***"},
		{"unpadded " + strings.TrimRight(b64("s3cr3t-Pa55"), "="), "unpadded ***"},
		{fmt.Sprintf("quoted %q", `tok"en\value`), `quoted "***"`},
		{"json " + `"tok\"en\\value"`, `json "***"`},
		{"one line of it: MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w", "one line of it: ***"},
		{fmt.Sprintf("go-quoted %q", pem), `go-quoted "***"`},
		{"got &value.valueUnstructured{Value:1234567}", "got &value.valueUnstructured{Value:***}"},
		// A short value is replaced only where it stands alone.
		{`data[PIN]: Invalid value: "42": at input byte 42, not in 1420`, `data[PIN]: Invalid value: "***": at input byte ***, not in 1420`},
		{"nothing secret here", "nothing secret here"},
	} {
		if got := RedactSecretValues(tc.in, s); got != tc.want {
			t.Errorf("RedactSecretValues(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Values in kubectl's last-applied copy, which git may no longer hold.
	live := secret(map[string]string{"PASSWORD": "s3cr3t-Pa55"}, nil)
	live.SetAnnotations(map[string]string{LastAppliedAnnotation: `{"data":{"OLD":"` + b64("only-in-kubectl") + `"}}`})
	if got := RedactSecretValues("old only-in-kubectl, all "+live.GetAnnotations()[LastAppliedAnnotation], s, live); got != "old ***, all ***" {
		t.Errorf("last-applied: %q", got)
	}
	// Not a Secret: nothing is redacted.
	cm := s.DeepCopy()
	cm.SetKind("ConfigMap")
	if got := RedactSecretValues("s3cr3t-Pa55", cm); got != "s3cr3t-Pa55" {
		t.Errorf("ConfigMap values redacted: %q", got)
	}
}

func TestRedactSecretError(t *testing.T) {
	s := secret(map[string]string{"PASSWORD": "s3cr3t-Pa55"}, nil)
	gk := schema.GroupKind{Kind: "Secret"}
	invalid := apierrors.NewInvalid(gk, "s", field.ErrorList{
		field.Invalid(field.NewPath("data").Key("PASSWORD"), b64("s3cr3t-Pa55"), "denied by policy for s3cr3t-Pa55"),
	})
	err := RedactSecretError(fmt.Errorf("dry run: %w", invalid), s)
	assertHidden(t, err.Error(), "s3cr3t-Pa55")
	if !apierrors.IsInvalid(err) {
		t.Errorf("redacted error is no longer Invalid: %v", err)
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		t.Fatalf("redacted error has no API status: %v", err)
	}
	for _, c := range st.Status().Details.Causes {
		assertHidden(t, c.Message+c.Field, "s3cr3t-Pa55")
	}
	if !strings.Contains(err.Error(), "data[PASSWORD]") || !strings.Contains(err.Error(), "dry run: ") {
		t.Errorf("redacted too much: %v", err)
	}
	// An error holding no value is returned as it is.
	plain := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "s", errors.New("no"))
	if got := RedactSecretError(plain, s); got != error(plain) {
		t.Errorf("unchanged error replaced: %v", got)
	}
	// A value only in the status details (not in the message) is redacted too.
	hidden := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInvalid, Code: 422,
		Message: "refused", Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Message: "s3cr3t-Pa55"}}}}}
	err = RedactSecretError(hidden, s)
	if !errors.As(err, &st) || st.Status().Details.Causes[0].Message != "***" {
		t.Errorf("details not redacted: %#v", err)
	}
}

type recordWarnings struct{ got []string }

func (r *recordWarnings) HandleWarningHeader(_ int, _ string, message string) {
	r.got = append(r.got, message)
}

func TestSecretWarningsRedacted(t *testing.T) {
	rec := &recordWarnings{}
	cfg := withSecretWarnings(&rest.Config{WarningHandler: rec})
	s := secret(map[string]string{"PASSWORD": "warned-value-1"}, nil)
	cm := secret(map[string]string{"k": "config-value-2"}, nil)
	cm.SetKind("ConfigMap")
	h := cfg.WarningHandlerWithContext
	h.HandleWarningHeaderWithContext(withSecrets(context.Background(), nil, s, cm), 299, "", "PASSWORD is warned-value-1")
	h.HandleWarningHeaderWithContext(withSecrets(context.Background(), cm), 299, "", "k is config-value-2")
	h.HandleWarningHeaderWithContext(context.Background(), 299, "", "no object")
	want := []string{"PASSWORD is ***", "k is config-value-2", "no object"}
	if diff := cmp.Diff(want, rec.got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
