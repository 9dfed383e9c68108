package bcs

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestTemplateHash(t *testing.T) {
	base := mustParse(t, seed(t))
	// Pinned: a change of the hash input would make every running
	// deployment look changed to the rollout engine after an upgrade.
	if got, want := base.TemplateHash(), "06c4f1d4f938db0b"; got != want {
		t.Errorf("TemplateHash() of the seed = %s, want %s", got, want)
	}

	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(seed(t))); err != nil {
		t.Fatal(err)
	}
	same := map[string]string{
		"reformatted":        compact.String(),
		"key case":           edited(t, seed(t), edit{`"IntersectionItem"`, `"intersectionItem"`}, edit{`"unionData"`, `"UnionData"`}),
		"instance":           edited(t, seed(t), edit{`"instance": 2,`, `"instance": 5,`}),
		"strategy":           edited(t, seed(t), edit{`"maxSurge": 1,`, `"maxSurge": 2,`}, edit{`"upgradeDuration": 60`, `"upgradeDuration": 5`}, edit{`"rollingOrder": "CreateFirst"`, `"rollingOrder": "DeleteFirst"`}),
		"selector":           edited(t, seed(t), edit{`"instance": 2,`, `"instance": 2, "selector": {"podname": "x"},`}),
		"annotations":        edited(t, seed(t), edit{"\"namespace\": \"defaultGroup\"\n    },", "\"namespace\": \"defaultGroup\", \"annotations\": {\"a\": \"b\"}\n    },"}),
		"empty vs absent":    edited(t, seed(t), edit{`"volumes": [],`, ``}),
		"misspelled batch":   edited(t, seed(t), edit{`"maxUnavailable": 1,`, `"maxUnavilable": 1,`}),
		"namespace as-cased": edited(t, seed(t), edit{`"namespace": "defaultGroup"`, `"namespace": "DefaultGroup"`}),
	}
	for name, doc := range same {
		if got := mustParse(t, doc).TemplateHash(); got != base.TemplateHash() {
			t.Errorf("%s: TemplateHash() = %s, want the seed's %s (pods unchanged)", name, got, base.TemplateHash())
		}
	}

	differ := map[string]string{
		"image":           edited(t, seed(t), edit{`v1.1.0`, `v1.1.1`}),
		"args":            edited(t, seed(t), edit{`"SimpleHTTPServer"`, `"SimpleHTTPServer", "8888"`}),
		"port":            edited(t, seed(t), edit{`"containerPort": 8000`, `"containerPort": 8888`}),
		"cpu":             edited(t, seed(t), edit{`"cpu": "0.5"`, `"cpu": "1"`}),
		"constraint":      edited(t, seed(t), edit{`"name": "InnerIP"`, `"name": "hostname"`}),
		"pod labels":      edited(t, seed(t), edit{`"appname": "test"`, `"appname": "test2"`}),
		"pod annotations": edited(t, seed(t), edit{"\"name\": \"test\",\n                \"namespace\"", "\"name\": \"test\", \"annotations\": {\"a\": \"b\"},\n                \"namespace\""}),
		"killPolicy":      edited(t, seed(t), edit{`"kind": "deployment",`, `"kind": "deployment", "killPolicy": {"gracePeriod": 5},`}),
		"restartPolicy":   edited(t, seed(t), edit{`"kind": "deployment",`, `"kind": "deployment", "restartPolicy": {"policy": "Always"},`}),
		"namespace":       edited(t, seed(t), edit{`"namespace": "defaultGroup"`, `"namespace": "prod"`}),
		"network":         edited(t, seed(t), edit{`"networkMode": "BRIDGE"`, `"networkMode": "HOST"`}),
	}
	seen := map[string]string{base.TemplateHash(): "seed"}
	for name, doc := range differ {
		h := mustParse(t, doc).TemplateHash()
		if prev, dup := seen[h]; dup {
			t.Errorf("%s: TemplateHash() = %s, same as %s; want a new hash (pods changed)", name, h, prev)
		}
		seen[h] = name
	}
}

func mustParse(t *testing.T, doc string) *Deployment {
	t.Helper()
	d, err := Parse(testFile, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
