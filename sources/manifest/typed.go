package manifest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// conversionProblem is a field of a built-in kind whose value does not
// decode into its Go type.
type conversionProblem struct {
	path []any  // map keys (string) and list indexes (int), e.g. ["data", "password"]
	msg  string // the decoder's message, which never quotes the value
}

// field names the problem's field as the API server does:
// spec.template.spec.containers[0].resources.limits.cpu, data.password.
func (c conversionProblem) field() string {
	var b strings.Builder
	for i, p := range c.path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		case string:
			if i > 0 {
				b.WriteString(".")
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// yamlPath is the path as yamlScalar takes it (indexes in decimal).
func (c conversionProblem) yamlPath() []string {
	out := make([]string, len(c.path))
	for i, p := range c.path {
		out[i] = fmt.Sprint(p)
	}
	return out
}

// checkConversion converts obj, when its kind is one client-go's scheme
// knows (the built-in kinds of k8s.io/api), into its Go type, as the API
// server does with every object it receives before anything else
// (apimachinery's unstructured converter; the server answers a failed
// conversion with a 500, "failed to convert new object ... to proper
// version", which no retry cures). It finds the values no server takes:
// Secret data that is not base64, a quantity that is no quantity
// (cpu: lots), a number or int-or-string field holding a list or a
// boolean. nil when obj converts, or its kind is not built in (custom
// resources: the server validates them against their CRD's schema).
//
// The field is found by converting obj with one field kept at a time,
// descending into the field that still fails, down to a scalar or to a
// map or list that fails even when empty.
func checkConversion(obj *unstructured.Unstructured) *conversionProblem {
	gvk := obj.GroupVersionKind()
	if !scheme.Scheme.Recognizes(gvk) {
		return nil
	}
	convert := func(m map[string]any) error {
		typed, err := scheme.Scheme.New(gvk)
		if err != nil {
			return nil
		}
		return runtime.DefaultUnstructuredConverter.FromUnstructured(m, typed)
	}
	err := convert(obj.Object)
	if err == nil {
		return nil
	}
	var path []any
	// only(v) is obj with nothing but v at path, plus apiVersion and kind.
	only := func(v any) map[string]any {
		for i := len(path) - 1; i >= 0; i-- {
			if _, isIndex := path[i].(int); isIndex {
				v = []any{v}
			} else {
				v = map[string]any{path[i].(string): v}
			}
		}
		m := v.(map[string]any)
		m["apiVersion"], m["kind"] = obj.GetAPIVersion(), obj.GetKind()
		return m
	}
	// failing returns the child of node (by key or index) that fails on
	// its own, and its error; none when node, a map or a list, is of the
	// wrong type itself (an empty one fails too).
	failing := func(node any) (step, child any, cerr error) {
		switch node.(type) {
		case map[string]any:
			if len(path) > 0 && convert(only(map[string]any{})) != nil {
				return nil, nil, nil
			}
		case []any:
			if convert(only([]any{})) != nil {
				return nil, nil, nil
			}
		}
		try := func(s, c any) bool {
			path = append(path, s)
			defer func() { path = path[:len(path)-1] }()
			if e := convert(only(c)); e != nil {
				step, child, cerr = s, c, e
				return true
			}
			return false
		}
		switch n := node.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(n)) {
				if len(path) == 0 && (k == "apiVersion" || k == "kind") {
					continue
				}
				if try(k, n[k]) {
					return
				}
			}
		case []any:
			for i, it := range n {
				if try(i, it) {
					return
				}
			}
		}
		return nil, nil, nil
	}
	for node := any(obj.Object); ; {
		step, child, cerr := failing(node)
		if cerr == nil {
			break
		}
		path, node, err = append(path, step), child, cerr
	}
	return &conversionProblem{path: path, msg: strings.TrimPrefix(err.Error(), "error decoding from json: ")}
}
