package sources

import (
	"context"
	"errors"
	"fmt"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Push pushes the checked-out branch of the clone at dir to the same branch of
// remote ("" means "origin"). It never forces: a remote that moved meanwhile
// gives an error, and the caller pulls and retries. Pushing a branch the
// remote already has is not an error.
func Push(ctx context.Context, dir, remote string, auth Auth) error {
	if remote == "" {
		remote = "origin"
	}
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return fmt.Errorf("push: open clone %s: %w", dir, err)
	}
	r, err := repo.Remote(remote)
	if err != nil {
		return fmt.Errorf("push from %s: remote %q: %w", dir, remote, err)
	}
	url := r.Config().URLs[0]
	head, err := repo.Head()
	if err != nil {
		return fmt.Errorf("push from %s: %w", dir, err)
	}
	if !head.Name().IsBranch() {
		return fmt.Errorf("push from %s: HEAD is detached, not on a branch", dir)
	}
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return fmt.Errorf("push to %s: %w", redact(url), err)
	}
	method, err := auth.method(ep)
	if err != nil {
		return fmt.Errorf("push to %s: %w", redact(url), err)
	}
	spec := config.RefSpec(fmt.Sprintf("%s:%s", head.Name(), head.Name()))
	err = repo.PushContext(ctx, &git.PushOptions{RemoteName: remote, RefSpecs: []config.RefSpec{spec}, Auth: method})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("push %s to %s: %w", head.Name().Short(), redact(url), err)
	}
	return nil
}
