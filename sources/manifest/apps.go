package manifest

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/kustomize"
)

// appDir is one app found in a snapshot, before it is loaded.
type appDir struct {
	name     string // the app's name
	dir      string // its directory, relative to the source path
	kind     Kind
	settings policies.AppSettings
	// rule names the gitpace.yaml rule giving the settings
	// ("gitpace.yaml apps[2]"), "" when none does.
	rule        string
	roots       []string // a kustomize app's kustomization roots
	valuesFiles []string // a Helm app's values files, relative to the source path
	err         error    // a problem found before loading
}

// releaseName is a Helm app's release name: helm.releaseName, else the
// app's name with "/" replaced by "-".
func (a *appDir) releaseName() string {
	if h := a.settings.Helm; h != nil && h.ReleaseName != "" {
		return h.ReleaseName
	}
	if a.name == "." {
		return "root"
	}
	return strings.ReplaceAll(a.name, "/", "-")
}

func isKustomization(base string) bool {
	for _, n := range kustomize.FileNames() {
		if base == n {
			return true
		}
	}
	return false
}

// kindOf says what kind of app dir would be.
func (l *layout) kindOf(dir string) (Kind, bool) {
	switch {
	case l.charts[dir]:
		return Helm, true
	case l.kusts[dir]:
		return Kustomize, true
	case l.appDirs[dir] != nil:
		return Plain, true
	}
	_, isApp := l.appDirs[dir] // an app whose only manifest is an unread symlink
	return Plain, isApp
}

// discover finds the apps of the snapshot (see the package doc, Layout):
// Helm charts (not their subcharts), kustomizations that no other
// kustomization uses, directories of plain manifests not inside either,
// and the apps gitpace.yaml declares with path rules. cfg may be nil.
func (l *layout) discover(cfg *policies.Config) []*appDir {
	var charts []string
	for d := range l.charts {
		charts = append(charts, d)
	}
	sort.Strings(charts)
	var topCharts []string
	for _, d := range charts {
		if len(topCharts) > 0 && below(d, topCharts[len(topCharts)-1]) && d != topCharts[len(topCharts)-1] {
			continue // a subchart, or a chart inside a chart
		}
		topCharts = append(topCharts, d)
	}
	inChart := func(d string) bool {
		for _, c := range topCharts {
			if d == c || below(d, c) {
				return true
			}
		}
		return false
	}
	var kusts []string
	for d := range l.kusts {
		if !inChart(d) {
			kusts = append(kusts, d)
		}
	}
	sort.Strings(kusts)
	inKust := func(d string) bool {
		for _, k := range kusts {
			if d == k || below(d, k) {
				return true
			}
		}
		return false
	}
	scans := map[string]kustomize.Refs{}
	scanErrs := map[string]error{}
	used := map[string]bool{}
	for _, d := range kusts {
		refs, err := kustomize.Scan(l.snap.Files, d)
		if err != nil {
			scanErrs[d] = err
			continue
		}
		scans[d] = refs
		for _, u := range refs.Used {
			used[u] = true
		}
	}
	declared := map[string]bool{}
	if cfg != nil {
		for _, r := range cfg.Declared() {
			declared[r.Path] = true
		}
	}
	var out []*appDir
	add := func(name, dir string, kind Kind) *appDir {
		a := &appDir{name: name, dir: dir, kind: kind}
		switch kind {
		case Kustomize:
			a.roots = scans[dir].Roots
			if err := scanErrs[dir]; err != nil {
				file, _ := kustomize.KustomizationFile(l.snap.Files, dir)
				a.err = &Error{File: l.repoPath(file), Err: fmt.Errorf("%w: %w", ErrRender, trimFile(err, file))}
			}
		case Helm:
			a.roots = []string{dir}
		}
		out = append(out, a)
		return a
	}
	for _, d := range topCharts {
		if !declared[d] {
			add(d, d, Helm)
		}
	}
	for _, d := range kusts {
		if !used[d] && !declared[d] {
			add(d, d, Kustomize)
		}
	}
	for _, d := range l.sortedAppDirs() {
		if !inChart(d) && !inKust(d) && !used[d] && !declared[d] {
			add(d, d, Plain)
		}
	}
	names := map[string]bool{}
	for _, a := range out {
		names[a.name] = true
	}
	if cfg != nil {
		for i, r := range cfg.Apps {
			if r.Path == "" {
				continue
			}
			kind, ok := l.kindOf(r.Path)
			a := add(r.AppName(), r.Path, kind)
			a.rule = fmt.Sprintf("%s apps[%d]", l.repoPath(policies.ConfigFile), i)
			switch {
			case !ok:
				a.err = &Error{File: l.repoPath(policies.ConfigFile), Err: fmt.Errorf("%w: apps[%d].path: %q holds no manifests, kustomization or Chart.yaml", ErrRender, i, r.Path)}
			case names[a.name]:
				a.err = &Error{File: l.repoPath(policies.ConfigFile), Err: fmt.Errorf("%w: apps[%d].name: %q is also the name of a discovered app (directory %s); name the declared app otherwise", ErrRender, i, a.name, a.name)}
			}
			names[a.name] = true
		}
	}
	valuesUsed := map[string]bool{}
	for _, a := range out {
		l.settle(a, cfg)
		for _, v := range a.valuesFiles {
			valuesUsed[v] = true
		}
	}
	// A directory of plain files that are all values files of Helm apps
	// is not an app.
	kept := out[:0]
	for _, a := range out {
		if a.kind == Plain && a.rule == "" && allIn(l.appDirs[a.dir], valuesUsed) {
			continue
		}
		kept = append(kept, a)
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].name < kept[j].name })
	return kept
}

// settle fills in a's settings from cfg and checks that they fit it.
func (l *layout) settle(a *appDir, cfg *policies.Config) {
	if cfg == nil {
		return
	}
	i, r := cfg.Rule(a.name)
	if r == nil {
		return
	}
	a.settings = r.AppSettings
	a.rule = fmt.Sprintf("%s apps[%d]", l.repoPath(policies.ConfigFile), i)
	h := a.settings.Helm
	if h == nil || a.err != nil {
		return
	}
	if a.kind != Helm {
		if r.Path != "" {
			a.err = &Error{File: l.repoPath(policies.ConfigFile), Err: fmt.Errorf("%w: apps[%d].helm: %s is a %s app, not a Helm chart (no Chart.yaml)", ErrRender, i, l.repoPath(a.dir), a.kind)}
		}
		return // a match rule's helm settings apply to the Helm apps it matches
	}
	for j, v := range h.ValuesFiles {
		p := path.Clean(path.Join(a.dir, v))
		if p == ".." || strings.HasPrefix(p, "../") {
			a.err = &Error{File: l.repoPath(policies.ConfigFile), Err: fmt.Errorf("%w: apps[%d].helm.valuesFiles[%d]: %q leaves the watched path", ErrRender, i, j, v)}
			return
		}
		if _, ok := l.snap.Files[p]; !ok {
			a.err = &Error{File: l.repoPath(policies.ConfigFile), Err: fmt.Errorf("%w: apps[%d].helm.valuesFiles[%d]: %s: no such file", ErrRender, i, j, l.repoPath(p))}
			return
		}
		a.valuesFiles = append(a.valuesFiles, p)
	}
}

func allIn(files []string, set map[string]bool) bool {
	if len(files) == 0 {
		return false
	}
	for _, f := range files {
		if !set[f] {
			return false
		}
	}
	return true
}

// unrenderedExts are file types of other config tools: a directory
// holding such files and no app is reported, not silently ignored.
var unrenderedExts = map[string]string{
	".jsonnet": "Jsonnet", ".libsonnet": "Jsonnet", ".cue": "CUE", ".dhall": "Dhall",
	".tf": "Terraform", ".hcl": "HCL", ".pkl": "Pkl", ".k": "KCL", ".nix": "Nix",
}

// unread lists the directories holding files of other config tools that
// are neither apps nor inside one, nor used by one.
func (l *layout) unread(apps []*appDir) []sources.Skipped {
	covered := func(d string) bool {
		for _, a := range apps {
			for _, r := range append([]string{a.dir}, a.roots...) {
				if d == r || (a.kind != Plain && below(d, r)) {
					return true
				}
			}
		}
		return false
	}
	var out []sources.Skipped
	for dir, files := range l.others {
		if _, isApp := l.appDirs[dir]; isApp || covered(dir) {
			continue
		}
		var what []string
		tools := map[string]bool{}
		for _, f := range files {
			if t, ok := unrenderedExts[strings.ToLower(path.Ext(f))]; ok {
				what = append(what, path.Base(f))
				tools[t] = true
			}
		}
		if len(what) == 0 {
			continue
		}
		sort.Strings(what)
		var ts []string
		for t := range tools {
			ts = append(ts, t)
		}
		sort.Strings(ts)
		out = append(out, sources.Skipped{Path: l.repoPath(dir), Kind: sources.SkippedDirectory,
			Reason: fmt.Sprintf("not an app: holds %s (%s), which gitpace does not render, and no manifests, kustomization or Chart.yaml", strings.Join(what, ", "), strings.Join(ts, ", "))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// trimFile drops a leading "file: " from err's text (the *Error names the
// file already), keeping err's chain for errors.Is.
func trimFile(err error, file string) error {
	msg, ok := strings.CutPrefix(err.Error(), file+": ")
	if !ok {
		return err
	}
	return &trimmed{msg: msg, err: err}
}

type trimmed struct {
	msg string
	err error
}

func (t *trimmed) Error() string { return t.msg }
func (t *trimmed) Unwrap() error { return t.err }
