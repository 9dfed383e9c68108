package manifest

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/helm"
	"github.com/gitpace/gitpace/sources/kustomize"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/render/golden")

// readTree reads the fixture repository dir into a Snapshot, as sources
// would (paths relative to dir, slash-separated).
func readTree(t testing.TB, dir string) *sources.Snapshot {
	t.Helper()
	snap := &sources.Snapshot{Files: map[string][]byte{}}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		snap.Files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// goldenApp is what a golden file holds for one app.
type goldenApp struct {
	Name    string         `json:"name"`
	Kind    Kind           `json:"kind"`
	Dir     string         `json:"dir"`
	Err     string         `json:"err,omitempty"`
	Notes   []string       `json:"notes,omitempty"`
	Objects []goldenObject `json:"objects,omitempty"`
	Hooks   []goldenObject `json:"hooks,omitempty"`
}

type goldenObject struct {
	Origin string                 `json:"origin"`
	Hook   *helm.Hook             `json:"hook,omitempty"`
	Object map[string]interface{} `json:"object"`
}

// TestRenderGolden loads the fixture repositories under testdata/render
// and compares every app (objects in apply order with their origins, hooks
// with their phase, errors) with testdata/render/golden/<repo>/<app>.yaml.
// go test ./sources/manifest -run TestRenderGolden -update rewrites them.
func TestRenderGolden(t *testing.T) {
	for _, repo := range []string{"shop", "errors"} {
		t.Run(repo, func(t *testing.T) {
			apps := NewLoader(nil).Load(readTree(t, filepath.Join("..", "..", "testdata", "render", repo)))
			goldenDir := filepath.Join("..", "..", "testdata", "render", "golden", repo)
			if *update {
				if err := os.RemoveAll(goldenDir); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range apps {
				g := goldenApp{Name: a.Name, Kind: a.Kind, Dir: a.Dir, Notes: a.Notes}
				if a.Err != nil {
					g.Err = a.Err.Error()
				}
				for i, o := range a.Objects {
					g.Objects = append(g.Objects, goldenObject{Origin: a.Origins[i].File, Object: o.Object})
				}
				for _, h := range a.Hooks {
					hk := h.Hook
					g.Hooks = append(g.Hooks, goldenObject{Origin: h.Origin.File, Hook: &hk, Object: h.Object.Object})
				}
				got, err := yaml.Marshal(g)
				if err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(goldenDir, strings.ReplaceAll(a.Name, "/", "_")+".yaml")
				if *update {
					if err := os.WriteFile(file, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("app %s: %v (run with -update)", a.Name, err)
				}
				if d := cmp.Diff(string(want), string(got)); d != "" {
					t.Errorf("app %s differs from %s (-want +got):\n%s", a.Name, file, d)
				}
			}
			if !*update {
				entries, _ := os.ReadDir(goldenDir)
				if len(entries) != len(apps) {
					t.Errorf("%d golden files in %s, %d apps %v", len(entries), goldenDir, len(apps), names(apps))
				}
			}
		})
	}
}

// TestRenderDiscovery: bases, components, subcharts, patch directories and
// values files are no apps; the chart is two apps (path rules), not one
// discovered app; the Jsonnet directory is reported once by Unread.
func TestRenderDiscovery(t *testing.T) {
	snap := readTree(t, filepath.Join("..", "..", "testdata", "render", "shop"))
	got := names(Load(snap))
	want := []string{"apps/shop/overlays/production", "apps/shop/overlays/staging", "podinfo-production", "podinfo-staging"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("apps (-want +got):\n%s", d)
	}
	unread := Unread(snap)
	if len(unread) != 1 || unread[0].Path != "jsonnet/grafana" || unread[0].Kind != sources.SkippedDirectory ||
		!strings.Contains(unread[0].Reason, "dashboards.jsonnet (Jsonnet)") {
		t.Errorf("Unread = %+v, want jsonnet/grafana holding dashboards.jsonnet", unread)
	}
}

// TestRenderErrors: a remote base names the kustomization file and the
// URL; a chart needing a download names the dependency and its repository;
// the plain app next to them loads.
func TestRenderErrors(t *testing.T) {
	apps := Load(readTree(t, filepath.Join("..", "..", "testdata", "render", "errors")))
	remote := appByName(t, apps, "remote-base")
	if !errors.Is(remote.Err, kustomize.ErrRemote) || !errors.Is(remote.Err, ErrRender) ||
		!strings.HasPrefix(remote.Err.Error(), "remote-base/kustomization.yaml: ") ||
		!strings.Contains(remote.Err.Error(), "github.com/stefanprodan/podinfo//kustomize?ref=6.5.0") {
		t.Errorf("remote-base: Err = %v", remote.Err)
	}
	chart := appByName(t, apps, "chart-download")
	if !errors.Is(chart.Err, helm.ErrDownload) || !strings.Contains(chart.Err.Error(), `dependency "postgresql" (version "15.5.0", https://charts.bitnami.com/bitnami)`) ||
		!strings.Contains(chart.Err.Error(), "chart-download/Chart.yaml") {
		t.Errorf("chart-download: Err = %v", chart.Err)
	}
	if p := appByName(t, apps, "plain"); p.Err != nil || len(p.Objects) != 1 {
		t.Errorf("plain: %d objects, Err %v", len(p.Objects), p.Err)
	}
}

// TestRenderCache: a second Load of an unchanged snapshot renders nothing;
// a change to one overlay renders that overlay alone; a change to the base
// renders both overlays; a values file below the chart's directory is an
// input of both releases of the chart (templates may read any chart file
// with .Files), a values file elsewhere only of the release naming it.
func TestRenderCache(t *testing.T) {
	snap := readTree(t, filepath.Join("..", "..", "testdata", "render", "shop"))
	l := NewLoader(nil)
	step := func(what string, want int) {
		t.Helper()
		before := l.Renders()
		l.Load(snap)
		if got := l.Renders() - before; got != want {
			t.Errorf("%s: %d renders, want %d", what, got, want)
		}
	}
	step("first load", 4)
	step("same snapshot", 0)
	snap.Files["apps/shop/overlays/staging/patches/resources.yaml"] = append(snap.Files["apps/shop/overlays/staging/patches/resources.yaml"], []byte("\n")...)
	step("staging patch edited", 1)
	snap.Files["apps/shop/base/app.properties"] = []byte("checkout.timeout=60s\n")
	step("base edited", 2)
	snap.Files["charts/podinfo/values-production.yaml"] = []byte("replicaCount: 5\n")
	step("values file in the chart edited", 2)
	snap.Files["README.md"] = []byte("docs")
	step("unrelated file", 0)
}

// TestRenderSettings: namespace goes to namespaced objects without one
// (not to cluster-scoped ones); createNamespace adds the Namespace first;
// a path rule naming an empty directory and helm settings on a kustomize
// app are errors naming the rule.
func TestRenderSettings(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
	const cr = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\n"
	apps := Load(snapshot("", map[string]string{
		"gitpace.yaml": `apps:
  - match: web
    namespace: web
    createNamespace: true
  - path: missing
    name: ghost
  - path: k
    name: k2
    helm:
      releaseName: x
`,
		"web/a.yaml":           cm + "---\n" + cr,
		"k/kustomization.yaml": "resources: [cm.yaml]\n",
		"k/cm.yaml":            cm,
	}))
	web := appByName(t, apps, "web")
	if d := cmp.Diff([]string{"Namespace/web", "ConfigMap/web/a", "ClusterRole/r"}, objIDs(web)); d != "" {
		t.Errorf("web (-want +got):\n%s", d)
	}
	if web.Origins[0].File != "gitpace.yaml apps[0]" {
		t.Errorf("Namespace origin = %q", web.Origins[0].File)
	}
	if a := appByName(t, apps, "ghost"); a.Err == nil || !strings.Contains(a.Err.Error(), `apps[1].path: "missing" holds no manifests`) {
		t.Errorf("ghost: Err = %v", a.Err)
	}
	if a := appByName(t, apps, "k2"); a.Err == nil || !strings.Contains(a.Err.Error(), "apps[2].helm: k is a kustomize app, not a Helm chart") {
		t.Errorf("k2: Err = %v", a.Err)
	}
	if got := names(apps); strings.Contains(strings.Join(got, ","), ",k,") {
		t.Errorf("k is declared by a path rule and must not be discovered too: %v", got)
	}
}

func objIDs(a App) []string {
	var out []string
	for _, o := range a.Objects {
		out = append(out, objectID(o))
	}
	return out
}

// TestRenderHelmLines: a Helm app's objects and hooks name the line where
// their document starts in the template as written (after comments and
// template actions), crds/ files too; a template whose output holds more
// documents than it writes (a range emitting separators) names line 1.
func TestRenderHelmLines(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"
	apps := Load(snapshot("", map[string]string{
		"web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"web/templates/two.yaml": "# two ConfigMaps\n" + strings.ReplaceAll(cm, "%s", "first") +
			"---\n{{- if true }}\n" + strings.ReplaceAll(cm, "%s", "second") + "{{- end }}\n",
		"web/templates/hooks.yaml": strings.ReplaceAll(cm, "%s", "plain") + "---\n\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hook\n  annotations:\n    helm.sh/hook: pre-install\n",
		"web/templates/loop.yaml": "{{- range list \"a\" \"b\" }}\n---\n" + strings.ReplaceAll(cm, "%s", "loop-{{ . }}") + "{{- end }}\n",
		"web/crds/crd.yaml": "---\n# a CRD\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n" +
			"spec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets}\n" +
			"  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n",
	}))
	web := appByName(t, apps, "web")
	if web.Err != nil {
		t.Fatal(web.Err)
	}
	got := map[string]string{}
	for i, o := range web.Objects {
		got[o.GetName()] = web.Origins[i].File + ":" + itoa(web.Origins[i].Line)
	}
	for _, h := range web.Hooks {
		got[h.Object.GetName()] = h.Origin.File + ":" + itoa(h.Origin.Line)
	}
	want := map[string]string{
		"widgets.example.com": "web/crds/crd.yaml:3",
		"first":               "web/templates/two.yaml:2",
		"second":              "web/templates/two.yaml:8",
		"plain":               "web/templates/hooks.yaml:1",
		"hook":                "web/templates/hooks.yaml:7",
		"loop-a":              "web/templates/loop.yaml:1",
		"loop-b":              "web/templates/loop.yaml:1",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("origins (-want +got):\n%s", d)
	}
}

// TestKustomizeOrigins (fresh-user report 6, fault 12a): each object of a
// kustomize app says which file kustomize read it from (Origin.Read, with
// the line of its document): a resource of a base or of the overlay, or
// the kustomization whose generator made it. File stays the
// kustomization (render output, content hashes), and kustomize's origin
// annotation is not in the objects unless the kustomization asks for it.
func TestKustomizeOrigins(t *testing.T) {
	app := appByName(t, Load(readTree(t, filepath.Join("..", "..", "testdata", "render", "shop"))), "apps/shop/overlays/production")
	got := map[string]string{}
	for i, o := range app.Objects {
		got[o.GetKind()] = app.Origins[i].Read
		if app.Origins[i].File != "apps/shop/overlays/production/kustomization.yaml" {
			t.Errorf("%s: File %s, want the kustomization", o.GetKind(), app.Origins[i].File)
		}
		if _, ok := o.GetAnnotations()["config.kubernetes.io/origin"]; ok {
			t.Errorf("%s carries kustomize's origin annotation", o.GetKind())
		}
	}
	want := map[string]string{
		"Deployment":          "apps/shop/base/deployment.yaml:1",
		"Service":             "apps/shop/base/service.yaml:1",
		"ConfigMap":           "apps/shop/base/kustomization.yaml",
		"PodDisruptionBudget": "apps/shop/overlays/production/pdb.yaml:1",
		"Secret":              "apps/shop/overlays/production/kustomization.yaml",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Read (-want +got):\n%s", d)
	}
}

// An invalid object of a kustomize app is reported at the file and line
// kustomize read it from, not at the kustomization; a kustomization that
// asks for origin annotations itself keeps them in its objects.
func TestKustomizeErrorsNameTheResourceFile(t *testing.T) {
	kust := "resources:\n- ../base\n- extra.yaml\n"
	files := map[string]string{
		"shop/base/kustomization.yaml":    "resources:\n- cm.yaml\n",
		"shop/base/cm.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"shop/staging/kustomization.yaml": kust,
		"shop/staging/extra.yaml": "# extra\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\n" +
			"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: MySecretNotB64!!value\n",
	}
	app := appByName(t, Load(snapshot("apps", files)), "shop/staging")
	want := "apps/shop/staging/extra.yaml:7: Secret/db: invalid object: data.password: illegal base64 data at input byte 14"
	if app.Err == nil || app.Err.Error() != want {
		t.Errorf("got  %v\nwant %s", app.Err, want)
	}

	files["shop/staging/extra.yaml"] = "# extra\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"
	files["shop/staging/kustomization.yaml"] = "buildMetadata: [originAnnotations]\n" + kust
	app = appByName(t, Load(snapshot("apps", files)), "shop/staging")
	if app.Err != nil || len(app.Objects) != 2 {
		t.Fatalf("%d objects, %v", len(app.Objects), app.Err)
	}
	for i, o := range app.Objects {
		if o.GetAnnotations()["config.kubernetes.io/origin"] == "" {
			t.Errorf("%s: the origin annotation the kustomization asks for is gone", o.GetName())
		}
		if w := map[string]string{"a": "apps/shop/base/cm.yaml:1", "b": "apps/shop/staging/extra.yaml:2"}[o.GetName()]; app.Origins[i].Read != w {
			t.Errorf("%s: Read %q, want %q", o.GetName(), app.Origins[i].Read, w)
		}
	}
}
