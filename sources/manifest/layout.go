package manifest

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/gitpace/gitpace/sources"
)

// layout is a snapshot's files sorted into app directories and markers.
// Directories are slash paths relative to the source path, "." for the root.
type layout struct {
	snap     *sources.Snapshot
	appDirs  map[string][]string // dir -> its manifest files (full relative names)
	pauses   sources.Pauses
	promotes map[string][]byte            // dir -> PROMOTE content
	skipped  map[string][]sources.Skipped // dir -> entries sources did not read
	charts   map[string]bool              // dirs holding Chart.yaml
	kusts    map[string]bool              // dirs holding a kustomization file
	others   map[string][]string          // dir -> files gitpace reads in no way (README.md, x.jsonnet, ...)
	docs     *docCache                    // YAML documents converted by recent Loads (nil: none)
}

func newLayout(snap *sources.Snapshot) *layout {
	l := &layout{snap: snap, appDirs: map[string][]string{}, pauses: sources.FindPauses(snap.Files), promotes: map[string][]byte{},
		skipped: map[string][]sources.Skipped{},
		charts:  map[string]bool{}, kusts: map[string]bool{}, others: map[string][]string{}}
	for name, data := range snap.Files {
		if hidden(name) {
			continue
		}
		dir, base := path.Dir(name), path.Base(name)
		switch {
		case dir == "." && (base == sources.PolicyFile || base == sources.WavePromoteFile):
		case base == sources.PauseFile: // FindPauses
		case base == sources.PromoteFile:
			l.promotes[dir] = data
		case isManifest(base):
			l.appDirs[dir] = append(l.appDirs[dir], name)
		default:
			l.others[dir] = append(l.others[dir], name)
		}
		switch {
		case base == "Chart.yaml":
			l.charts[dir] = true
		case isKustomization(base):
			l.kusts[dir] = true
		}
	}
	for _, sk := range snap.Skipped {
		rel := strings.TrimPrefix(sk.Path, snap.Path+"/")
		if snap.Path == "" {
			rel = sk.Path
		}
		if hidden(rel) {
			continue
		}
		dir := path.Dir(rel)
		l.skipped[dir] = append(l.skipped[dir], sk)
		if unreadManifest(sk) {
			// The directory is an app even if this link was its only
			// manifest: its objects must not vanish without a word.
			if _, ok := l.appDirs[dir]; !ok {
				l.appDirs[dir] = nil
			}
		}
	}
	return l
}

// unreadManifest reports whether a skipped entry is a symlink gitpace would
// have read as a manifest had it resolved inside the repository.
func unreadManifest(sk sources.Skipped) bool {
	return sk.Kind == sources.SkippedSymlink && isManifest(path.Base(sk.Path))
}

func (l *layout) sortedAppDirs() []string {
	dirs := make([]string, 0, len(l.appDirs))
	for d := range l.appDirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}

// repoPath turns a path relative to the source path into one relative to the
// repository root.
func (l *layout) repoPath(rel string) string {
	return path.Join(l.snap.Path, rel)
}

// loadApp parses and validates app a; render makes the objects of a
// kustomize or Helm app.
func (l *layout) loadApp(a *appDir, render func() rendered) App {
	dir := a.dir
	app := App{Name: a.name, Dir: l.repoPath(dir), Kind: a.kind, Pause: l.pauseFor(dir), Skipped: l.skipped[dir]}
	var errs []error
	if a.err != nil {
		errs = append(errs, a.err)
	}
	for _, sk := range l.skipped[dir] {
		if unreadManifest(sk) {
			errs = append(errs, &Error{File: sk.Path, Err: fmt.Errorf("%s: %w", sk.Reason, ErrSymlink)})
		}
	}
	if data, ok := l.promotes[dir]; ok {
		file := l.repoPath(path.Join(dir, sources.PromoteFile))
		p, err := sources.ParsePromotion(data)
		if err != nil {
			errs = append(errs, &Error{File: file, Err: err})
		} else {
			app.Promote = &Promote{Rollout: p.Rollout, Cycles: p.Cycles, Path: file}
		}
	}
	var files []string
	if a.kind == Plain {
		files = l.appDirs[dir]
		sort.Strings(files)
	}
	var results []parsed
	for _, name := range files {
		results = append(results, parseFile(l.repoPath(name), l.snap.Files[name], l.docs))
	}
	if a.kind != Plain && a.err == nil {
		r := render()
		results = append(results, parsed{objects: r.objects, origins: r.origins, errs: r.errs})
		app.Hooks, app.Notes = r.hooks, r.notes
	}
	seen := map[objectKey]Origin{}
	for _, res := range results {
		errs = append(errs, res.errs...)
		app.BCS = append(app.BCS, res.bcs...)
		for i, obj := range res.objects {
			origin := res.origins[i]
			key := keyOf(obj)
			if first, dup := seen[key]; dup {
				errs = append(errs, &Error{File: origin.File, Line: origin.Line, Object: objectID(obj),
					Err: duplicateErr(first)})
				continue
			}
			seen[key] = origin
			app.Objects = append(app.Objects, obj)
			app.Origins = append(app.Origins, origin)
		}
	}
	if len(errs) == 0 {
		applySettings(&app, a.settings, a.rule)
	}
	if len(errs) > 0 {
		app.Err = errors.Join(errs...)
		app.Objects, app.Origins, app.BCS, app.Hooks = nil, nil, nil, nil
	}
	return app
}

// pauseFor returns the PAUSE marker that pauses the app in dir (Pauses.For).
func (l *layout) pauseFor(dir string) *Marker {
	if file, reason, ok := l.pauses.For(dir); ok {
		return &Marker{Reason: reason, Path: l.repoPath(file)}
	}
	return nil
}

// ancestors returns ".", then each directory down to dir itself.
func ancestors(dir string) []string { return sources.AncestorDirs(dir) }

// hidden reports whether any element of a slash path starts with ".".
func hidden(name string) bool { return sources.HiddenPath(name) }

func isManifest(base string) bool {
	switch strings.ToLower(path.Ext(base)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}
