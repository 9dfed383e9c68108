package sources

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Revert undoes commits of the checked-out branch in the clone at dir with
// ONE new commit, as `git revert --no-commit c1 c2 && git commit` would.
// commits are any revision names (hashes, abbreviated hashes, "HEAD~2") and
// must be in the branch's history; merges are refused.
//
// go-git has no revert, so it is computed file by file: walking the commits
// newest first, every file a commit changed must still have that commit's
// content (after the newer reverts), and is then set back to the content of
// the commit's parent. A file changed again since is a conflict
// (ErrRevertConflict, naming the file and commit), and a reverted file with
// local changes is ErrDirtyWorktree; either way nothing is written.
//
// The message's subject is `Revert "<subject>"` (or `Revert <n> commits`);
// message, when not empty, follows as a paragraph, then one
// "This reverts commit <hash>." line per commit (see ParseReverts).
func Revert(dir string, commits []string, message string) (string, error) {
	if len(commits) == 0 {
		return "", errors.New("revert: no commits given")
	}
	repo, wt, err := openClone(dir)
	if err != nil {
		return "", err
	}
	ordered, err := newestFirst(repo, commits)
	if err != nil {
		return "", fmt.Errorf("revert in %s: %w", dir, err)
	}
	head, err := repo.Head()
	if err != nil {
		return "", fmt.Errorf("revert in %s: %w", dir, err)
	}
	headCommit, err := repo.CommitObject(head.Hash())
	if err != nil {
		return "", fmt.Errorf("revert in %s: %w", dir, err)
	}
	headTree, err := headCommit.Tree()
	if err != nil {
		return "", fmt.Errorf("revert in %s: %w", dir, err)
	}
	plan, err := revertPlan(headTree, ordered)
	if err != nil {
		return "", fmt.Errorf("revert in %s: %w", dir, err)
	}
	if err := checkClean(wt, plan); err != nil {
		return "", fmt.Errorf("revert in %s: %w", dir, err)
	}
	return commitChange(dir, revertMessage(ordered, message), func(wt *git.Worktree) error {
		for name, e := range plan {
			if err := restore(repo, wt, name, e); err != nil {
				return fmt.Errorf("restore %s: %w", name, err)
			}
		}
		return nil
	})
}

// ParseReverts returns the commit hashes a commit message says it reverts
// ("This reverts commit <hash>." lines, as git and Revert write them).
func ParseReverts(message string) []string {
	var hashes []string
	for _, m := range revertLine.FindAllStringSubmatch(message, -1) {
		hashes = append(hashes, m[1])
	}
	return hashes
}

var revertLine = regexp.MustCompile(`(?m)^This reverts commit ([0-9a-f]{7,64})\b`)

// fileState is one path's content in a tree: absent, or a blob with a mode.
type fileState struct {
	hash plumbing.Hash
	mode filemode.FileMode
}

func (f fileState) absent() bool { return f.hash.IsZero() }

func stateOf(e object.ChangeEntry) fileState {
	if e.Name == "" {
		return fileState{}
	}
	return fileState{hash: e.TreeEntry.Hash, mode: e.TreeEntry.Mode}
}

// revertPlan returns, for every file the commits touched, the state the
// revert leaves it in.
func revertPlan(head *object.Tree, commits []*object.Commit) (map[string]fileState, error) {
	plan := map[string]fileState{}
	current := func(name string) fileState {
		if f, ok := plan[name]; ok {
			return f
		}
		e, err := head.FindEntry(name)
		if err != nil {
			return fileState{}
		}
		return fileState{hash: e.Hash, mode: e.Mode}
	}
	for _, c := range commits {
		var parentTree *object.Tree
		if c.NumParents() == 1 {
			p, err := c.Parent(0)
			if err != nil {
				return nil, fmt.Errorf("parent of %s: %w", c.Hash, err)
			}
			if parentTree, err = p.Tree(); err != nil {
				return nil, err
			}
		}
		tree, err := c.Tree()
		if err != nil {
			return nil, err
		}
		changes, err := object.DiffTree(parentTree, tree)
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", c.Hash, err)
		}
		for _, ch := range changes {
			name := ch.To.Name
			if name == "" {
				name = ch.From.Name
			}
			if current(name) != stateOf(ch.To) {
				return nil, fmt.Errorf("%s was changed again after %s %q: %w",
					name, c.Hash.String()[:7], revisionOf(c).Subject, ErrRevertConflict)
			}
			plan[name] = stateOf(ch.From)
		}
	}
	for name, f := range plan {
		if f == headState(head, name) {
			delete(plan, name) // reverted back to where HEAD already is
		}
	}
	return plan, nil
}

func headState(head *object.Tree, name string) fileState {
	e, err := head.FindEntry(name)
	if err != nil {
		return fileState{}
	}
	return fileState{hash: e.Hash, mode: e.Mode}
}

// newestFirst resolves the revisions and orders them as the branch history
// does, newest first. Each must be a non-merge commit reachable from HEAD.
func newestFirst(repo *git.Repository, revs []string) ([]*object.Commit, error) {
	want := map[plumbing.Hash]string{}
	for _, rev := range revs {
		h, err := repo.ResolveRevision(plumbing.Revision(rev))
		if err != nil {
			return nil, fmt.Errorf("commit %q: %w", rev, ErrRevisionNotFound)
		}
		want[*h] = rev
	}
	iter, err := repo.Log(&git.LogOptions{Order: git.LogOrderCommitterTime})
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	var out []*object.Commit
	err = iter.ForEach(func(c *object.Commit) error {
		if _, ok := want[c.Hash]; !ok {
			return nil
		}
		if c.NumParents() > 1 {
			return fmt.Errorf("commit %s is a merge; reverting merges is not supported", want[c.Hash])
		}
		delete(want, c.Hash)
		out = append(out, c)
		if len(want) == 0 {
			return storer.ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, rev := range want {
		return nil, fmt.Errorf("commit %q is not in the history of HEAD", rev)
	}
	return out, nil
}

// checkClean refuses when a file the revert writes has local changes.
func checkClean(wt *git.Worktree, plan map[string]fileState) error {
	st, err := wt.Status()
	if err != nil {
		return err
	}
	for name := range plan {
		if fs, ok := st[name]; ok && (fs.Worktree != git.Unmodified || fs.Staging != git.Unmodified) {
			return fmt.Errorf("%s has local changes: %w", name, ErrDirtyWorktree)
		}
	}
	return nil
}

// restore puts one file of the worktree in state f and stages it.
func restore(repo *git.Repository, wt *git.Worktree, name string, f fileState) error {
	if f.absent() {
		_, err := wt.Remove(name)
		return err
	}
	blob, err := repo.BlobObject(f.hash)
	if err != nil {
		return err
	}
	data, err := readBlob(*blob)
	if err != nil {
		return err
	}
	if f.mode == filemode.Symlink {
		_ = wt.Filesystem.Remove(name)
		if err := wt.Filesystem.Symlink(string(data), name); err != nil {
			return err
		}
		_, err = wt.Add(name)
		return err
	}
	mode := os.FileMode(0o644)
	if f.mode == filemode.Executable {
		mode = 0o755
	}
	return writeFile(wt, name, data, mode)
}

func revertMessage(commits []*object.Commit, message string) string {
	var b strings.Builder
	if len(commits) == 1 {
		fmt.Fprintf(&b, "Revert \"%s\"\n", revisionOf(commits[0]).Subject)
	} else {
		fmt.Fprintf(&b, "Revert %d commits\n", len(commits))
	}
	if m := strings.TrimSpace(message); m != "" {
		fmt.Fprintf(&b, "\n%s\n", m)
	}
	b.WriteString("\n")
	for _, c := range commits {
		fmt.Fprintf(&b, "This reverts commit %s.\n", c.Hash)
	}
	return b.String()
}
