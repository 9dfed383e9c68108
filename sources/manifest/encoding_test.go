package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/textenc"
	"github.com/google/go-cmp/cmp"
)

// utf16Bytes encodes s as UTF-16 with a byte order mark, as PowerShell's
// `>` and iconv -t UTF-16 write it.
func utf16Bytes(s string, bigEndian bool) []byte {
	if bigEndian {
		return textenc.Encode(s, textenc.UTF16BE)
	}
	return textenc.Encode(s, textenc.UTF16LE)
}

var bom = []byte{0xEF, 0xBB, 0xBF}

func readCase(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "inputs", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadOne loads a snapshot of one app directory "app" holding files.
func loadOne(t *testing.T, files map[string][]byte) App {
	t.Helper()
	apps := Load(&sources.Snapshot{Path: "apps", Files: files})
	if len(apps) != 1 {
		t.Fatalf("want one app, got %v", names(apps))
	}
	return apps[0]
}

// Every encoding kubectl reads yields the same objects, at the same lines,
// as the plain UTF-8 file; multi-document YAML and Lists included.
func TestEncodingsReadAlike(t *testing.T) {
	const multi = "# two documents\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: shop\ndata:\n  k: |\n    line one\n    line two\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s\n    namespace: shop\n"
	const list = `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j","namespace":"shop"},"data":{"é":"ü"}}]}`
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	want := loadOne(t, map[string][]byte{"app/m.yaml": []byte(multi), "app/l.json": []byte(list)})
	if want.Err != nil || len(want.Objects) != 4 {
		t.Fatalf("plain files: %v, %d objects", want.Err, len(want.Objects))
	}
	for name, enc := range map[string]func(string) []byte{
		"UTF-8 BOM":         func(s string) []byte { return append(append([]byte{}, bom...), s...) },
		"UTF-8 CRLF":        func(s string) []byte { return []byte(crlf(s)) },
		"UTF-8 BOM CRLF":    func(s string) []byte { return append(append([]byte{}, bom...), crlf(s)...) },
		"UTF-16LE BOM":      func(s string) []byte { return utf16Bytes(s, false) },
		"UTF-16BE BOM":      func(s string) []byte { return utf16Bytes(s, true) },
		"UTF-16LE BOM CRLF": func(s string) []byte { return utf16Bytes(crlf(s), false) },
	} {
		t.Run(name, func(t *testing.T) {
			got := loadOne(t, map[string][]byte{"app/m.yaml": enc(multi), "app/l.json": enc(list)})
			if got.Err != nil {
				t.Fatal(got.Err)
			}
			if d := cmp.Diff(ids(want), ids(got)); d != "" {
				t.Errorf("objects (-plain +%s):\n%s", name, d)
			}
			if d := cmp.Diff(want.Objects, got.Objects); d != "" {
				t.Errorf("content (-plain +%s):\n%s", name, d)
			}
		})
	}
}

// Case 12's own files: the UTF-16LE re-save of stock.yaml yields all three
// objects (not the first only), the BOM+CRLF scripts.yaml both, the BOM JSON
// is read, and `name: 0755` is rejected with the quote hint and its line.
func TestCase12Files(t *testing.T) {
	v1 := map[string][]byte{
		"inventory/stock.yaml":    readCase(t, "case12/v1/apps/inventory/stock.yaml"),
		"inventory/scripts.yaml":  readCase(t, "case12/v1/apps/inventory/scripts.yaml"),
		"inventory/settings.json": readCase(t, "case12/v1/apps/inventory/settings.json"),
	}
	plain := loadOne(t, v1)
	if plain.Err != nil || len(plain.Objects) != 6 {
		t.Fatalf("v1: %v, %d objects", plain.Err, len(plain.Objects))
	}
	v2 := map[string][]byte{
		"inventory/stock.yaml":    readCase(t, "case12/v2/apps/inventory/stock.yaml"),
		"inventory/scripts.yaml":  readCase(t, "case12/v2/apps/inventory/scripts.yaml"),
		"inventory/settings.json": v1["inventory/settings.json"],
	}
	if !bytes.HasPrefix(v2["inventory/stock.yaml"], []byte{0xFF, 0xFE}) {
		t.Fatal("fixture v2 stock.yaml is not UTF-16LE")
	}
	got := loadOne(t, v2)
	if got.Err != nil {
		t.Fatal(got.Err)
	}
	if d := cmp.Diff(plain.Objects, got.Objects); d != "" {
		t.Errorf("v2 objects (-v1 +v2):\n%s", d)
	}
	v3 := map[string][]byte{
		"inventory/stock.yaml":    v1["inventory/stock.yaml"],
		"inventory/scripts.yaml":  v1["inventory/scripts.yaml"],
		"inventory/settings.json": readCase(t, "case12/v3/apps/inventory/settings.json"),
	}
	if got := loadOne(t, v3); got.Err != nil || len(got.Objects) != 6 {
		t.Errorf("v3 with BOM JSON: %v, %d objects", got.Err, len(got.Objects))
	}
	v3["inventory/names.yaml"] = readCase(t, "case12/v3/apps/inventory/names.yaml")
	got = loadOne(t, v3)
	const wantErr = `apps/inventory/names.yaml:5: ConfigMap/case12/<no name>: invalid object: metadata.name must be a string, but YAML read 0755 as a number (493): quote it, "0755"`
	if got.Err == nil || got.Err.Error() != wantErr || len(got.Objects) != 0 {
		t.Errorf("names.yaml: got %v (%d objects), want %s", got.Err, len(got.Objects), wantErr)
	}
}

// Values YAML types as non-strings where ObjectMeta needs strings are
// rejected with the literal, its line and the hint; JSON gets the type.
func TestMetadataStringFields(t *testing.T) {
	for _, tc := range []struct{ name, file, doc, want string }{
		{"namespace bool", "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: yes\n",
			`apps/app/a.yaml:5: ConfigMap/x: invalid object: metadata.namespace must be a string, but YAML read yes as a boolean (true): quote it, "yes"`},
		{"label float", "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    version: 1.10\n",
			`apps/app/a.yaml:6: ConfigMap/x: invalid object: metadata.labels["version"] must be a string, but YAML read 1.10 as a number (1.1): quote it, "1.10"`},
		{"annotation in List item", "a.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: x\n    annotations:\n      note: off\n",
			`apps/app/a.yaml:9: ConfigMap/x: invalid object: metadata.annotations["note"] must be a string, but YAML read off as a boolean (false): quote it, "off" (items[0])`},
		{"labels a list", "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a]\n",
			`apps/app/a.yaml:1: ConfigMap/x: invalid object: metadata.labels must be a map of strings, got a list`},
		{"JSON number", "a.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":493}}`,
			`apps/app/a.json:1: ConfigMap/<no name>: invalid object: metadata.name must be a string, got a number (493)`},
	} {
		t.Run(tc.name, func(t *testing.T) { invalidObject(t, tc.file, tc.doc, tc.want) })
	}
}

// invalidObject loads app/file holding doc and fails the test unless the
// app's error reads want, is ErrInvalidObject, and no object is loaded.
func invalidObject(t *testing.T, file, doc, want string) App {
	t.Helper()
	got := loadOne(t, map[string][]byte{"app/" + file: []byte(doc)})
	if got.Err == nil || got.Err.Error() != want {
		t.Errorf("got  %v\nwant %s", got.Err, want)
	}
	if !errors.Is(got.Err, ErrInvalidObject) || len(got.Objects) != 0 {
		t.Errorf("want ErrInvalidObject and no objects, got %v, %d objects", got.Err, len(got.Objects))
	}
	return got
}

// A file that cannot be decoded rejects its app, naming the file, the
// encoding and the problem; the other files of the app are not applied
// either.
func TestUndecodableFilesReject(t *testing.T) {
	good := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"UTF-16 odd length", append(utf16Bytes(string(good), false), 'x'),
			"apps/app/bad.yaml:5: encoding error: cannot decode as UTF-16LE: odd number of bytes (105) after the byte order mark: the last character is cut off (byte 106)"},
		{"unpaired surrogate", append(utf16Bytes("a: b\n", true), 0xD8, 0x00, 0x00, 0x41),
			"apps/app/bad.yaml:2: encoding error: cannot decode as UTF-16BE: unpaired surrogate 0xD800 (byte 12)"},
		{"Latin-1", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n"),
			"apps/app/bad.yaml:4: encoding error: cannot decode as UTF-8: invalid byte 0xE9 (not UTF-8; was the file saved as Latin-1 or another code page?) (byte 52)"},
		{"invalid after BOM", append(append([]byte{}, bom...), 0xC3, 0x28),
			"apps/app/bad.yaml:1: encoding error: cannot decode as UTF-8 with byte order mark: invalid byte 0xC3 (not UTF-8; was the file saved as Latin-1 or another code page?) (byte 3)"},
		{"UTF-16 without BOM", utf16Bytes(string(good), false)[2:],
			"apps/app/bad.yaml:1: encoding error: cannot decode as UTF-8: NUL bytes between the characters: this looks like UTF-16 without a byte order mark; save it as UTF-8, or as UTF-16 with a byte order mark (byte 0)"},
		{"UTF-32", append([]byte{0xFF, 0xFE, 0, 0}, 'a', 0, 0, 0),
			"apps/app/bad.yaml: encoding error: cannot decode as UTF-32: UTF-32 is not supported (kubectl does not read it either); save the file as UTF-8 (byte 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadOne(t, map[string][]byte{"app/good.yaml": good, "app/bad.yaml": tc.data})
			if got.Err == nil || got.Err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", got.Err, tc.want)
			}
			if !errors.Is(got.Err, ErrEncoding) || len(got.Objects) != 0 {
				t.Errorf("want ErrEncoding and no objects, got %v, %d objects", got.Err, len(got.Objects))
			}
		})
	}
}

// Document markers are split where YAML puts them; a document the YAML
// parser would read as several is an error, never read in part.
func TestYAMLNeverReadInPart(t *testing.T) {
	cm := func(n string) string { return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + n + "\n" }
	for _, tc := range []struct {
		name, data string
		want       int
	}{
		{"tab after marker", cm("a") + "---\t# next\n" + cm("b"), 2},
		{"marker with comment", cm("a") + "--- # next\n" + cm("b"), 2},
		{"document end then marker", cm("a") + "...\n---\n" + cm("b"), 2},
		{"four dashes are content", cm("a") + "data:\n  k: |\n    ----\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadOne(t, map[string][]byte{"app/a.yaml": []byte(tc.data)})
			if got.Err != nil || len(got.Objects) != tc.want {
				t.Errorf("got %v, %d objects; want %d", got.Err, len(got.Objects), tc.want)
			}
		})
	}
	// A directive after a document with no marker between: the YAML parser
	// sees two documents in what the splitter gave it as one.
	got := loadOne(t, map[string][]byte{"app/a.yaml": []byte(cm("a") + "...\n%YAML 1.1\n--- \n" + cm("b"))})
	if got.Err == nil && len(got.Objects) != 2 {
		t.Errorf("got %d objects and no error", len(got.Objects))
	}
}

// Values of built-in kinds that do not decode into their Go type (as the
// API server converts every object it receives, and answers a 500 that no
// retry cures) reject the app at load, naming the file, the line of the
// value, the object and the field, never the value (fresh-user report 6,
// fault 4). A custom resource is left to its CRD's schema.
func TestConversionErrorsReject(t *testing.T) {
	const secretValue = "MySecretNotB64!!value"
	for _, tc := range []struct{ name, file, doc, want string }{
		{"Secret data not base64", "a.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  user: YWRtaW4=\n  password: \"" + secretValue + "\"\n",
			`apps/app/a.yaml:7: Secret/db: invalid object: data.password: illegal base64 data at input byte 14`},
		{"quantity", "a.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: a\n      - name: b\n        image: b\n        resources:\n          limits:\n            cpu: lots\n",
			`apps/app/a.yaml:15: Deployment/web: invalid object: spec.template.spec.containers[1].resources.limits.cpu: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`},
		{"int-or-string a boolean, in a List", "a.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: web\n  spec:\n    strategy:\n      rollingUpdate:\n        maxSurge: true\n",
			`apps/app/a.yaml:11: Deployment/web: invalid object: spec.strategy.rollingUpdate.maxSurge: json: cannot unmarshal bool into Go value of type int32 (items[0])`},
		{"JSON port a list", "a.json", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"port":80,"targetPort":[1]}]}}`,
			`apps/app/a.json:1: Service/web: invalid object: spec.ports[0].targetPort: json: cannot unmarshal array into Go value of type int32`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := invalidObject(t, tc.file, tc.doc, tc.want); got.Err != nil && strings.Contains(got.Err.Error(), secretValue) {
				t.Errorf("the error prints the Secret's value: %v", got.Err)
			}
		})
	}
	for name, doc := range map[string]string{
		"custom resource": "apiVersion: example.com/v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  password: \"" + secretValue + "\"\n",
		"valid built-ins": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: YWRtaW4=\nstringData:\n  extra: \"" + secretValue + "\"\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n    targetPort: http\n---\n" +
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: a\n        resources: {limits: {cpu: 0.5, memory: 1Gi}}\n        unknownField: kept for the server to judge\n",
	} {
		if got := loadOne(t, map[string][]byte{"app/a.yaml": []byte(doc)}); got.Err != nil {
			t.Errorf("%s: %v", name, got.Err)
		}
	}
}
