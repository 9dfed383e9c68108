package manifest

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// validate checks the fields every object needs.
func validate(obj *unstructured.Unstructured, ext string) error {
	var missing []string
	if obj.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if obj.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if obj.GetName() == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrInvalidObject, strings.Join(missing, ", "))
	}
	if obj.GetAPIVersion() == "v4" {
		return fmt.Errorf("%w: apiVersion v4 (a BCS spec) is only read from .json files, not %s", ErrInvalidObject, ext)
	}
	if _, err := schema.ParseGroupVersion(obj.GetAPIVersion()); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidObject, err)
	}
	return nil
}

// objectKey identifies an object within an app.
type objectKey struct {
	group, kind, namespace, name string
}

func keyOf(obj *unstructured.Unstructured) objectKey {
	gvk := obj.GroupVersionKind()
	return objectKey{group: gvk.Group, kind: gvk.Kind, namespace: obj.GetNamespace(), name: obj.GetName()}
}

// objectID names an object as "Kind/namespace/name", or "Kind/name" without
// a namespace; "" when it has neither kind nor name.
func objectID(obj *unstructured.Unstructured) string {
	kind, name := obj.GetKind(), obj.GetName()
	if kind == "" && name == "" {
		return ""
	}
	if kind == "" {
		kind = "<no kind>"
	}
	if name == "" {
		name = "<no name>"
	}
	if ns := obj.GetNamespace(); ns != "" {
		return kind + "/" + ns + "/" + name
	}
	return kind + "/" + name
}
