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
// the clone at dir that come after commit base (exclusive) and for which
// changed reports true. `gitpace rollback` reverts exactly these (the
// commits that changed the app's content: revision.ContentChanges). base
// must be in the branch's history; an unknown base is ErrRevisionNotFound.
func CommitsSince(dir, base string, changed func(c *object.Commit) (bool, error)) ([]string, error) {
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
		ok, err := changed(c)
		if err != nil {
			return err
		}
		if ok {
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

// CommitSnapshot returns the files under dir (slash-separated, relative to
// the repository root; "" or "." for the root) in commit c, read as a
// GitSource with that Path reads them (symlinks resolved, the same Skipped).
func CommitSnapshot(c *object.Commit, dir string) (*Snapshot, error) {
	p, err := cleanRelPath(dir)
	if err != nil {
		return nil, err
	}
	files, skipped, err := readFiles(c, p)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c.Hash.String()[:7], err)
	}
	return &Snapshot{Revision: revisionOf(c), Path: p, Files: files, Skipped: skipped}, nil
}

// InAppDir matches the files of the app in directory appDir (relative to the
// repository root): those directly in it, as manifest.Load groups them.
func InAppDir(appDir string) func(name string) bool {
	dir := strings.Trim(path.Clean(appDir), "/")
	if dir == "" {
		dir = "."
	}
	return func(name string) bool { return path.Dir(name) == dir }
}

// CommitTouches reports whether c changed a file for which under is true
// (compared with its first parent; a root commit touches all its files).
// under is never asked about "" (the missing side of an added or deleted
// file).
func CommitTouches(c *object.Commit, under func(string) bool) (bool, error) {
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
		if ch.From.Name != "" && under(ch.From.Name) || ch.To.Name != "" && under(ch.To.Name) {
			return true, nil
		}
	}
	return false, nil
}
