package appliers_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/gitpace/gitpace/appliers"
)

// TestSummarizeError: a refusal carrying a 3 KB echo of the object becomes
// one line naming the file, the object, the field and the reason; joined
// errors are summarised each.
func TestSummarizeError(t *testing.T) {
	dump := "core.PodTemplateSpec{" + strings.Repeat("Spec: core.PodSpec{Containers: ...}, ", 80) + "}"
	job := &appliers.ObjectError{
		Ref:  appliers.ObjectRef{Group: "batch", Version: "v1", Kind: "Job", Namespace: "case08", Name: "db-migrate"},
		File: "apps/platform/migrate.yaml:9",
		Err: fmt.Errorf("server dry run: %w", apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "db-migrate", field.ErrorList{
			field.Invalid(field.NewPath("spec", "template"), dump, "field is immutable"),
		})),
	}
	if len(job.Error()) < 3000 {
		t.Fatalf("fixture: the full text is %d bytes, want the server's dump", len(job.Error()))
	}
	want := "apps/platform/migrate.yaml:9: Job/case08/db-migrate: server dry run: invalid: spec.template: field is immutable"
	if got := appliers.SummarizeError(job); got != want {
		t.Errorf("SummarizeError =\n%q\nwant\n%q", got, want)
	}
	two := errors.Join(job, errors.New("apps/web/x.yaml:1: a\nsecond line"))
	got := appliers.SummarizeError(two)
	if !strings.HasPrefix(got, want+"; apps/web/x.yaml:1: a second line") || strings.Contains(got, "\n") {
		t.Errorf("joined: %q", got)
	}
	long := appliers.SummarizeError(errors.New(strings.Repeat("é", 1000)))
	if n := len([]rune(long)); n > 360 || !strings.HasSuffix(long, "…") {
		t.Errorf("a long error is %d characters (%q...), want at most 360 ending in …", n, long[:20])
	}
	port := apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, "web", field.ErrorList{
		field.Invalid(field.NewPath("spec", "ports").Index(0).Child("port"), 99999, "must be between 1 and 65535, inclusive"),
	})
	if got, want := appliers.SummarizeError(port), "invalid: spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive"; got != want {
		t.Errorf("a short echoed value: %q, want %q", got, want)
	}
}
