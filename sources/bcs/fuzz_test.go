package bcs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/sources/textenc"
)

// FuzzParse feeds raw bytes to Parse as a committed BCS v4 JSON file.
// Invariants: no panic or hang; an error is returned xor a deployment; a
// file that parses reads the same with a UTF-8 byte order mark and as
// UTF-16LE with one (case 12's BCS variant).
func FuzzParse(f *testing.F) {
	for _, g := range []string{"../../testdata/seed/*.json", "../../testdata/bcs/*.json"} {
		names, _ := filepath.Glob(g)
		if len(names) == 0 {
			f.Fatalf("no seed files match %s", g)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("apps/bcs/test.json", data)
		if (d == nil) == (err == nil) {
			t.Fatalf("Parse returned %v and %v", d, err)
		}
		if err != nil || !utf8.Valid(data) || len(data) > 0 && data[0] == 0xEF || bytes.IndexByte(data, 0) >= 0 {
			return
		}
		want, _ := json.Marshal(d)
		for name, enc := range map[string][]byte{"UTF-8 BOM": append([]byte{0xEF, 0xBB, 0xBF}, data...), "UTF-16LE": textenc.Encode(string(data), textenc.UTF16LE)} {
			other, err := Parse("apps/bcs/test.json", enc)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, _ := json.Marshal(other)
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Fatalf("%s reads differently:\n%s", name, diff)
			}
		}
	})
}
