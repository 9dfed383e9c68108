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
	// their content. Only regular files are included.
	Files map[string][]byte
}

// Source yields the newest Snapshot of a branch.
type Source interface {
	// Fetch returns the snapshot of the branch head, or ErrUnchanged when the
	// head is still `since` (a full commit hash; "" means always fetch).
	Fetch(ctx context.Context, since string) (*Snapshot, error)
}
