package appliers

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// TestRemovePath: field paths of managedFields address map keys, list
// items by key fields (env by name), by value (sets) and by index.
func TestRemovePath(t *testing.T) {
	obj := map[string]any{}
	if err := json.Unmarshal([]byte(`{"metadata":{"labels":{"app":"a","tier":"b"},"finalizers":["x","y"]},
		"spec":{"containers":[{"name":"c","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"args":["--trace"]}],"list":[1,2,3]}}`), &obj); err != nil {
		t.Fatal(err)
	}
	name := func(n string) *value.FieldList {
		return &value.FieldList{{Name: "name", Value: value.NewValueInterface(n)}}
	}
	y := value.NewValueInterface("y")
	one := 1
	for _, p := range []fieldpath.Path{
		fieldpath.MakePathOrDie("metadata", "labels", "tier"),
		fieldpath.MakePathOrDie("spec", "containers", name("c"), "env", name("B")),
		fieldpath.MakePathOrDie("spec", "containers", name("c"), "args"),
		{{FieldName: strPtr("metadata")}, {FieldName: strPtr("finalizers")}, {Value: &y}},
		{{FieldName: strPtr("spec")}, {FieldName: strPtr("list")}, {Index: &one}},
	} {
		var ok bool
		if obj, ok = removePath(obj, p); !ok {
			t.Errorf("%s not removed", p)
		}
	}
	if _, ok := removePath(obj, fieldpath.MakePathOrDie("spec", "containers", name("nope"), "env")); ok {
		t.Error("removed under a list item that does not exist")
	}
	got, _ := json.Marshal(obj)
	want := `{"metadata":{"finalizers":["x"],"labels":{"app":"a"}},"spec":{"containers":[{"env":[{"name":"A","value":"1"}],"name":"c"}],"list":[1,3]}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestWithDataOnly: stringData is merged into data as base64, winning over
// data for the same key; other objects are untouched.
func TestWithDataOnly(t *testing.T) {
	s := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"data": map[string]any{"A": "b2xk", "B": "Yg=="}, "stringData": map[string]any{"A": "new", "C": "c"}}}
	got := withDataOnly(s)
	if _, ok := got.Object["stringData"]; ok {
		t.Error("stringData kept")
	}
	b, _ := json.Marshal(got.Object["data"])
	if string(b) != `{"A":"bmV3","B":"Yg==","C":"Yw=="}` {
		t.Errorf("data = %s", b)
	}
	if _, ok := s.Object["stringData"]; !ok {
		t.Error("the input was changed")
	}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "stringData": map[string]any{"A": "x"}}}
	if withDataOnly(cm) != cm {
		t.Error("a ConfigMap was converted")
	}
}
