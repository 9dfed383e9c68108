package sources

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// CommitsSince lists, newest first, the commits of the checked-out branch of
// the clone at dir that come after commit base (exclusive) and change a file
// under dir/appDir. `gitpace rollback` reverts exactly these. base must be
// in the branch's history.
func CommitsSince(dir, base, appDir string) ([]string, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("opening git clone %s: %w", dir, err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("%s: reading HEAD: %w", dir, err)
	}
	baseHash, err := repo.ResolveRevision(plumbing.Revision(base))
	if err != nil {
		return nil, fmt.Errorf("%s: commit %s: %w", dir, base, ErrRevisionNotFound)
	}
	prefix := strings.Trim(path.Clean(appDir), "/")
	under := func(p string) bool {
		return prefix == "." || prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/")
	}
	iter, err := repo.Log(&git.LogOptions{From: head.Hash()})
	if err != nil {
		return nil, err
	}
	var out []string
	found := false
	err = iter.ForEach(func(c *object.Commit) error {
		if c.Hash == *baseHash {
			found = true
			return storer.ErrStop
		}
		touches, err := commitTouches(c, under)
		if err != nil {
			return err
		}
		if touches {
			out = append(out, c.Hash.String())
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s: commit %s is not in the history of the checked-out branch", dir, base)
	}
	return out, nil
}

// commitTouches reports whether c changed a file for which under is true
// (compared with its first parent; a root commit touches all its files).
func commitTouches(c *object.Commit, under func(string) bool) (bool, error) {
	tree, err := c.Tree()
	if err != nil {
		return false, err
	}
	var parentTree *object.Tree
	if c.NumParents() > 0 {
		p, err := c.Parent(0)
		if err != nil {
			return false, err
		}
		if parentTree, err = p.Tree(); err != nil {
			return false, err
		}
	}
	changes, err := object.DiffTree(parentTree, tree)
	if err != nil {
		return false, err
	}
	for _, ch := range changes {
		if under(ch.From.Name) || under(ch.To.Name) {
			return true, nil
		}
	}
	return false, nil
}
