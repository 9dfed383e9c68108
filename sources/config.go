package sources

import (
	"context"
	"fmt"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Config returns the configuration the source was made with (Branch
// defaulted), e.g. to clone the same repository with the same credentials.
func (s *GitSource) Config() GitConfig { return s.cfg }

// Clone makes a working clone of cfg.Branch of cfg.URL in dir (absent or
// empty) with cfg.Auth, with the branch checked out and "origin" pointing at
// cfg.URL: a clone for the commit verbs (Revert) to commit in and for Push to
// push from. It fetches the branch's full history, which Revert needs.
func Clone(ctx context.Context, dir string, cfg GitConfig) error {
	branch := cfg.Branch
	if branch == "" {
		branch = "main"
	}
	ep, err := transport.NewEndpoint(cfg.URL)
	if err != nil {
		return fmt.Errorf("clone %s: %w", redact(cfg.URL), err)
	}
	auth, err := cfg.Auth.method(ep)
	if err != nil {
		return fmt.Errorf("clone %s: %w", redact(cfg.URL), err)
	}
	_, err = git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL: cfg.URL, Auth: auth, RemoteName: "origin",
		ReferenceName: plumbing.NewBranchReferenceName(branch), SingleBranch: true, Tags: git.NoTags,
	})
	if err != nil {
		return fmt.Errorf("clone branch %s of %s: %w", branch, redact(cfg.URL), err)
	}
	return nil
}
