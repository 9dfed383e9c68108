package manifest

import (
	"path"
	"strings"

	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/textenc"
)

// Pauses are the PAUSE markers (sources.PauseFile) of one revision: the
// directory of each, relative to the source path ("." for the root), to
// its reason. This is the one place that finds markers and decides which
// pauses an app (App.Pause, and the pause gate of package policies).
type Pauses map[string]string

// FindPauses finds the PAUSE markers among a snapshot's files (paths
// relative to the source path, as sources.Snapshot.Files). Markers in
// hidden directories (a path element starting with ".") are not read, as
// no app is there. A marker's reason is its first non-empty line, trimmed,
// decoded as manifests are (package textenc); text that cannot be decoded
// still pauses, with the reason why it is unreadable.
func FindPauses(files map[string][]byte) Pauses {
	p := Pauses{}
	for name, data := range files {
		if path.Base(name) == sources.PauseFile && !hidden(name) {
			p[path.Dir(name)] = pauseReason(data)
		}
	}
	return p
}

// For returns the marker that pauses the app in directory dir (relative to
// the source path): among the markers in dir and in each of its ancestors,
// the one nearest the root. file is the marker's path relative to the
// source path ("PAUSE", "team/PAUSE"); ok is false when no marker pauses
// the app.
func (p Pauses) For(dir string) (file, reason string, ok bool) {
	for _, d := range ancestors(path.Clean(dir)) {
		if reason, ok := p[d]; ok {
			return path.Join(d, sources.PauseFile), reason, true
		}
	}
	return "", "", false
}

// pauseReason is a PAUSE file's first non-empty line, trimmed, decoded as
// manifests are.
func pauseReason(data []byte) string {
	text, _, err := textenc.ToUTF8(data)
	if err != nil {
		return "(reason not readable: " + err.Error() + ")"
	}
	for line := range strings.Lines(string(text)) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}
