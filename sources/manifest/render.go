package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources/helm"
	"github.com/gitpace/gitpace/sources/kustomize"
	"github.com/gitpace/gitpace/sources/textenc"
)

// Kind says how an app's objects are made from its directory.
type Kind string

// App kinds, chosen by the directory's content.
const (
	// Plain: the directory's *.yaml, *.yml and *.json files are the objects.
	Plain Kind = "plain"
	// Kustomize: the directory holds kustomization.yaml, kustomization.yml
	// or Kustomization; the objects are `kustomize build` of it.
	Kustomize Kind = "kustomize"
	// Helm: the directory holds Chart.yaml; the objects are `helm template`
	// of it.
	Helm Kind = "helm"
)

// ErrRender: a kustomize build or Helm template failed, or an app setting
// of gitpace.yaml does not fit the app.
var ErrRender = errors.New("render error")

// Hook is a Helm hook of a Helm app, rendered but not part of App.Objects:
// the agent runs hooks around the apply of the app's objects (agent/hooks.go;
// package sources/helm maps Helm's events to the phases).
type Hook struct {
	Object *unstructured.Unstructured
	Origin Origin
	helm.Hook
}

// Loader loads apps, rendering kustomize and Helm apps, and keeps the
// rendered objects of each app keyed by everything its render reads (its
// files and those of the bases it reaches, its values files, its settings,
// the capabilities): a revision that changes one app of many renders that
// one app again. A Loader is safe for concurrent use; its zero value is
// not: use NewLoader.
type Loader struct {
	// caps returns what Helm's .Capabilities says of the cluster; nil, or
	// a nil result, means Helm's defaults.
	caps func() *helm.Capabilities

	mu    sync.Mutex
	loads int                    // Load calls so far
	cache map[string]*cacheEntry // by cache key
	// Renders counts renders (cache misses), for tests and benchmarks.
	renders int
	// docs are the YAML documents of plain apps converted by recent Loads.
	docs *docCache
}

type cacheEntry struct {
	res      rendered
	lastLoad int
}

// keepLoads is how many Load calls an unused cache entry survives: the
// agent loads the newest revision, and at times the one in force, so
// entries of the last few revisions stay.
const keepLoads = 4

// NewLoader returns a Loader. caps, when not nil, is asked on each render
// of a Helm app for the cluster's capabilities (it should cache them).
func NewLoader(caps func() *helm.Capabilities) *Loader {
	return &Loader{caps: caps, cache: map[string]*cacheEntry{}, docs: newDocCache()}
}

// Renders returns how many renders the Loader ran (renders its cache did
// not answer).
func (l *Loader) Renders() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renders
}

var defaultLoader = NewLoader(nil)

// rendered is one app's render: objects with origins, hooks, or an error.
type rendered struct {
	objects []*unstructured.Unstructured
	origins []Origin
	hooks   []Hook
	notes   []string
	errs    []error
}

func (r rendered) copy() rendered {
	out := rendered{origins: append([]Origin(nil), r.origins...), notes: r.notes, errs: r.errs}
	for _, o := range r.objects {
		out.objects = append(out.objects, o.DeepCopy())
	}
	for _, h := range r.hooks {
		h.Object = h.Object.DeepCopy()
		out.hooks = append(out.hooks, h)
	}
	return out
}

// render returns the render of app a, from the cache when its key is
// known.
func (l *Loader) render(lay *layout, a *appDir, load int) rendered {
	var caps *helm.Capabilities
	if a.kind == Helm && l.caps != nil {
		caps = l.caps()
	}
	key := lay.cacheKey(a, caps)
	l.mu.Lock()
	if e, ok := l.cache[key]; ok {
		e.lastLoad = load
		l.mu.Unlock()
		return e.res.copy()
	}
	l.renders++
	l.mu.Unlock()
	var res rendered
	switch a.kind {
	case Kustomize:
		res = lay.renderKustomize(a)
	case Helm:
		res = lay.renderHelm(a, caps)
	}
	l.mu.Lock()
	l.cache[key] = &cacheEntry{res: res, lastLoad: load}
	l.mu.Unlock()
	return res.copy()
}

// evict drops the entries no Load of the last keepLoads used.
func (l *Loader) evict(load int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.cache {
		if load-e.lastLoad >= keepLoads {
			delete(l.cache, k)
		}
	}
}

// cacheKey hashes everything a's render reads.
func (lay *layout) cacheKey(a *appDir, caps *helm.Capabilities) string {
	h := sha256.New()
	settings, _ := json.Marshal(a.settings)
	capsJSON, _ := json.Marshal(caps)
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", a.kind, a.dir, a.name, settings, capsJSON)
	for _, name := range lay.inputs(a) {
		sum := sha256.Sum256(lay.snap.Files[name])
		fmt.Fprintf(h, "%s\x00%x\x00", name, sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// inputs are the files a's render may read, sorted: those below each
// kustomization root it reaches (kustomize's root-only load restriction
// keeps reads there), or below the chart's directory plus its values files.
func (lay *layout) inputs(a *appDir) []string {
	roots := a.roots
	if len(roots) == 0 {
		roots = []string{a.dir}
	}
	var out []string
	for name := range lay.snap.Files {
		for _, r := range roots {
			if below(name, r) {
				out = append(out, name)
				break
			}
		}
	}
	for _, v := range a.valuesFiles {
		if _, ok := lay.snap.Files[v]; ok && !below(v, a.dir) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// below reports whether file name lies in or below dir.
func below(name, dir string) bool {
	return dir == "." || strings.HasPrefix(name, dir+"/")
}

// renderKustomize builds a kustomize app on an in-memory file system
// holding only its inputs (the files its cache key hashes).
func (lay *layout) renderKustomize(a *appDir) rendered {
	file, _ := kustomize.KustomizationFile(lay.snap.Files, a.dir)
	origin := lay.repoPath(file)
	inputs := map[string][]byte{}
	for _, name := range lay.inputs(a) {
		inputs[name] = lay.snap.Files[name]
	}
	fs, err := kustomize.NewFS(inputs)
	if err != nil {
		return rendered{errs: []error{&Error{File: origin, Err: fmt.Errorf("%w: %w", ErrRender, err)}}}
	}
	objs, err := kustomize.Build(fs, inputs, a.dir)
	if err != nil {
		return rendered{errs: []error{&Error{File: origin, Err: fmt.Errorf("%w: %s", ErrRender, strings.TrimPrefix(err.Error(), file+": "))}}}
	}
	var p parsed
	for i, ko := range objs {
		obj := &unstructured.Unstructured{Object: ko.Object}
		o := Origin{File: origin, Line: 1, Doc: i, Item: -1}
		if ko.File != "" {
			o.Read = lay.repoPath(ko.File)
			if line := documentLine(inputs[ko.File], obj.GetKind(), ko.Name); line > 0 {
				o.Read += ":" + strconv.Itoa(line)
			}
		}
		p.add(origin, obj, o, nil)
	}
	return rendered{objects: p.objects, origins: p.origins, errs: p.errs}
}

// documentLine is the line (the first that is not blank or a comment) of
// the YAML document of data that holds the object of kind and name; 0
// when none does (or several do).
func documentLine(data []byte, kind, name string) int {
	text, _, err := textenc.ToUTF8(data)
	if err != nil {
		return 0
	}
	line := 0
	for _, d := range splitYAML(text) {
		var id struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal(d.data, &id) != nil || id.Kind != kind || id.Metadata.Name != name {
			continue
		}
		if line != 0 {
			return 0
		}
		line = d.firstContentLine()
	}
	return line
}

func (lay *layout) renderHelm(a *appDir, caps *helm.Capabilities) rendered {
	chartFile := lay.repoPath(path.Join(a.dir, "Chart.yaml"))
	fail := func(file string, err error) rendered {
		return rendered{errs: []error{&Error{File: file, Err: fmt.Errorf("%w: %w", ErrRender, err)}}}
	}
	files := map[string][]byte{}
	for name, data := range lay.snap.Files {
		if below(name, a.dir) {
			rel := name
			if a.dir != "." {
				rel = strings.TrimPrefix(name, a.dir+"/")
			}
			files[rel] = data
		}
	}
	opts := helm.Options{ReleaseName: a.releaseName(), Namespace: a.settings.Namespace, Capabilities: caps}
	for _, v := range a.valuesFiles {
		data, ok := lay.snap.Files[v]
		if !ok {
			return fail(lay.repoPath(policies.ConfigFile), fmt.Errorf("%s: helm.valuesFiles: %s: no such file", a.rule, lay.repoPath(v)))
		}
		var m map[string]interface{}
		if err := yaml.Unmarshal(data, &m); err != nil {
			return fail(lay.repoPath(v), err)
		}
		opts.Values = append(opts.Values, m)
	}
	if h := a.settings.Helm; h != nil && h.Values != nil {
		opts.Values = append(opts.Values, h.Values)
	}
	res, err := helm.Template(files, opts)
	if err != nil {
		return fail(chartFile, trimFile(err, "Chart.yaml"))
	}
	var p parsed
	var out rendered
	for i, o := range res.Objects {
		file := lay.repoPath(path.Join(a.dir, o.File))
		origin := Origin{File: file, Line: max(o.Line, 1), Doc: i, Item: -1}
		obj := &unstructured.Unstructured{Object: o.Object}
		if o.Hook != nil {
			var hp parsed
			hp.add(file, obj, origin, nil)
			p.errs = append(p.errs, hp.errs...)
			if len(hp.objects) == 1 {
				out.hooks = append(out.hooks, Hook{Object: obj, Origin: origin, Hook: *o.Hook})
			}
			continue
		}
		p.add(file, obj, origin, nil)
	}
	for _, s := range res.SkippedHooks {
		out.notes = append(out.notes, "hook "+s+" skipped (test, delete and rollback hooks are not run, as in Argo CD)")
	}
	out.objects, out.origins, out.errs = p.objects, p.origins, p.errs
	return out
}

// applySettings gives namespaced objects without a namespace the app's
// namespace, and adds its Namespace when createNamespace asks for it.
// Whether a kind is namespaced is read from kustomize's built-in
// Kubernetes schema (kyaml openapi.IsNamespaceScoped); kinds it does not
// know are namespaced unless the app defines them as a cluster-scoped CRD.
func applySettings(app *App, s policies.AppSettings, rule string) {
	if s.Namespace == "" {
		return
	}
	clusterCRDs := map[string]bool{}
	for _, o := range app.Objects {
		if o.GetKind() == "CustomResourceDefinition" {
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			if scope == "Cluster" {
				clusterCRDs[group+"/"+kind] = true
			}
		}
	}
	declared := false
	objs := app.Objects
	for _, h := range app.Hooks {
		objs = append(objs[:len(objs):len(objs)], h.Object)
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if gvk.Group == "" && gvk.Kind == "Namespace" && o.GetName() == s.Namespace {
			declared = true
		}
		if o.GetNamespace() != "" || clusterCRDs[gvk.Group+"/"+gvk.Kind] {
			continue
		}
		if namespaced, known := openapi.IsNamespaceScoped(kyaml.TypeMeta{APIVersion: o.GetAPIVersion(), Kind: gvk.Kind}); known && !namespaced {
			continue
		}
		o.SetNamespace(s.Namespace)
	}
	if s.CreateNamespace && !declared {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(s.Namespace)
		app.Objects = append([]*unstructured.Unstructured{ns}, app.Objects...)
		app.Origins = append([]Origin{{File: rule, Line: 1, Item: -1}}, app.Origins...)
	}
}
