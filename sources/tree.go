package sources

import (
	"errors"
	"fmt"
	"io"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// snapshot reads commit h of repo into a Snapshot.
func (s *GitSource) snapshot(repo *git.Repository, h plumbing.Hash) (*Snapshot, error) {
	c, err := repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("git source %s: read commit %s: %w", s.display, h, err)
	}
	return s.snapshotOf(c)
}

// snapshotOf reads the regular files under the source's path in commit c.
func (s *GitSource) snapshotOf(c *object.Commit) (*Snapshot, error) {
	files, err := readFiles(c, s.path)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", s.display, err)
	}
	return &Snapshot{Revision: revisionOf(c), Path: s.path, Files: files}, nil
}

// readFiles returns the regular files (executable or not; no symlinks or
// submodules) below dir ("" for the root) in commit c, keyed by their
// slash-separated path relative to dir.
func readFiles(c *object.Commit, dir string) (map[string][]byte, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	if dir != "" {
		e, err := tree.FindEntry(dir)
		if err != nil || e.Mode != filemode.Dir {
			return nil, fmt.Errorf("%w: %q at commit %s", ErrPathNotFound, dir, c.Hash.String()[:7])
		}
		if tree, err = tree.Tree(dir); err != nil {
			return nil, fmt.Errorf("read %q at %s: %w", dir, c.Hash, err)
		}
	}
	files := map[string][]byte{}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, e, err := walker.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("walk %q at %s: %w", dir, c.Hash, err)
		}
		if e.Mode != filemode.Regular && e.Mode != filemode.Executable && e.Mode != filemode.Deprecated {
			continue
		}
		f, err := tree.TreeEntryFile(&e)
		if err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", name, c.Hash, err)
		}
		data, err := readBlob(f.Blob)
		if err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", name, c.Hash, err)
		}
		files[name] = data
	}
}

func readBlob(b object.Blob) ([]byte, error) {
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// revisionOf summarises a commit.
func revisionOf(c *object.Commit) Revision {
	subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	return Revision{
		Commit:  c.Hash.String(),
		Subject: strings.TrimSpace(subject),
		Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Time:    c.Committer.When,
	}
}
