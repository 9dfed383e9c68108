package sources

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// head resolves the branch head cheaply: for a local path by reading the ref
// in place (returning the open repository), for a remote by listing its refs
// (returning a nil repository: nothing has been fetched).
func (s *GitSource) head(ctx context.Context) (*git.Repository, plumbing.Hash, error) {
	if s.ep != nil {
		h, err := s.lsRemote(ctx)
		return nil, h, err
	}
	repo, err := openLocal(s.local)
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("git source %s: open repository: %w", s.display, err)
	}
	ref, err := repo.Reference(s.branch, true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, plumbing.ZeroHash, fmt.Errorf("git source %s: %w: %q", s.display, ErrBranchNotFound, s.branch.Short())
	}
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("git source %s: read branch %q: %w", s.display, s.branch.Short(), err)
	}
	return repo, ref.Hash(), nil
}

// openLocal opens a repository at a local path in each form git accepts
// for it: a bare repository (app.git), a worktree's top directory or its
// .git directory, a linked worktree (`git worktree add`: its .git file names
// a git directory whose "commondir" holds the refs and objects), and a
// directory inside a worktree. As git does (enter_repo in git's path.c),
// "<p>.git" is tried when p does not exist.
//
// The path is first opened as it is (a bare repository or the top of a
// worktree), and only then searched upwards for a .git entry: searching
// first would open the worktree that encloses a bare repository kept inside
// one.
func openLocal(p string) (*git.Repository, error) {
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(p + ".git"); err == nil {
			p += ".git"
		}
	}
	repo, err := git.PlainOpenWithOptions(p, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainOpenWithOptions(p, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	}
	return repo, err
}

// objects returns a repository holding the commit head: the local repository
// as it is, or the mirror, fetched when it lacks head. The returned head is
// the mirror's branch after that fetch (newer than head if the branch moved
// in between).
func (s *GitSource) objects(ctx context.Context, repo *git.Repository, head plumbing.Hash) (*git.Repository, plumbing.Hash, error) {
	if s.ep == nil {
		return repo, head, nil
	}
	return s.syncMirror(ctx, head)
}

// resolve turns a revision name into a commit hash in repo. For a remote, a
// name that is not a commit already in the mirror makes it fetch every branch
// and tag first, so that tags and other branches resolve as the remote has
// them now.
func (s *GitSource) resolve(ctx context.Context, repo *git.Repository, rev string) (plumbing.Hash, error) {
	if s.ep != nil && !(isHex(rev) && resolves(repo, rev)) {
		if err := s.fetchAll(ctx, repo); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("git source %s: %w: %q", s.display, ErrRevisionNotFound, rev)
	}
	return *h, nil
}

func resolves(repo *git.Repository, rev string) bool {
	_, err := repo.ResolveRevision(plumbing.Revision(rev))
	return err == nil
}

func isHex(s string) bool {
	if len(s) < 4 || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// cleanRelPath cleans a slash-separated path inside the repository; "" is the
// root. It refuses absolute paths and paths leaving the repository.
func cleanRelPath(p string) (string, error) {
	p = path.Clean(filepath.ToSlash(p))
	if p == "." {
		return "", nil
	}
	if path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("path %q must be relative and inside the repository", p)
	}
	return p, nil
}
