package sources

import (
	"fmt"
	"io"
	"path"
	"sort"
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

// snapshotOf reads the files under the source's path in commit c.
func (s *GitSource) snapshotOf(c *object.Commit) (*Snapshot, error) {
	files, skipped, err := readFiles(c, s.path)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", s.display, err)
	}
	return &Snapshot{Revision: revisionOf(c), Path: s.path, Files: files, Skipped: skipped}, nil
}

// Limits of the symlink resolution in readFiles.
const (
	// maxLinkHops is how many symlinks one path may pass through, as Linux's
	// ELOOP limit (40, path_resolution(7)).
	maxLinkHops = 40
	// maxDirLinkDepth is how many symlinked directories may be nested in one
	// another below the source path (bounds a tree of links to a tree).
	maxDirLinkDepth = 8
	// maxLinkTarget is the longest symlink target read (PATH_MAX).
	maxLinkTarget = 4096
)

// readFiles returns the files below dir ("" for the root) in commit c, keyed
// by their slash-separated path relative to dir, and the entries it did not
// read.
//
// Regular and executable files are read. A symlink is read as what it
// points at, resolved as the kernel resolves a path in a checkout of the
// commit (path_resolution(7)): relative to the link's directory, component
// by component, against the whole commit tree (not only dir), following
// chains of up to maxLinkHops links. A link to a file is read as that file;
// a link to a directory is walked as if the directory were there (as a
// checkout shows it), up to maxDirLinkDepth links deep, unless it would walk
// a directory it is already inside. Nothing outside the commit is ever read:
// a link with an absolute target, one whose ".." climbs above the
// repository root, one to a path the commit does not hold, a loop, and a
// submodule are returned in Skipped.
func readFiles(c *object.Commit, dir string) (map[string][]byte, []Skipped, error) {
	root, err := c.Tree()
	if err != nil {
		return nil, nil, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	r := &treeReader{commit: c.Hash, root: root, files: map[string][]byte{}}
	phys, tree := "", root
	if dir != "" {
		res := r.resolve(dir)
		if res.reason != "" || res.entry.Mode != filemode.Dir {
			return nil, nil, fmt.Errorf("%w: %q at commit %s", ErrPathNotFound, dir, c.Hash.String()[:7])
		}
		if tree, err = root.Tree(res.path); err != nil {
			return nil, nil, fmt.Errorf("read %q at %s: %w", dir, c.Hash, err)
		}
		phys = res.path
	}
	r.base = dir
	if err := r.walk(tree, phys, "", []string{phys}, 0); err != nil {
		return nil, nil, err
	}
	sort.Slice(r.skipped, func(i, j int) bool { return r.skipped[i].Path < r.skipped[j].Path })
	return r.files, r.skipped, nil
}

type treeReader struct {
	commit  plumbing.Hash
	root    *object.Tree
	base    string // the source path, "" for the root
	files   map[string][]byte
	skipped []Skipped
}

// walk reads tree, found at the physical path phys in the commit and shown
// at rel below the source path. stack holds the physical directories the
// walk is inside; links is how many directory links led here.
func (r *treeReader) walk(tree *object.Tree, phys, rel string, stack []string, links int) error {
	for _, e := range tree.Entries {
		name, at := path.Join(rel, e.Name), path.Join(phys, e.Name)
		switch e.Mode {
		case filemode.Dir:
			sub, err := tree.Tree(e.Name)
			if err != nil {
				return fmt.Errorf("read %s at %s: %w", at, r.commit, err)
			}
			if err := r.walk(sub, at, name, append(stack, at), links); err != nil {
				return err
			}
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			if err := r.read(name, e.Hash); err != nil {
				return err
			}
		case filemode.Symlink:
			if err := r.link(name, at, stack, links); err != nil {
				return err
			}
		case filemode.Submodule:
			r.skip(name, SkippedSubmodule, "", "a git submodule (commit "+e.Hash.String()[:7]+"); gitpace does not read submodules")
		default:
			r.skip(name, SkippedOther, "", fmt.Sprintf("an entry of mode %s, which gitpace does not read", e.Mode))
		}
	}
	return nil
}

// link reads the symlink at physical path at, shown as name.
func (r *treeReader) link(name, at string, stack []string, links int) error {
	target, ok := r.target(at)
	if !ok {
		r.skip(name, SkippedSymlink, "", "a symlink whose target is longer than 4096 bytes")
		return nil
	}
	res := r.resolve(at)
	switch {
	case res.reason != "":
		r.skip(name, SkippedSymlink, target, fmt.Sprintf("symlink to %s %s", target, res.reason))
	case res.entry.Mode == filemode.Dir:
		for _, s := range stack {
			if res.path == s || res.path == "" || strings.HasPrefix(s, res.path+"/") {
				r.skip(name, SkippedSymlink, target, fmt.Sprintf("symlink to %s is a directory that contains the link (a loop)", target))
				return nil
			}
		}
		if links >= maxDirLinkDepth {
			r.skip(name, SkippedSymlink, target, fmt.Sprintf("symlink to %s is nested in more than %d symlinked directories", target, maxDirLinkDepth))
			return nil
		}
		sub, err := r.root.Tree(res.path)
		if err != nil {
			return fmt.Errorf("read %s at %s: %w", res.path, r.commit, err)
		}
		return r.walk(sub, res.path, name, append(stack[:len(stack):len(stack)], res.path), links+1)
	case res.entry.Mode == filemode.Submodule:
		r.skip(name, SkippedSymlink, target, fmt.Sprintf("symlink to %s points at a submodule, which gitpace does not read", target))
	default:
		return r.read(name, res.entry.Hash)
	}
	return nil
}

func (r *treeReader) read(name string, h plumbing.Hash) error {
	b, err := r.root.TreeEntryFile(&object.TreeEntry{Name: path.Base(name), Mode: filemode.Regular, Hash: h})
	if err != nil {
		return fmt.Errorf("read %s at %s: %w", path.Join(r.base, name), r.commit, err)
	}
	data, err := readBlob(b.Blob)
	if err != nil {
		return fmt.Errorf("read %s at %s: %w", path.Join(r.base, name), r.commit, err)
	}
	r.files[name] = data
	return nil
}

func (r *treeReader) skip(name string, kind SkipKind, target, reason string) {
	r.skipped = append(r.skipped, Skipped{Path: path.Join(r.base, name), Kind: kind, Target: target, Reason: reason})
}

// target returns the target of the symlink at physical path p, as
// committed; false when it is too long to be a path.
func (r *treeReader) target(p string) (string, bool) {
	e, err := r.root.FindEntry(p)
	if err != nil {
		return "", false
	}
	f, err := r.root.TreeEntryFile(e)
	if err != nil || f.Size > maxLinkTarget {
		return "", false
	}
	data, err := readBlob(f.Blob)
	if err != nil {
		return "", false
	}
	return string(data), true
}

// resolved is where a path leads: its physical path in the commit (no
// symlinks in it) and the entry there, or why it leads nowhere.
type resolved struct {
	path   string
	entry  *object.TreeEntry
	reason string // e.g. "leaves the repository"; "" when resolved
}

// resolve follows p, a slash path from the repository root, component by
// component as path_resolution(7) does: a symlink in it is replaced by its
// target (relative to the symlink's directory; ".." pops the resolved
// path), at most maxLinkHops times.
func (r *treeReader) resolve(p string) resolved {
	todo := strings.Split(p, "/")
	var done []string
	var entry *object.TreeEntry
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return resolved{reason: "leaves the repository"}
			}
			done = done[:len(done)-1]
			entry = nil
			continue
		}
		at := path.Join(append(done, c)...)
		e, err := r.root.FindEntry(at)
		if err != nil {
			return resolved{reason: fmt.Sprintf("points at %s, which is not in this commit", at)}
		}
		if e.Mode == filemode.Symlink {
			if hops++; hops > maxLinkHops {
				return resolved{reason: fmt.Sprintf("passes through more than %d symlinks (a loop?)", maxLinkHops)}
			}
			target, ok := r.target(at)
			if !ok {
				return resolved{reason: fmt.Sprintf("passes through %s, a symlink whose target is too long", at)}
			}
			if target == "" {
				return resolved{reason: fmt.Sprintf("passes through %s, a symlink with an empty target", at)}
			}
			if path.IsAbs(target) {
				return resolved{reason: "leaves the repository"}
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		if len(todo) > 0 && e.Mode != filemode.Dir && hasComponent(todo) {
			return resolved{reason: fmt.Sprintf("points below %s, which is not a directory", at)}
		}
		done = append(done, c)
		entry = e
	}
	if len(done) == 0 {
		return resolved{reason: "is the repository root"}
	}
	if entry == nil { // the path ended in "..": look the directory up again
		e, err := r.root.FindEntry(path.Join(done...))
		if err != nil {
			return resolved{reason: fmt.Sprintf("points at %s, which is not in this commit", path.Join(done...))}
		}
		entry = e
	}
	return resolved{path: path.Join(done...), entry: entry}
}

// hasComponent reports whether parts has an element other than "" and ".".
func hasComponent(parts []string) bool {
	for _, p := range parts {
		if p != "" && p != "." {
			return true
		}
	}
	return false
}

func readBlob(b object.Blob) ([]byte, error) {
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// RevisionOf summarises a commit as a Snapshot's Revision.
func RevisionOf(c *object.Commit) Revision { return revisionOf(c) }

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
