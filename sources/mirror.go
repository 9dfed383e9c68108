package sources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// remote returns a go-git remote for the URL, over the mirror's storage or,
// for listing refs only, an empty in-memory one.
func (s *GitSource) remote(repo *git.Repository) *git.Remote {
	c := &config.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}}
	if repo == nil {
		return git.NewRemote(memory.NewStorage(), c)
	}
	return git.NewRemote(repo.Storer, c)
}

// lsRemote lists the remote's refs and returns the branch head. No objects
// are transferred.
func (s *GitSource) lsRemote(ctx context.Context) (plumbing.Hash, error) {
	auth, err := s.cfg.Auth.method(s.ep)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("git source %s: %w", s.display, err)
	}
	refs, err := s.remote(nil).ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("git source %s: list remote refs: %w", s.display, err)
	}
	for _, r := range refs {
		if r.Name() == s.branch && r.Type() == plumbing.HashReference {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("git source %s: %w: %q", s.display, ErrBranchNotFound, s.branch.Short())
}

// syncMirror makes sure the mirror holds commit head and its branch points at
// it, fetching the branch only when head is missing. It returns the mirror and
// the branch head in it.
func (s *GitSource) syncMirror(ctx context.Context, head plumbing.Hash) (*git.Repository, plumbing.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	repo, err := s.openMirror()
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	if _, err := repo.CommitObject(head); err == nil {
		// Already here (the remote went back to an older commit, or Head ran
		// before Fetch): point the branch at it, no transfer needed.
		if cur, err := repo.Reference(s.branch, true); err == nil && cur.Hash() == head {
			return repo, head, nil
		}
		ref := plumbing.NewHashReference(s.branch, head)
		if err := repo.Storer.SetReference(ref); err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("git source %s: mirror %s: %w", s.display, s.mirrorDir, err)
		}
		return repo, head, nil
	}
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", s.branch, s.branch))
	if err := s.fetch(ctx, repo, spec); err != nil {
		return nil, plumbing.ZeroHash, err
	}
	ref, err := repo.Reference(s.branch, true)
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("git source %s: branch %q after fetch: %w", s.display, s.branch.Short(), err)
	}
	return repo, ref.Hash(), nil
}

// fetchAll fetches every branch and tag into the mirror.
func (s *GitSource) fetchAll(ctx context.Context, repo *git.Repository) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetch(ctx, repo, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
}

func (s *GitSource) fetch(ctx context.Context, repo *git.Repository, specs ...config.RefSpec) error {
	auth, err := s.cfg.Auth.method(s.ep)
	if err != nil {
		return fmt.Errorf("git source %s: %w", s.display, err)
	}
	err = s.remote(repo).FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   specs,
		Auth:       auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("git source %s: fetch %v: %w", s.display, specs, err)
	}
	return nil
}

// openMirror opens the bare mirror of the URL, creating it (and a temporary
// CacheDir when none is configured) on first use. Call with s.mu held.
func (s *GitSource) openMirror() (*git.Repository, error) {
	if s.mirrorDir == "" {
		dir := s.cfg.CacheDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "gitpace-mirror-")
			if err != nil {
				return nil, fmt.Errorf("git source %s: make cache dir: %w", s.display, err)
			}
			dir, s.tempDir = tmp, tmp
		}
		// One mirror per URL, so sources may share a CacheDir.
		sum := sha256.Sum256([]byte(s.display))
		s.mirrorDir = filepath.Join(dir, hex.EncodeToString(sum[:8])+".git")
	}
	repo, err := git.PlainOpen(s.mirrorDir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(s.mirrorDir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("git source %s: mirror %s: %w", s.display, s.mirrorDir, err)
	}
	return repo, nil
}

// Close removes the mirror this source made in a temporary directory (no
// CacheDir configured); a configured CacheDir is kept for the next
// process. The source must not be used afterwards.
func (s *GitSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tempDir == "" {
		return nil
	}
	err := os.RemoveAll(s.tempDir)
	s.tempDir, s.mirrorDir = "", ""
	return err
}
