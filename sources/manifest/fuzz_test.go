package manifest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	yamlv2 "go.yaml.in/yaml/v2"

	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/textenc"
)

// addFiles adds every file matching the globs (relative to the repository
// root) to the fuzz corpus, with asJSON set from its extension.
func addFiles(f *testing.F, globs ...string) {
	f.Helper()
	for _, g := range globs {
		names, err := filepath.Glob(filepath.Join("..", "..", g))
		if err != nil || len(names) == 0 {
			f.Fatalf("no seed files match %s", g)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, strings.HasSuffix(n, ".json"))
		}
	}
}

// FuzzLoad feeds raw bytes, as a committed .yaml or .json file, through
// Load, the entry the agent uses. Invariants: no panic or hang; an app with
// an error carries no objects; an app without one holds exactly one object
// per item the YAML parser (go.yaml.in/yaml/v2, run over the whole decoded
// file as one stream) finds: one per non-empty document, or one per item of
// a List; and the same file saved as UTF-16 (LE and BE, with a byte order
// mark) or with a UTF-8 byte order mark reads the same.
func FuzzLoad(f *testing.F) {
	addFiles(f, "testdata/seed/*", "testdata/demo/*", "testdata/bcs/*.json", "testdata/inputs/case12/*/apps/inventory/*")
	f.Add([]byte("a: 1\n---\t# x\nb: 2\n...\n--- c\n"), false)
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: 0755}\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		file := "app/f.yaml"
		if asJSON {
			file = "app/f.json"
		}
		app := load(t, file, data)
		if app.Err != nil {
			if len(app.Objects) != 0 || len(app.BCS) != 0 || len(app.Origins) != 0 {
				t.Fatalf("app with error %v carries %d objects, %d BCS files", app.Err, len(app.Objects), len(app.BCS))
			}
			return
		}
		if want, ok := streamItems(data); ok && want != len(app.Objects)+len(app.BCS) {
			t.Fatalf("read %d objects and %d BCS files; the YAML parser finds %d items in the file", len(app.Objects), len(app.BCS), want)
		}
		if len(app.Objects) != len(app.Origins) {
			t.Fatalf("%d objects, %d origins", len(app.Objects), len(app.Origins))
		}
		if !utf8.Valid(data) || bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}) || bytes.IndexByte(data, 0) >= 0 {
			return // not text (YAML and JSON refuse NUL): no other encoding to compare
		}
		for name, enc := range map[string][]byte{
			"UTF-8 BOM": append([]byte{0xEF, 0xBB, 0xBF}, data...),
			"UTF-16LE":  utf16Bytes(string(data), false),
			"UTF-16BE":  utf16Bytes(string(data), true),
		} {
			other := load(t, file, enc)
			if other.Err != nil {
				t.Fatalf("%s: %v (the UTF-8 file reads without error)", name, other.Err)
			}
			if d := cmp.Diff(app.Objects, other.Objects); d != "" {
				t.Fatalf("%s reads differently (-UTF-8 +%s):\n%s", name, name, d)
			}
		}
	})
}

func load(t *testing.T, file string, data []byte) App {
	apps := Load(&sources.Snapshot{Path: "apps", Files: map[string][]byte{file: data, "app/PAUSE": data}})
	if len(apps) != 1 {
		t.Fatalf("%d apps from one file", len(apps))
	}
	return apps[0]
}

// streamItems counts the objects the YAML parser finds in a file: false
// when it cannot parse it as a whole (the invariant is then not checked).
func streamItems(data []byte) (int, bool) {
	text, _, err := textenc.ToUTF8(data)
	if err != nil {
		return 0, false
	}
	dec := yamlv2.NewDecoder(bytes.NewReader(text))
	n := 0
	for {
		var v interface{}
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return n, true
		}
		if err != nil {
			return 0, false
		}
		if v == nil {
			continue
		}
		m, ok := v.(map[interface{}]interface{})
		if !ok {
			return 0, false
		}
		kind, _ := m["kind"].(string)
		if items, isList := m["items"].([]interface{}); isList && strings.HasSuffix(kind, "List") {
			n += len(items)
		} else {
			n++
		}
	}
}
