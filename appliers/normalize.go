package appliers

import (
	"reflect"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

var nsGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// annotations the server or controllers write, which never count as drift.
var serverAnnotations = []string{
	"deployment.kubernetes.io/revision",
	"kubectl.kubernetes.io/last-applied-configuration",
}

// Normalize returns a copy of u without what the server owns: status,
// managed fields, resourceVersion, uid, generation, timestamps and
// controller-written annotations. Two objects that differ only there are the
// same desired state.
func Normalize(u *unstructured.Unstructured) *unstructured.Unstructured {
	if u == nil {
		return nil
	}
	c := u.DeepCopy()
	delete(c.Object, "status")
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	if ann := c.GetAnnotations(); ann != nil {
		for _, k := range serverAnnotations {
			delete(ann, k)
		}
		if len(ann) == 0 {
			unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
		} else {
			c.SetAnnotations(ann)
		}
	}
	return c
}

func equalObjects(a, b *unstructured.Unstructured) bool {
	return reflect.DeepEqual(a.Object, b.Object)
}

// UnifiedDiff renders live → desired as YAML in unified diff form, with
// object headers like `diff -u live/Deployment/ns/name git/...`. A Secret's
// values are masked (MaskSecrets): the diff says which keys are added,
// changed or removed, never a value.
func UnifiedDiff(ref ObjectRef, live, desired *unstructured.Unstructured) string {
	if IsSecret(ref) {
		live, desired = MaskSecrets(live, desired)
	}
	toLines := func(u *unstructured.Unstructured) []string {
		if u == nil {
			return nil
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return []string{err.Error()}
		}
		return difflib.SplitLines(string(b))
	}
	from := "live/" + ref.String()
	if live == nil {
		from = "/dev/null"
	}
	to := "git/" + ref.String()
	if desired == nil {
		to = "/dev/null"
	}
	s, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: toLines(live), B: toLines(desired), FromFile: from, ToFile: to, Context: 3,
	})
	return strings.TrimRight(s, "\n") + "\n"
}
