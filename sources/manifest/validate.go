package manifest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"

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

// typeProblem is a metadata field that must be a string but is not.
type typeProblem struct {
	path  []string    // e.g. ["metadata", "labels", "app"]
	value interface{} // as decoded from JSON: bool, int64, float64, map, slice
}

// checkStringFields finds the metadata fields Kubernetes requires to be
// strings (ObjectMeta: name, generateName, namespace, and the values of
// labels and annotations, which are map[string]string) that hold another
// type. YAML 1.1, which kubectl and gitpace read, types unquoted 0755, 1e3,
// yes, no, on, off, true and null as numbers, booleans and null, so
// `name: 0755` is the number 493. null counts as absent.
func checkStringFields(obj map[string]interface{}) []typeProblem {
	raw, ok := obj["metadata"]
	if !ok || raw == nil {
		return nil
	}
	meta, ok := raw.(map[string]interface{})
	if !ok {
		return []typeProblem{{path: []string{"metadata"}, value: raw}}
	}
	var out []typeProblem
	for _, f := range []string{"name", "generateName", "namespace"} {
		if v, ok := meta[f]; ok && v != nil {
			if _, isString := v.(string); !isString {
				out = append(out, typeProblem{path: []string{"metadata", f}, value: v})
			}
		}
	}
	for _, f := range []string{"labels", "annotations"} {
		v, ok := meta[f]
		if !ok || v == nil {
			continue
		}
		m, isMap := v.(map[string]interface{})
		if !isMap {
			out = append(out, typeProblem{path: []string{"metadata", f}, value: v})
			continue
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, isString := m[k].(string); !isString {
				out = append(out, typeProblem{path: []string{"metadata", f, k}, value: m[k]})
			}
		}
	}
	return out
}

// field names the problem's field as kubectl does: metadata.name,
// metadata.labels["app.kubernetes.io/name"].
func (tp typeProblem) field() string {
	if len(tp.path) == 3 {
		return fmt.Sprintf("%s.%s[%q]", tp.path[0], tp.path[1], tp.path[2])
	}
	return strings.Join(tp.path, ".")
}

// want is what the field must be.
func (tp typeProblem) want() string {
	if len(tp.path) == 1 {
		return "an object"
	}
	if len(tp.path) == 2 && (tp.path[1] == "labels" || tp.path[1] == "annotations") {
		return "a map of strings"
	}
	return "a string"
}

// describe says what is wrong; literal, when known, is the value as written
// in YAML.
func (tp typeProblem) describe(literal *string) string {
	kind, shown := typeName(tp.value)
	if literal != nil && tp.want() == "a string" && shown != "" {
		return fmt.Sprintf("%s must be a string, but YAML read %s as %s (%s): quote it, %q",
			tp.field(), *literal, kind, shown, *literal)
	}
	if shown != "" {
		return fmt.Sprintf("%s must be %s, got %s (%s)", tp.field(), tp.want(), kind, shown)
	}
	return fmt.Sprintf("%s must be %s, got %s", tp.field(), tp.want(), kind)
}

// typeName names a decoded JSON value's type and, for a scalar, shows it.
func typeName(v interface{}) (kind, shown string) {
	switch x := v.(type) {
	case bool:
		return "a boolean", strconv.FormatBool(x)
	case int64:
		return "a number", strconv.FormatInt(x, 10)
	case float64:
		return "a number", strconv.FormatFloat(x, 'g', -1, 64)
	case json.Number:
		return "a number", x.String()
	case map[string]interface{}:
		return "an object", ""
	case []interface{}:
		return "a list", ""
	case string:
		return "a string", strconv.Quote(x)
	}
	return fmt.Sprintf("%T", v), ""
}

// yamlScalar returns the scalar at path (mapping keys, or sequence indexes
// in decimal) in a YAML document, as written, and its 1-based line in src.
func yamlScalar(src []byte, path []string) (string, int, bool) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(src, &doc); err != nil {
		return "", 0, false
	}
	cur := &doc
	deref := func() {
		for cur != nil && (cur.Kind == yamlv3.DocumentNode || cur.Kind == yamlv3.AliasNode) {
			if cur.Kind == yamlv3.AliasNode {
				cur = cur.Alias
			} else if len(cur.Content) == 1 {
				cur = cur.Content[0]
			} else {
				cur = nil
			}
		}
	}
	for _, key := range path {
		deref()
		if cur == nil {
			return "", 0, false
		}
		var next *yamlv3.Node
		switch cur.Kind {
		case yamlv3.MappingNode:
			for i := 0; i+1 < len(cur.Content); i += 2 {
				if cur.Content[i].Value == key {
					next = cur.Content[i+1]
				}
			}
		case yamlv3.SequenceNode:
			if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(cur.Content) {
				next = cur.Content[i]
			}
		}
		cur = next
	}
	deref()
	if cur == nil || cur.Kind != yamlv3.ScalarNode {
		return "", 0, false
	}
	return cur.Value, cur.Line, true
}
