package manifest

import (
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Print writes the objects of apps as `kustomize build` and `helm
// template` do: format "yaml" is one YAML document per object, each
// preceded by "# Source: <origin>" (and the app's name when it changes);
// "json" is one v1 List of every object. mask, when not nil, replaces
// each object before it is printed (the CLI masks Secret values with it).
// Apps with Err print nothing; the caller reports them.
func Print(w io.Writer, format string, apps []App, mask func(*unstructured.Unstructured) *unstructured.Unstructured) error {
	if mask == nil {
		mask = func(o *unstructured.Unstructured) *unstructured.Unstructured { return o }
	}
	switch format {
	case "json":
		items := []interface{}{}
		for _, a := range apps {
			for _, o := range a.Objects {
				items = append(items, mask(o).Object)
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]interface{}{"apiVersion": "v1", "kind": "List", "items": items})
	case "yaml", "":
		for _, a := range apps {
			if a.Err != nil {
				continue
			}
			fmt.Fprintf(w, "# app %s (%s, %s)\n", a.Name, a.Kind, a.Dir)
			for i, o := range a.Objects {
				out, err := yaml.Marshal(mask(o).Object)
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "---\n# Source: %s\n%s", a.Origins[i].File, out); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return fmt.Errorf("output format %q: want yaml or json", format)
}
