package sources

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// GitConfig says which repository, branch and directory a GitSource reads.
type GitConfig struct {
	// URL is either a local path, read in place and never cloned, or a
	// remote: a file:// URL, an https:// URL, an ssh:// URL or an scp-like
	// address (git@host:org/repo.git). Remotes are mirrored into CacheDir.
	URL string
	// Branch is the branch to follow; "" means "main".
	Branch string
	// Path is the directory inside the repository whose files make up the
	// Snapshot; "" or "." means the whole repository.
	Path string
	// Auth holds the credentials for a remote; unused for a local path.
	Auth Auth
	// CacheDir holds one bare mirror per remote URL, kept across fetches and
	// restarts. "" means a temporary directory made on first use.
	CacheDir string
}

// GitSource reads a branch of a git repository with go-git.
//
// A local path is read in place: the branch ref and objects are read from the
// repository's own git directory, nothing is copied, and Watch reports new
// commits as they land.
//
// A remote is mirrored into a bare repository under CacheDir. Each Fetch first
// lists the remote's refs (no objects move); only when the head moved does it
// fetch, and then only the branch. History is fetched in full, not shallow:
// `gitpace history` and revert detection read past commits, and after the
// first fetch each one transfers only the new objects. (go-git's in-process
// file:// server could not serve a shallow fetch either.)
//
// A GitSource is safe for concurrent use.
type GitSource struct {
	cfg     GitConfig
	branch  plumbing.ReferenceName
	path    string              // cleaned, slash-separated, "" for the root
	ep      *transport.Endpoint // nil for a local path
	local   string              // absolute path of a local repository
	display string              // URL without credentials, for messages

	mu        sync.Mutex // serialises mirror creation and fetches
	mirrorDir string
	tempDir   string // the temporary CacheDir this source made, removed by Close
}

var _ Source = (*GitSource)(nil)

// NewGitSource checks cfg and returns a source for it. It does no I/O.
func NewGitSource(cfg GitConfig) (*GitSource, error) {
	if cfg.URL == "" {
		return nil, errors.New("git source: URL is required")
	}
	if cfg.Branch == "" {
		cfg.Branch = "main"
	}
	s := &GitSource{cfg: cfg, display: redact(cfg.URL)}
	s.branch = plumbing.NewBranchReferenceName(cfg.Branch)
	if err := s.branch.Validate(); err != nil {
		return nil, fmt.Errorf("git source %s: branch %q: %w", s.display, cfg.Branch, err)
	}
	p, err := cleanRelPath(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", s.display, err)
	}
	s.path = p
	ep, err := transport.NewEndpoint(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", s.display, err)
	}
	if ep.Protocol == "file" && !strings.HasPrefix(cfg.URL, "file://") {
		s.local = ep.Path // NewEndpoint made it absolute
	} else {
		s.ep = ep
	}
	return s, nil
}

// IsLocal reports whether the source reads a local path in place (and so
// Watch can report commits); remotes must be polled.
func (s *GitSource) IsLocal() bool { return s.ep == nil }

// Fetch implements Source. It resolves the branch head without transferring
// objects and returns ErrUnchanged when it is still since; otherwise it brings
// the head's objects in (remotes only) and reads the files under Path.
func (s *GitSource) Fetch(ctx context.Context, since string) (*Snapshot, error) {
	repo, head, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	if since != "" && head.String() == since {
		return nil, ErrUnchanged
	}
	repo, head, err = s.objects(ctx, repo, head)
	if err != nil {
		return nil, err
	}
	if since != "" && head.String() == since {
		return nil, ErrUnchanged
	}
	return s.snapshot(repo, head)
}

// Head returns the branch head's revision (fetching it first for a remote).
func (s *GitSource) Head(ctx context.Context) (Revision, error) {
	c, err := s.HeadCommit(ctx)
	if err != nil {
		return Revision{}, err
	}
	return revisionOf(c), nil
}

// HeadCommit returns the branch head's commit object, e.g. for a signature
// gate to call Verify on.
func (s *GitSource) HeadCommit(ctx context.Context) (*object.Commit, error) {
	return s.Commit(ctx, "")
}

// Commit returns the commit a branch, tag or commit name (full or
// abbreviated hash, or any form go-git's ResolveRevision takes, such as
// "main~2") resolves to; "" means the branch head. Annotated tags are peeled.
func (s *GitSource) Commit(ctx context.Context, rev string) (*object.Commit, error) {
	repo, head, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	repo, head, err = s.objects(ctx, repo, head)
	if err != nil {
		return nil, err
	}
	hash := head
	if rev != "" {
		if hash, err = s.resolve(ctx, repo, rev); err != nil {
			return nil, err
		}
	}
	c, err := repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("git source %s: read commit %s: %w", s.display, hash, err)
	}
	return c, nil
}

// SnapshotAt returns the files under Path at a branch, tag or commit (see
// Commit), for `gitpace plan --rev` and `gitpace diff --rev`.
func (s *GitSource) SnapshotAt(ctx context.Context, rev string) (*Snapshot, error) {
	c, err := s.Commit(ctx, rev)
	if err != nil {
		return nil, err
	}
	return s.snapshotOf(c)
}

// SnapshotOf returns the files under Path in commit c, a commit object of
// this source (from Commit, or a parent of one): no ref is resolved and
// nothing is fetched.
func (s *GitSource) SnapshotOf(c *object.Commit) (*Snapshot, error) {
	return s.snapshotOf(c)
}

// Log returns up to n revisions of the branch, newest first (by committer
// time); n <= 0 means the whole history.
func (s *GitSource) Log(ctx context.Context, n int) ([]Revision, error) {
	repo, head, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	repo, head, err = s.objects(ctx, repo, head)
	if err != nil {
		return nil, err
	}
	iter, err := repo.Log(&git.LogOptions{From: head, Order: git.LogOrderCommitterTime})
	if err != nil {
		return nil, fmt.Errorf("git source %s: log: %w", s.display, err)
	}
	defer iter.Close()
	var revs []Revision
	for n <= 0 || len(revs) < n {
		c, err := iter.Next()
		if err != nil {
			break // io.EOF: the root commit was reached
		}
		revs = append(revs, revisionOf(c))
	}
	return revs, nil
}
