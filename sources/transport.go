package sources

import (
	"errors"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
)

// go-git's stock file:// transport runs the git-upload-pack and
// git-receive-pack binaries. gitpace never runs git, so importing this
// package replaces it, for the whole process, with go-git's in-process
// server. Local paths and file:// URLs (as remotes, mirrors and push
// targets) then work on a machine without git installed.
//
// The in-process server cannot serve shallow fetches; GitSource fetches full
// history anyway (see GitSource).
func init() {
	client.InstallProtocol("file", server.NewClient(localLoader{}))
}

// localLoader opens the repository at an endpoint's path, bare or not.
// (server.DefaultLoader reads a non-bare repository's worktree as if it were
// its git directory.)
type localLoader struct{}

// Load implements server.Loader.
func (localLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	repo, err := git.PlainOpenWithOptions(ep.Path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, transport.ErrRepositoryNotFound
	}
	if err != nil {
		return nil, err
	}
	return repo.Storer, nil
}
