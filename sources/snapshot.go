// Package sources turns a git repository into Snapshots: one revision's
// commit metadata plus the bytes of every file under the configured path.
// Nothing in this package talks to a cluster.
package sources

import (
	"context"
	"errors"
	"time"
)

// ErrUnchanged is returned by Source.Fetch when the branch head is the
// revision the caller already has. No objects were fetched.
var ErrUnchanged = errors.New("branch head unchanged")

// Revision identifies one commit of the watched branch.
type Revision struct {
	Commit  string    `json:"commit"`  // full hex hash
	Subject string    `json:"subject"` // first line of the commit message
	Author  string    `json:"author"`  // "Name <email>"
	Time    time.Time `json:"time"`    // committer time
}

// Short is the 7-character abbreviated commit id, as git prints it.
func (r Revision) Short() string {
	if len(r.Commit) > 7 {
		return r.Commit[:7]
	}
	return r.Commit
}

// Snapshot is the content of one revision below the source's path.
type Snapshot struct {
	Revision Revision
	// Path is the source's directory inside the repository ("" for the
	// root), slash-separated. Files are relative to it; joined with it they
	// are the paths a user sees in the repository.
	Path string
	// Files maps slash-separated paths relative to the source's path to
	// their content: regular files, and symlinks that resolve to a file
	// inside the repository, read as that file (a symlinked directory inside
	// the repository is read as if it were there).
	Files map[string][]byte
	// Skipped lists, sorted by path, the entries below the source's path
	// that are not in Files and not directories: symlinks that leave the
	// repository, point at nothing or loop, and submodules. Package manifest
	// rejects an app whose directory holds a skipped symlink that looks like
	// a manifest; the rest is for reporting.
	Skipped []Skipped
}

// SkipKind says what kind of entry a Skipped is.
type SkipKind string

// Kinds of Skipped entries.
const (
	SkippedSymlink   SkipKind = "symlink"   // a symlink gitpace does not follow
	SkippedSubmodule SkipKind = "submodule" // a gitlink (mode 160000)
	SkippedOther     SkipKind = "other"     // any other tree entry mode
	// SkippedDirectory is a directory that is no app (it holds only files
	// of other config tools, e.g. Jsonnet), reported by package manifest.
	SkippedDirectory SkipKind = "directory"
)

// Skipped is an entry of the commit below the source's path that gitpace did
// not read, and why.
type Skipped struct {
	// Path is the entry's slash-separated path relative to the repository
	// root (the source's path joined with its name below it), e.g.
	// "apps/shop/host.yaml".
	Path string   `json:"path"`
	Kind SkipKind `json:"kind"`
	// Target is a symlink's target as committed ("" for other kinds).
	Target string `json:"target,omitempty"`
	// Reason is one line, e.g. "symlink to /etc/hosts leaves the
	// repository"; "<Path>: <Reason>" reads as a sentence.
	Reason string `json:"reason"`
}

// Source yields the newest Snapshot of a branch.
type Source interface {
	// Fetch returns the snapshot of the branch head, or ErrUnchanged when the
	// head is still `since` (a full commit hash; "" means always fetch).
	Fetch(ctx context.Context, since string) (*Snapshot, error)
}
