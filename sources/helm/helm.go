// Package helm renders Helm charts stored in git as `helm template` does,
// with the Helm Go SDK: the chart is loaded from the revision's own files
// in memory, nothing is downloaded, and no program is run.
//
// # Why Helm v4
//
// helm.sh/helm/v4 (v4.3.1) is built against k8s.io v0.37 (api,
// apimachinery, client-go, apiextensions-apiserver), the minor version
// gitpace uses, so adding it forces no k8s.io upgrade or downgrade; v3's
// latest (v3.22.0) trails by a minor version and keeps Helm 2 era code.
// Charts of apiVersion v1 and v2 render the same under both.
//
// # What is rendered
//
// As `helm template NAME DIR --namespace NS -f F... --set-json ...` (with
// --include-crds) renders it:
//   - values: the chart's values.yaml, then each values file, then the
//     inline values, merged in that order (Helm's coalescing); dependency
//     conditions, tags and import-values applied; values.schema.json checked.
//   - .Release: Name, Namespace, Revision 1, IsInstall true (helm template's).
//   - .Capabilities: Options.Capabilities when set (gitpace passes the
//     live cluster's version and served API versions), else Helm's
//     defaults for a client-only render.
//   - lookup returns an empty map, as in `helm template`.
//   - subcharts only from the chart's charts/ directory (directories or
//     .tgz archives); a dependency in Chart.yaml (or Chart.lock) that is not
//     there is an error naming it and its repository: gitpace never
//     downloads a chart (commit the output of `helm dependency build`).
//   - NOTES.txt is dropped. Hidden files (.helmignore and the like) are not
//     part of the chart; .helmignore patterns are not applied.
//
// # Order and hooks
//
// Result lists, in the order they are to be applied: CRDs from crds/
// (chart, then subcharts), then the PreSync hooks, then the other objects
// in Helm's install order (releaseutil.InstallOrder), then the PostSync
// hooks. Hooks are mapped as Argo CD maps them
// (argo-cd docs/user-guide/helm.md, "Helm Hooks"):
//
//	pre-install, pre-upgrade     → PreSync  (before the other objects)
//	post-install, post-upgrade   → PostSync (after them)
//	helm.sh/hook-weight          → the order within a phase (lowest first)
//	helm.sh/hook-delete-policy   → kept in Hook.DeletePolicies (Argo CD's
//	                               before-hook-creation, hook-succeeded, hook-failed)
//	test, test-success, test-failure, pre/post-delete, pre/post-rollback
//	                             → skipped (in Result.SkippedHooks)
//
// A hook with both a pre- and a post- event is PreSync. The phase is data:
// running a phase and waiting for its hooks is the caller's (gitpace's
// agent/hooks.go).
package helm

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	v2util "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// ErrDownload is wrapped by the error for a dependency that is not in the
// chart's charts/ directory.
var ErrDownload = errors.New("not vendored in charts/; gitpace does not download charts (run `helm dependency build` and commit charts/)")

// Capabilities are what .Capabilities says of the cluster.
type Capabilities struct {
	// KubeVersion is the cluster's version ("v1.33.2"); "" for Helm's default.
	KubeVersion string
	// APIVersions are the served "group/version" and "group/version/Kind"
	// strings (as `helm template --api-versions` takes them), added to
	// Helm's built-in set.
	APIVersions []string
}

// Options are one release's settings.
type Options struct {
	ReleaseName string // .Release.Name; required
	Namespace   string // .Release.Namespace; "" means "default", as in helm
	// Values are the values files' and inline values, merged in order
	// over the chart's values.yaml.
	Values       []map[string]interface{}
	Capabilities *Capabilities // nil: Helm's defaults
}

// Phase is when a hook runs, in Argo CD's terms.
type Phase string

// Phases gitpace maps Helm hooks to.
const (
	PreSync  Phase = "PreSync"
	PostSync Phase = "PostSync"
)

// Hook says what kind of Helm hook an object is.
type Hook struct {
	Phase          Phase    `json:"phase"`
	Events         []string `json:"events"`                   // helm.sh/hook, e.g. ["pre-install", "pre-upgrade"]
	Weight         int      `json:"weight"`                   // helm.sh/hook-weight
	DeletePolicies []string `json:"deletePolicies,omitempty"` // helm.sh/hook-delete-policy
}

// Object is one rendered object.
type Object struct {
	// Object is the decoded JSON object (numbers as int64 or float64).
	Object map[string]interface{}
	// File is the template (or crds/ file) it came from, relative to the
	// chart's directory: "templates/deploy.yaml",
	// "charts/redis/templates/svc.yaml", "crds/widget.yaml".
	File string
	// Line is the 1-based line of File where the object's document starts
	// (see docLines); 1 when it cannot be told.
	Line int
	// Hook is set for hooks.
	Hook *Hook
}

// Result is a rendered chart, in apply order (see the package doc).
type Result struct {
	Objects []Object
	// SkippedHooks name the hooks not rendered ("Pod/web-test (test)").
	SkippedHooks []string
}

// Template renders the chart whose files (slash paths relative to the
// chart's directory: "Chart.yaml", "templates/x.yaml",
// "charts/sub/Chart.yaml") are given. Errors name the chart file they
// concern where Helm says it ("templates/x.yaml:3:...").
func Template(files map[string][]byte, opts Options) (*Result, error) {
	var bf []*archive.BufferedFile
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if hidden(n) {
			continue
		}
		bf = append(bf, &archive.BufferedFile{Name: n, Data: files[n]})
	}
	ch, err := loader.LoadFiles(bf)
	if err != nil {
		return nil, err
	}
	if err := checkVendored(ch, ""); err != nil {
		return nil, err
	}
	vals := map[string]interface{}{}
	for _, v := range opts.Values {
		vals = loader.MergeMaps(vals, v)
	}
	if err := v2util.ProcessDependencies(ch, vals); err != nil {
		return nil, err
	}
	caps, err := capabilities(opts.Capabilities)
	if err != nil {
		return nil, err
	}
	if ch.Metadata.KubeVersion != "" && !v2util.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("Chart.yaml: kubeVersion %s does not admit Kubernetes %s", ch.Metadata.KubeVersion, caps.KubeVersion.Version)
	}
	ns := opts.Namespace
	if ns == "" {
		ns = "default"
	}
	rel := common.ReleaseOptions{Name: opts.ReleaseName, Namespace: ns, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, rel, caps, false)
	if err != nil {
		return nil, err
	}
	var e engine.Engine // no rest config: lookup returns empty maps
	rendered, err := e.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	for k := range rendered {
		if strings.HasSuffix(k, "NOTES.txt") {
			delete(rendered, k)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(rendered, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for _, crd := range ch.CRDObjects() {
		objs, err := decode(crd.File.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", chartRel(crd.Filename), err)
		}
		starts := docLines(string(crd.File.Data), string(crd.File.Data))
		for _, o := range objs {
			res.Objects = append(res.Objects, Object{Object: o.obj, File: chartRel(crd.Filename), Line: starts[o.doc].line})
		}
	}
	lines := newLineFinder(rendered, files)
	pre, post, err := res.hooks(hooks, lines)
	if err != nil {
		return nil, err
	}
	res.Objects = append(res.Objects, pre...)
	for _, m := range manifests {
		objs, err := decode([]byte(m.Content))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", chartRel(m.Name), err)
		}
		line := lines.line(m.Name, m.Content)
		for _, o := range objs {
			res.Objects = append(res.Objects, Object{Object: o.obj, File: chartRel(m.Name), Line: line})
		}
	}
	res.Objects = append(res.Objects, post...)
	return res, nil
}

// hooks maps Helm hooks to phases (see the package doc), sorted by weight
// (then, as Helm, by name) within each phase.
func (res *Result) hooks(hs []*release.Hook, lines *lineFinder) (pre, post []Object, err error) {
	sort.SliceStable(hs, func(i, j int) bool {
		if hs[i].Weight != hs[j].Weight {
			return hs[i].Weight < hs[j].Weight
		}
		return hs[i].Name < hs[j].Name
	})
	for _, h := range hs {
		var phase Phase
		var events []string
		for _, ev := range h.Events {
			events = append(events, string(ev))
			switch ev {
			case release.HookPreInstall, release.HookPreUpgrade:
				phase = PreSync
			case release.HookPostInstall, release.HookPostUpgrade:
				if phase == "" {
					phase = PostSync
				}
			}
		}
		if phase == "" {
			res.SkippedHooks = append(res.SkippedHooks, fmt.Sprintf("%s/%s (%s)", h.Kind, h.Name, strings.Join(events, ",")))
			continue
		}
		var policies []string
		for _, p := range h.DeletePolicies {
			policies = append(policies, string(p))
		}
		objs, err := decode([]byte(h.Manifest))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", chartRel(h.Path), err)
		}
		line := lines.line(h.Path, h.Manifest)
		for _, o := range objs {
			obj := Object{Object: o.obj, File: chartRel(h.Path), Line: line,
				Hook: &Hook{Phase: phase, Events: events, Weight: h.Weight, DeletePolicies: policies}}
			if phase == PreSync {
				pre = append(pre, obj)
			} else {
				post = append(post, obj)
			}
		}
	}
	return pre, post, nil
}

// checkVendored returns an error naming each dependency of ch (and of its
// subcharts) that is not loaded from charts/. where is the chart's path in
// the parent ("" for the top chart, "charts/sub/" below).
func checkVendored(ch *chart.Chart, where string) error {
	loaded := map[string]bool{}
	for _, d := range ch.Dependencies() {
		loaded[d.Name()] = true
	}
	var errs []error
	reqs := ch.Metadata.Dependencies
	file := where + "Chart.yaml"
	if len(reqs) == 0 && ch.Lock != nil {
		reqs, file = ch.Lock.Dependencies, where+"Chart.lock"
	}
	for _, r := range reqs {
		if r == nil || loaded[r.Name] {
			continue
		}
		repo := r.Repository
		if repo == "" {
			repo = "no repository"
		}
		errs = append(errs, fmt.Errorf("%s: dependency %q (version %q, %s) %w", file, r.Name, r.Version, repo, ErrDownload))
	}
	for _, d := range ch.Dependencies() {
		if err := checkVendored(d, where+"charts/"+d.Name()+"/"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func capabilities(c *Capabilities) (*common.Capabilities, error) {
	caps := common.DefaultCapabilities.Copy()
	if c == nil {
		return caps, nil
	}
	if c.KubeVersion != "" {
		kv, err := common.ParseKubeVersion(c.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("cluster version %q: %w", c.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	caps.APIVersions = append(append(common.VersionSet(nil), caps.APIVersions...), c.APIVersions...)
	return caps, nil
}

// chartRel turns Helm's "chart/templates/x.yaml" (or
// "chart/charts/sub/templates/x.yaml") into a path relative to the top
// chart's directory.
func chartRel(name string) string {
	name = path.Clean(strings.ReplaceAll(name, "\\", "/"))
	if _, rest, ok := strings.Cut(name, "/"); ok {
		return rest
	}
	return name
}

// decoded is an object of a manifest, and the index of its document among
// the manifest's non-empty ones (releaseutil.SplitManifests' order).
type decoded struct {
	obj map[string]interface{}
	doc int
}

// decode splits a rendered manifest into JSON objects; empty documents are
// dropped. Numbers decode as int64 or float64, as in unstructured objects.
func decode(data []byte) ([]decoded, error) {
	var out []decoded
	docs := releaseutil.SplitManifests(string(data))
	for i := range len(docs) {
		doc := docs[fmt.Sprintf("manifest-%d", i)]
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, err
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
			continue
		}
		var m map[string]interface{}
		if err := utiljson.Unmarshal(j, &m); err != nil {
			return nil, fmt.Errorf("not an object: %w", err)
		}
		out = append(out, decoded{obj: m, doc: i})
	}
	return out, nil
}

// docStart is a non-empty document of a file, as
// releaseutil.SplitManifests cuts it (text trimmed on the left), and the
// line where it starts.
type docStart struct {
	text string
	line int
}

// manifestSep is releaseutil.SplitManifests' document separator.
var manifestSep = regexp.MustCompile(`(?m)^---[ \t]*`)

// docLines cuts rendered, a template file's output, as
// releaseutil.SplitManifests does and returns its non-empty documents in
// order, each with the 1-based line of src (the template as written in
// the chart) where it starts: its first line that is not blank, a comment
// or a template action alone (manifest.Origin's line). The N-th document of
// the output (empty ones counted) is taken to be the N-th of the template:
// when the two counts differ (a range or include that writes separators,
// a condition around one), every document gets line 1, the file's start.
// For a file that is not templated (crds/), src is rendered.
func docLines(rendered, src string) []docStart {
	var out []docStart
	docs := manifestSep.Split(strings.TrimLeftFunc(rendered, unicode.IsSpace), -1)
	srcLines := docFirstLines(src)
	for i, d := range docs {
		if strings.TrimSpace(d) == "" {
			continue
		}
		line := 1
		if len(srcLines) == len(docs) {
			line = srcLines[i]
		}
		out = append(out, docStart{text: strings.TrimLeftFunc(d, unicode.IsSpace), line: line})
	}
	return out
}

// docFirstLines returns, for every document of src cut at manifestSep
// (empty ones included), the 1-based line where it starts (see docLines).
func docFirstLines(src string) []int {
	trimmed := strings.TrimLeftFunc(src, unicode.IsSpace)
	base := 1 + strings.Count(src[:len(src)-len(trimmed)], "\n")
	bounds := manifestSep.FindAllStringIndex(trimmed, -1)
	var out []int
	start := 0
	for i := 0; i <= len(bounds); i++ {
		end := len(trimmed)
		if i < len(bounds) {
			end = bounds[i][0]
		}
		out = append(out, base+strings.Count(trimmed[:start], "\n")+contentLine(trimmed[start:end]))
		if i < len(bounds) {
			start = bounds[i][1]
		}
	}
	return out
}

// contentLine is the 0-based index of doc's first line that is not blank,
// a comment or a template action alone ("{{- if .Values.x }}"); 0 when
// there is none. doc's first line is the rest of its separator's line.
func contentLine(doc string) int {
	for i, l := range strings.Split(doc, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "{{") && strings.HasSuffix(t, "}}") && strings.Count(t, "{{") == 1 {
			continue
		}
		return i
	}
	return 0
}

// lineFinder tells where a rendered manifest's document starts in its
// template (docLines), per template.
type lineFinder struct {
	rendered map[string]string
	files    map[string][]byte
	docs     map[string][]docStart
}

// newLineFinder finds lines in the rendered templates (keyed as Helm's
// engine keys them, "chart/templates/x.yaml") of the chart's files (keyed
// relative to the chart's directory).
func newLineFinder(rendered map[string]string, files map[string][]byte) *lineFinder {
	return &lineFinder{rendered: rendered, files: files, docs: map[string][]docStart{}}
}

// line returns the line of template name (as Helm names it) where
// document text (a releaseutil.SplitManifests piece) starts: the first
// document of that text not returned yet, so that equal documents get
// their own lines in order. 1 when it cannot be told (a template of a
// subchart archive, whose source is not among the files).
func (lf *lineFinder) line(name, text string) int {
	docs, ok := lf.docs[name]
	if !ok {
		src, ok := lf.files[chartRel(name)]
		if !ok {
			return 1
		}
		docs = docLines(lf.rendered[name], string(src))
		lf.docs[name] = docs
	}
	for i, d := range docs {
		if d.text == text {
			lf.docs[name] = slices.Delete(docs, i, i+1)
			return d.line
		}
	}
	return 1
}

func hidden(name string) bool {
	for _, p := range strings.Split(name, "/") {
		if strings.HasPrefix(p, ".") {
			return true
		}
	}
	return false
}
