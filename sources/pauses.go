package sources

import (
	"path"
	"strings"

	"github.com/gitpace/gitpace/sources/textenc"
)

// Pauses are the PAUSE markers (PauseFile) of one revision: the
// directory of each, relative to the source path ("." for the root), to
// its reason. This is the one place that finds markers and decides which
// pauses an app (manifest.App.Pause, and the pause gate of package policies).
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
		if path.Base(name) == PauseFile && !HiddenPath(name) {
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
	for _, d := range AncestorDirs(path.Clean(dir)) {
		if reason, ok := p[d]; ok {
			return path.Join(d, PauseFile), reason, true
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

// AncestorDirs are "." and every prefix directory of the slash path dir,
// outermost first: "a/b" gives ".", "a", "a/b".
func AncestorDirs(dir string) []string {
	out := []string{"."}
	if dir == "." {
		return out
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		out = append(out, strings.Join(parts[:i+1], "/"))
	}
	return out
}

// HiddenPath reports whether any element of a slash path starts with ".".
func HiddenPath(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}
