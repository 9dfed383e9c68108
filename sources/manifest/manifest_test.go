package manifest

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/gitpace/gitpace/sources"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func snapshot(path string, files map[string]string) *sources.Snapshot {
	s := &sources.Snapshot{Path: path, Files: map[string][]byte{}}
	for n, c := range files {
		s.Files[n] = []byte(c)
	}
	return s
}

// appByName returns the named app or fails.
func appByName(t *testing.T, apps []App, name string) App {
	t.Helper()
	for _, a := range apps {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no app %q in %v", name, names(apps))
	return App{}
}

func names(apps []App) []string {
	var out []string
	for _, a := range apps {
		out = append(out, a.Name)
	}
	return out
}

// ids lists an app's objects as Kind/ns/name @ origin.
func ids(a App) []string {
	var out []string
	for i, o := range a.Objects {
		org := a.Origins[i]
		out = append(out, objectID(o)+" @ "+org.File+":"+itoa(org.Line)+" doc "+itoa(org.Doc)+" item "+itoa(org.Item))
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
spec:
  replicas: 3
`

func TestLayout(t *testing.T) {
	apps := Load(snapshot("clusters/prod", map[string]string{
		"gitpace.yaml":             "windows: []\n",
		"root.yaml":                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n",
		"a/b/deploy.yaml":          deployment,
		"a/c/cm.yml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
		"a/README.md":              "not an app\n",
		"only-markers/PAUSE":       "x\n",
		"only-markers/PROMOTE":     "rollout: r\ncycles: 1\n",
		".github/workflow.yaml":    "on: push\n",
		"a/b/.hidden.yaml":         "{{ not yaml",
		"a/b/docs/notes.txt":       "ignored\n",
		"empty/only-comments.yaml": "# nothing yet\n",
	}))
	if diff := cmp.Diff([]string{".", "a/b", "a/c", "empty"}, names(apps)); diff != "" {
		t.Fatalf("apps (-want +got):\n%s", diff)
	}
	for _, a := range apps {
		if a.Err != nil {
			t.Errorf("app %s: %v", a.Name, a.Err)
		}
	}
	root := appByName(t, apps, ".")
	if root.Dir != "clusters/prod" || len(root.Objects) != 1 || root.Objects[0].GetKind() != "Namespace" {
		t.Errorf("root app: dir %q objects %v", root.Dir, ids(root))
	}
	b := appByName(t, apps, "a/b")
	if b.Dir != "clusters/prod/a/b" || b.Origins[0].File != "clusters/prod/a/b/deploy.yaml" {
		t.Errorf("a/b: dir %q origins %v", b.Dir, b.Origins)
	}
	if n, _, _ := unstructured.NestedInt64(b.Objects[0].Object, "spec", "replicas"); n != 3 {
		t.Errorf("replicas = %d (integers must decode as int64)", n)
	}
	if got := appByName(t, apps, "empty"); len(got.Objects) != 0 || got.Err != nil {
		t.Errorf("empty app: %v %v", ids(got), got.Err)
	}
}

func TestMultiDocListAndJSON(t *testing.T) {
	apps := Load(snapshot("", map[string]string{
		"web/all.yaml": "# leading comment\n" + deployment + "---\n---\n" + // empty doc skipped
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: prod\n" +
			"--- # a list\n" +
			"apiVersion: v1\nkind: List\nitems:\n" +
			"- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: one\n" +
			"- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: two\n",
		"web/sa.json": `{"apiVersion": "v1", "kind": "ServiceAccountList", "items": [
  {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": "prod"}}]}`,
		"web/secret.json": `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}`,
	}))
	web := appByName(t, apps, "web")
	if web.Err != nil {
		t.Fatal(web.Err)
	}
	want := []string{
		"Deployment/prod/web @ web/all.yaml:2 doc 0 item -1",
		"Service/prod/web @ web/all.yaml:11 doc 2 item -1",
		"ConfigMap/one @ web/all.yaml:17 doc 3 item 0",
		"ConfigMap/two @ web/all.yaml:17 doc 3 item 1",
		"ServiceAccount/prod/web @ web/sa.json:1 doc 0 item 0",
		"Secret/s @ web/secret.json:1 doc 0 item -1",
	}
	if diff := cmp.Diff(want, ids(web)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}

func TestSplitYAML(t *testing.T) {
	docs := splitYAML([]byte("a: 1\n---\nb: 2\n--- c: 3\n...\n---\nd: 4"))
	var got []string
	for _, d := range docs {
		got = append(got, itoa(d.line)+"|"+string(d.data))
	}
	want := []string{"1|a: 1\n", "3|b: 2\n", "4|c: 3\n", "6|", "7|d: 4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("docs (-want +got):\n%s", diff)
	}
}

// appErr loads files as one app "x" and returns its error, checking that its
// objects were withheld.
func appErr(t *testing.T, files map[string]string) error {
	t.Helper()
	a := appByName(t, Load(snapshot("repo", files)), "x")
	if a.Err == nil {
		t.Fatal("want an error")
	}
	if a.Objects != nil || a.Origins != nil || a.BCS != nil {
		t.Errorf("an app with errors still has objects: %v", ids(a))
	}
	return a.Err
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		is    error
		want  string // the exact error text
	}{
		{
			name:  "yaml syntax in second document",
			files: map[string]string{"x/a.yaml": deployment + "---\napiVersion: v1\nkind: Service\nmetadata: name: web\n"},
			is:    ErrSyntax,
			want:  "repo/x/a.yaml:11: syntax error: mapping values are not allowed in this context",
		},
		{
			name:  "duplicate key",
			files: map[string]string{"x/a.yaml": "# c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n"},
			is:    ErrSyntax,
			want:  "repo/x/a.yaml:7: syntax error: unmarshal errors:\n  line 7: key \"name\" already set in map",
		},
		{
			name:  "json syntax",
			files: map[string]string{"x/a.json": "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Secret\"\n  \"metadata\": {}\n}"},
			is:    ErrSyntax,
			want:  "repo/x/a.json:4: syntax error: invalid character '\"' after object key:value pair",
		},
		{
			name:  "missing kind",
			files: map[string]string{"x/a.yaml": "apiVersion: v1\nmetadata:\n  name: web\n  namespace: prod\n"},
			is:    ErrInvalidObject,
			want:  "repo/x/a.yaml:1: <no kind>/prod/web: invalid object: missing kind",
		},
		{
			name:  "missing name in a list item",
			files: map[string]string{"x/a.yaml": "\n\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"},
			is:    ErrInvalidObject,
			want:  "repo/x/a.yaml:3: ConfigMap/<no name>: invalid object: missing metadata.name (items[0])",
		},
		{
			name:  "not an object",
			files: map[string]string{"x/a.yaml": "- a\n- b\n"},
			is:    ErrSyntax,
			want:  "repo/x/a.yaml:1: syntax error: document is not an object",
		},
		{
			name: "duplicate object across files",
			files: map[string]string{
				"x/a.yaml": deployment,
				"x/b.yaml": "# same object, other file\n" + deployment,
			},
			is:   ErrDuplicateObject,
			want: "repo/x/b.yaml:2: Deployment/prod/web: duplicate object: also defined at repo/x/a.yaml:1",
		},
		{
			name:  "bcs in yaml",
			files: map[string]string{"x/a.yaml": "apiVersion: v4\nkind: Deployment\nmetadata:\n  name: web\n"},
			is:    ErrInvalidObject,
			want:  "repo/x/a.yaml:1: Deployment/web: invalid object: apiVersion v4 (a BCS spec) is only read from .json files, not .yaml",
		},
		{
			name:  "bad promote",
			files: map[string]string{"x/a.yaml": deployment, "x/PROMOTE": "rollout: web-2\ncycle: 1\n"},
			want:  "repo/x/PROMOTE: PROMOTE: error unmarshaling JSON: while decoding JSON: json: unknown field \"cycle\"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := appErr(t, tt.files)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %q\nwant %q", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("%v is not an *Error", err)
			}
		})
	}
}

func TestErrorsStayInTheirApp(t *testing.T) {
	apps := Load(snapshot("", map[string]string{
		"bad/a.yaml":  "kind: [\n",
		"bad/b.yaml":  "apiVersion: v1\nkind: ConfigMap\n",
		"good/a.yaml": deployment,
	}))
	bad := appByName(t, apps, "bad")
	if n := len(strings.Split(bad.Err.Error(), "\n")); n != 2 {
		t.Errorf("want both problems reported, got:\n%v", bad.Err)
	}
	if good := appByName(t, apps, "good"); good.Err != nil || len(good.Objects) != 1 {
		t.Errorf("good app: %v %v", good.Err, ids(good))
	}
}

func TestMarkers(t *testing.T) {
	files := map[string]string{
		"web/d.yaml":       deployment,
		"web/PAUSE":        "\n  db migration \ncontact: ops\n", // the first non-empty line is the reason
		"web/PROMOTE":      "rollout: web-7f9c4\ncycles: 2\n",
		"team/api/d.yaml":  strings.ReplaceAll(deployment, "web", "api"),
		"team/PAUSE":       "team freeze",
		"team/jobs/d.yaml": strings.ReplaceAll(deployment, "web", "jobs"),
		"other/d.yaml":     strings.ReplaceAll(deployment, "web", "other"),
	}
	apps := Load(snapshot("gitops", files))
	web := appByName(t, apps, "web")
	if diff := cmp.Diff(&Marker{Reason: "db migration", Path: "gitops/web/PAUSE"}, web.Pause); diff != "" {
		t.Errorf("web pause (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&Promote{Rollout: "web-7f9c4", Cycles: 2, Path: "gitops/web/PROMOTE"}, web.Promote); diff != "" {
		t.Errorf("web promote (-want +got):\n%s", diff)
	}
	for _, name := range []string{"team/api", "team/jobs"} {
		if p := appByName(t, apps, name).Pause; p == nil || p.Path != "gitops/team/PAUSE" || p.Reason != "team freeze" {
			t.Errorf("%s pause = %+v, want the team/PAUSE marker", name, p)
		}
	}
	if p := appByName(t, apps, "other").Pause; p != nil {
		t.Errorf("other is paused: %+v", p)
	}

	// A PAUSE at the root pauses every app and wins over the app's own.
	files["PAUSE"] = "change freeze\n"
	for _, a := range Load(snapshot("gitops", files)) {
		if a.Pause == nil || a.Pause.Path != "gitops/PAUSE" || a.Pause.Reason != "change freeze" {
			t.Errorf("%s pause = %+v, want the root marker", a.Name, a.Pause)
		}
	}
}

func TestBCSRouted(t *testing.T) {
	bcs := `{"apiVersion": "v4", "kind": "Deployment", "spec": {"cycles": []}}`
	apps := Load(snapshot("", map[string]string{
		"web/bcs.json":    bcs,
		"web/svc.yaml":    "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
		"batch/only.json": bcs,
	}))
	web := appByName(t, apps, "web")
	if web.Err != nil {
		t.Fatal(web.Err)
	}
	want := []BCSFile{{File: "web/bcs.json", Kind: "Deployment", Data: []byte(bcs)}}
	if diff := cmp.Diff(want, web.BCS); diff != "" {
		t.Errorf("BCS (-want +got):\n%s", diff)
	}
	if len(web.Objects) != 1 || web.Objects[0].GetKind() != "Service" {
		t.Errorf("objects = %v", ids(web))
	}
	if b := appByName(t, apps, "batch"); len(b.BCS) != 1 || len(b.Objects) != 0 {
		t.Errorf("a directory of BCS files only is an app with BCS: %+v", b)
	}
}
