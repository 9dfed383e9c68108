// Package kustomize builds kustomize apps from a revision's files, as
// `kustomize build` does, with sigs.k8s.io/kustomize/api (krusty) and its
// built-in generators and transformers only: bases and overlays, patches
// (strategic merge and JSON 6902), components, images, replicas,
// namespace, name prefix and suffix, labels, configMapGenerator and
// secretGenerator with hash suffixes.
//
// # Input
//
// Input is only the revision's own files, copied into an in-memory file
// system (filesys.MakeFsInMemory): nothing outside the repository is read,
// nothing is fetched, no program is run. Load restrictions are kustomize's
// default (LoadRestrictionsRootOnly): a kustomization reads files only in
// and below its own directory; other directories come in as resources,
// components or bases, each a kustomization of its own.
//
// A remote base or file (a URL, a git repository such as
// "github.com/org/repo//dir?ref=v1", an http(s) file) is an error naming
// the kustomization file and the URL: Scan finds them before krusty runs,
// so krusty never clones or downloads. helmCharts (which needs the helm
// program) and plugins are errors for the same reason.
//
// # Output
//
// Objects in kustomize's output order (its "legacy" order is not applied:
// krusty's default, depth-first input order). kustomize's own errors are
// returned prefixed with the kustomization file they concern.
package kustomize

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"
)

// ErrRemote is wrapped by the error for a remote base or file.
var ErrRemote = errors.New("remote bases and files are not read (gitpace renders only the revision's own files; vendor it into the repository)")

// ErrUnsupported is wrapped by the error for a kustomization field that
// would run a program (helmCharts, generators/transformers plugins in
// Go or exec form are refused by krusty itself).
var ErrUnsupported = errors.New("not supported")

// FileNames are the names kustomize reads as a kustomization, in its order
// of preference (konfig.RecognizedKustomizationFileNames).
func FileNames() []string { return konfig.RecognizedKustomizationFileNames() }

// KustomizationFile returns the kustomization file of dir (a slash path
// relative to the root of files, "." for the root) and whether it has one.
func KustomizationFile(files map[string][]byte, dir string) (string, bool) {
	for _, n := range FileNames() {
		if _, ok := files[path.Join(dir, n)]; ok {
			return path.Join(dir, n), true
		}
	}
	return "", false
}

// Refs is what a kustomization and the kustomizations it reaches refer to.
type Refs struct {
	// Roots are the directories whose kustomizations the build reads: the
	// app's own and every base or component it reaches, sorted. Each
	// reads files only in and below itself (LoadRestrictionsRootOnly), so
	// the files below Roots are all a build can read.
	Roots []string
	// Used are the directories other than the app's own that its
	// kustomizations use as bases or components, sorted.
	Used []string
}

// Scan walks the kustomization in dir and those it reaches through
// resources, components and bases, and returns them, or an error naming a
// kustomization file: one that does not parse, one naming a remote base or
// file (wrapping ErrRemote) or helmCharts (ErrUnsupported). A resource
// that names nothing in files is left to krusty to report. Paths are
// slash paths relative to the root of files.
func Scan(files map[string][]byte, dir string) (Refs, error) {
	seen := map[string]bool{}
	var errs []error
	var walk func(d string)
	walk = func(d string) {
		if seen[d] {
			return
		}
		seen[d] = true
		file, ok := KustomizationFile(files, d)
		if !ok {
			return
		}
		k, err := parse(file, files[file])
		if err != nil {
			errs = append(errs, err)
			return
		}
		if u := remoteIn(k); u != "" {
			errs = append(errs, fmt.Errorf("%s: %s: %w", file, u, ErrRemote))
			return
		}
		if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 {
			errs = append(errs, fmt.Errorf("%s: helmCharts: %w (it runs the helm program); put the chart in its own directory as a Helm app", file, ErrUnsupported))
			return
		}
		for _, r := range slicesConcat(k.Resources, k.Components, k.Bases) {
			sub := path.Clean(path.Join(d, r))
			if isDir(files, sub) {
				walk(sub)
			}
		}
	}
	walk(dir)
	if len(errs) > 0 {
		return Refs{}, errors.Join(errs...)
	}
	var refs Refs
	for d := range seen {
		if _, ok := KustomizationFile(files, d); !ok {
			continue
		}
		refs.Roots = append(refs.Roots, d)
		if d != dir {
			refs.Used = append(refs.Used, d)
		}
	}
	sort.Strings(refs.Roots)
	sort.Strings(refs.Used)
	return refs, nil
}

func slicesConcat(ss ...[]string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

// parse reads a kustomization leniently, as kustomize does (unknown fields
// are kustomize's to judge when it builds).
func parse(file string, data []byte) (*types.Kustomization, error) {
	var k types.Kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &k, nil
}

// isDir reports whether some file lies below dir.
func isDir(files map[string][]byte, dir string) bool {
	if dir == "." {
		return len(files) > 0
	}
	prefix := dir + "/"
	for name := range files {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// remoteIn returns the first entry of k that kustomize would fetch: a
// resource, component or base that is a git URL (kustomize's
// git.NewRepoSpecFromURL accepts a scheme, "git::", a user@host SCP form
// or a github.com host), or any path field holding a URL.
func remoteIn(k *types.Kustomization) string {
	for _, r := range slicesConcat(k.Resources, k.Components, k.Bases) {
		if isRemote(r) {
			return r
		}
	}
	var paths []string
	paths = append(paths, k.Crds...)
	paths = append(paths, k.Configurations...)
	paths = append(paths, k.Generators...)
	paths = append(paths, k.Transformers...)
	paths = append(paths, k.Validators...)
	for _, p := range k.PatchesStrategicMerge {
		paths = append(paths, string(p)) // a file or an inline patch
	}
	for _, p := range k.Patches {
		paths = append(paths, p.Path)
	}
	for _, p := range k.PatchesJson6902 {
		paths = append(paths, p.Path)
	}
	for _, r := range k.Replacements {
		paths = append(paths, r.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		paths = append(paths, g.FileSources...)
		paths = append(paths, g.EnvSources...)
	}
	for _, g := range k.SecretGenerator {
		paths = append(paths, g.FileSources...)
		paths = append(paths, g.EnvSources...)
	}
	paths = append(paths, k.OpenAPI["path"])
	for _, p := range paths {
		if strings.Contains(p, "\n") {
			continue // an inline patch, not a path
		}
		// a file source may be "key=path"
		if _, v, ok := strings.Cut(p, "="); ok && strings.Contains(v, "://") {
			return v
		}
		if strings.Contains(p, "://") {
			return p
		}
	}
	return ""
}

func isRemote(r string) bool {
	l := strings.ToLower(r)
	if strings.Contains(l, "://") || strings.HasPrefix(l, "git::") || strings.HasPrefix(l, "github.com") {
		return true
	}
	// user@host:path (SCP form)
	if at := strings.Index(l, "@"); at > 0 && !strings.Contains(l[:at], "/") {
		return true
	}
	return false
}

// FS is an in-memory file system holding a revision's files below "/".
// It is read-only in use and may be shared by the builds of one revision.
type FS struct {
	fs filesys.FileSystem
}

// NewFS copies files (slash paths relative to the root) into a new FS.
func NewFS(files map[string][]byte) (*FS, error) {
	fs := filesys.MakeFsInMemory()
	for name, data := range files {
		if err := fs.WriteFile("/"+name, data); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return &FS{fs: fs}, nil
}

// krusty sets a process-wide OpenAPI schema per build (kyaml openapi), so
// builds run one at a time.
var buildMu sync.Mutex

// Object is one object of a build.
type Object struct {
	// Object is the object as decoded JSON (numbers as int64).
	Object map[string]interface{}
	// File is where the object comes from, a slash path relative to the
	// root of the FS: the resource file kustomize read it from (in a base
	// or component too), or, for an object a generator made, the
	// kustomization that configured it. "" when kustomize did not say.
	File string
	// Name is the object's name in File, before kustomize's transformers
	// (namePrefix, nameSuffix, a generator's hash suffix).
	Name string
}

// Build runs `kustomize build` on dir of fsys (a slash path relative to
// the root, "." for it) and returns the objects in krusty's output order,
// each with the file it comes from. Call Scan first: Build does not guard
// against remote bases. Errors are prefixed with the kustomization file.
//
// The origins are kustomize's own (buildMetadata: [originAnnotations],
// annotation config.kubernetes.io/origin): the root kustomization is
// built with originAnnotations added to its buildMetadata, and the
// annotation is removed from the objects again unless the kustomization
// asks for it itself, so the objects are those `kustomize build` prints.
func Build(fsys *FS, files map[string][]byte, dir string) ([]Object, error) {
	file, ok := KustomizationFile(files, dir)
	if !ok {
		return nil, fmt.Errorf("%s: no kustomization file (%s)", dir, strings.Join(FileNames(), ", "))
	}
	opts := krusty.MakeDefaultOptions()
	buildMu.Lock()
	rm, added, err := buildWithOrigins(fsys, opts, file, dir)
	buildMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.ReplaceAll(err.Error(), "'/", "'"))
	}
	var out []Object
	for _, r := range rm.Resources() {
		o := Object{Name: r.OrgId().Name}
		origin, err := r.GetOrigin()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, r.CurId(), err)
		}
		switch {
		case origin == nil || origin.Repo != "":
		case origin.Path != "":
			o.File = path.Join(dir, filepath.ToSlash(origin.Path))
		case origin.ConfiguredIn != "":
			o.File = path.Join(dir, filepath.ToSlash(origin.ConfiguredIn))
		}
		if added {
			if err := r.SetOrigin(nil); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, r.CurId(), err)
			}
		}
		j, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, r.CurId(), err)
		}
		if err := utiljson.Unmarshal(j, &o.Object); err != nil { // numbers as int64, as unstructured wants
			return nil, fmt.Errorf("%s: %s: %w", file, r.CurId(), err)
		}
		out = append(out, o)
	}
	return out, nil
}

// buildWithOrigins runs krusty on dir with originAnnotations in the
// buildMetadata of its kustomization file (added reports that Build
// added it; the file is restored afterwards). Call with buildMu held.
func buildWithOrigins(fsys *FS, opts *krusty.Options, file, dir string) (rm resmap.ResMap, added bool, err error) {
	orig, err := fsys.fs.ReadFile("/" + file)
	if err != nil {
		return nil, false, err
	}
	withOrigins, added, err := addOriginAnnotations(orig)
	if err != nil {
		return nil, false, err
	}
	if added {
		if err := fsys.fs.WriteFile("/"+file, withOrigins); err != nil {
			return nil, false, err
		}
		defer func() {
			if werr := fsys.fs.WriteFile("/"+file, orig); err == nil {
				err = werr
			}
		}()
	}
	rm, err = krusty.MakeKustomizer(opts).Run(fsys.fs, "/"+dir)
	return rm, added, err
}

// addOriginAnnotations returns the kustomization data with
// originAnnotations in its buildMetadata, and whether it was added (not
// there already). A file that does not parse is returned as it is, for
// krusty to report.
func addOriginAnnotations(data []byte) ([]byte, bool, error) {
	node, err := kyaml.Parse(string(data))
	if err != nil || node.YNode().Kind != kyaml.MappingNode {
		return data, false, nil
	}
	bm, err := node.Pipe(kyaml.LookupCreate(kyaml.SequenceNode, "buildMetadata"))
	if err != nil || bm == nil {
		return data, false, nil
	}
	for _, v := range bm.Content() {
		if v.Value == types.OriginAnnotations {
			return data, false, nil
		}
	}
	if err := bm.PipeE(kyaml.Append(kyaml.NewScalarRNode(types.OriginAnnotations).YNode())); err != nil {
		return nil, false, err
	}
	s, err := node.String()
	return []byte(s), true, err
}
