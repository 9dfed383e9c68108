// Package manifest turns a Snapshot into apps: the Kubernetes objects, BCS
// files and marker files of each app directory, parsed and validated.
//
// # Layout
//
// A directory is an app, named by its path relative to the source path
// ("web", "team-a/api"; "." for the root), and its content chooses its kind:
//   - Helm: it holds Chart.yaml. The app is `helm template` of the chart
//     (package sources/helm); nothing below it is an app of its own
//     (templates/, charts/ subcharts, crds/).
//   - Kustomize: it holds kustomization.yaml, kustomization.yml or
//     Kustomization. The app is `kustomize build` of it (package
//     sources/kustomize). A directory that another kustomization uses as a
//     base or component is not an app, and nor is a directory below a
//     kustomization that holds none itself (patches/, files of generators).
//   - Plain: it directly holds *.yaml, *.yml or *.json files (BCS v4 JSON
//     only here), outside any chart or kustomization directory. A directory
//     whose files are all values files of Helm apps is not an app.
//
// Directories are independent: "a/b" and "a/c" are two apps, and "a" is an
// app only if it holds manifests itself. Hidden files and directories (name
// starting with ".") and, at the root, the policy file gitpace.yaml are not
// read. Other files (README.md, ...) are ignored; a directory holding only
// files of other config tools (Jsonnet, CUE, ...) is reported by Unread.
//
// # Settings
//
// gitpace.yaml's apps: rules (package policies) give an app its settings:
// the rule with a path: naming it, else the first whose match: matches its
// name. namespace is set on namespaced objects that name none;
// createNamespace adds that Namespace; helm: sets the release name, values
// files and inline values of a Helm app. A path: rule declares an app
// discovery does not find, or several from one directory (name: tells them
// apart); a directory a path: rule names is not discovered on its own. When
// gitpace.yaml does not parse, apps load with no settings and no declared
// apps (the agent rejects such a revision whole).
//
// Marker files, which never make a directory an app on their own:
//   - PAUSE pauses the app in whose directory it is, and every app below that
//     directory: at the root it pauses every app. Its first non-empty line
//     is the reason. With several, the one nearest the root is reported.
//     (sources.FindPauses and Pauses.For; the whole rule is at sources.PauseFile.)
//   - PROMOTE in an app directory approves manual rollout cycles; see
//     sources.Promotion.
//
// # Files
//
// YAML files may hold several documents separated by "---" lines; JSON files
// hold one object. A List (kind "List" or any kind ending in "List", with an
// items array) is replaced by its items. JSON files whose apiVersion is "v4"
// are BCS deployment specs: they are not parsed here but handed on raw in
// App.BCS.
//
// Files are decoded first (package sources/textenc): UTF-8 with or without
// a byte order mark, UTF-16 with one; CRLF line ends are read as LF. A file
// that cannot be decoded is an ErrEncoding error.
//
// # Symlinks
//
// sources reads a symlink inside the repository as the file it points at.
// A symlink in an app directory that looks like a manifest but that sources
// could not follow (it leaves the repository, points at nothing, or loops;
// see sources.Skipped) is an ErrSymlink error for that app, naming the link
// and its target; nothing outside the repository is read.
//
// # All or nothing
//
// Each object needs apiVersion, kind and metadata.name, and no two objects of
// an app may share group, kind, namespace and name. Any problem in any file
// of an app sets App.Err (joined *Error values naming file, line and object)
// and leaves the app's Objects and BCS empty: an app is applied whole or not
// at all. Other apps are not affected.
package manifest

import (
	"fmt"

	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// App is one app directory of a snapshot.
type App struct {
	// Name is the directory relative to the source path; "." for the root.
	Name string
	// Dir is the directory relative to the repository root (the source path
	// joined with the app's directory): where a user finds the files.
	Dir string
	// Kind says how the objects were made: plain files, kustomize or Helm.
	Kind Kind
	// Objects are the app's Kubernetes objects in file order (files sorted by
	// name, then document order, then List item order). Empty when Err is set.
	Objects []*unstructured.Unstructured
	// Origins[i] says where Objects[i] came from: for a kustomize app its
	// kustomization file (Line 1, Doc the index in the build's output, Read
	// the file kustomize read it from), for a Helm app the template or
	// crds/ file (Line where the object's document starts in it,
	// helm.Object.Line; Doc the index in the rendered chart).
	Origins []Origin
	// Hooks are a Helm app's hooks (PreSync, then PostSync, each by
	// weight), rendered and validated but not in Objects: the agent runs
	// them around the apply of Objects (agent/hooks.go).
	Hooks []Hook
	// Notes say what rendering left out (skipped test hooks), one line each.
	Notes []string
	// BCS are the app's BCS v4 JSON files, unparsed. Empty when Err is set.
	BCS []BCSFile
	// Pause is set when a PAUSE marker applies to the app.
	Pause *Marker
	// Promote is the app's PROMOTE marker, if any.
	Promote *Promote
	// Skipped are the entries of the app's directory that sources did not
	// read (sources.Snapshot.Skipped: symlinks leaving the repository or
	// pointing at nothing, submodules), for reporting. Those that look like
	// manifests (*.yaml, *.yml, *.json) are also errors in Err.
	Skipped []sources.Skipped
	// Err, when not nil, lists every problem found in the app's files.
	Err error
}

// Origin locates an object in the repository.
type Origin struct {
	File string // relative to the repository root
	Line int    // 1-based line where the object's document starts (its first line that is not blank or a comment)
	Doc  int    // 0-based index of the document in the file, empty documents included
	Item int    // 0-based index in the document's List, -1 when not from a List
	// Read, when not "", is where messages place the object instead of
	// File:Line: for a kustomize app, the file kustomize read it from (a
	// resource of the kustomization, of a base or of a component; for an
	// object a generator made, the kustomization that configured it),
	// relative to the repository root, with ":line" of its document when
	// found ("apps/shop/overlays/staging/foobar.yaml:3").
	Read string
}

// Where is where messages place the object: Read, else "File:Line".
func (o Origin) Where() string {
	if o.Read != "" {
		return o.Read
	}
	return fmt.Sprintf("%s:%d", o.File, o.Line)
}

// BCSFile is a BCS v4 JSON file, routed on for the bcs package to parse.
type BCSFile struct {
	File string // relative to the repository root
	Kind string // the file's top-level "kind"
	Data []byte
}

// Marker is a PAUSE marker that applies to an app.
type Marker struct {
	Reason string // the file's trimmed text; may be empty
	Path   string // the marker file, relative to the repository root
}

// Promote is an app's PROMOTE marker.
type Promote struct {
	Rollout string // the rollout (new application name) it approves
	Cycles  int    // how many manual cycles it approves
	Path    string // the marker file, relative to the repository root
}

// Load returns the apps of a snapshot, sorted by name, with a
// process-wide Loader that renders Helm charts with Helm's default
// capabilities. Problems in an app's files are reported in that app's Err;
// Load itself does not fail.
func Load(snap *sources.Snapshot) []App { return defaultLoader.Load(snap) }

// Load returns the apps of a snapshot, sorted by name, rendering kustomize
// and Helm apps whose inputs changed since a recent Load. Problems in an
// app's files are reported in that app's Err; Load itself does not fail.
func (l *Loader) Load(snap *sources.Snapshot) []App {
	cfg, err := policies.ConfigFromFiles(snap.Files, snap.Path)
	if err != nil {
		cfg = nil
	}
	lay := newLayout(snap)
	l.docs.rotate()
	lay.docs = l.docs
	dirs := lay.discover(cfg)
	l.mu.Lock()
	l.loads++
	load := l.loads
	l.mu.Unlock()
	apps := make([]App, 0, len(dirs))
	for _, a := range dirs {
		apps = append(apps, lay.loadApp(a, func() rendered { return l.render(lay, a, load) }))
	}
	l.evict(load)
	return apps
}

// Unread returns the directories of snap that are no app and hold files
// of other config tools (Jsonnet, CUE, ...), as sources.Skipped entries of
// kind sources.SkippedDirectory, sorted by path: for reporting, once.
func Unread(snap *sources.Snapshot) []sources.Skipped {
	cfg, err := policies.ConfigFromFiles(snap.Files, snap.Path)
	if err != nil {
		cfg = nil
	}
	lay := newLayout(snap)
	return lay.unread(lay.discover(cfg))
}
