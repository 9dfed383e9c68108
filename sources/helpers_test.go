package sources

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// deleted, as a file's content in commitFiles, removes the file.
const deleted = "\x00deleted"

var clock atomic.Int64

// testSig is a fixed author whose time moves one second per commit, so the
// history has a well-defined newest-first order.
func testSig() *object.Signature {
	return &object.Signature{Name: "Test", Email: "test@example.com",
		When: time.Unix(1_700_000_000+clock.Add(1), 0).UTC()}
}

// newRepo makes a non-bare repository on branch main in dir.
func newRepo(t *testing.T, dir string) *git.Repository {
	t.Helper()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// newBare makes a bare repository with HEAD at main in dir.
func newBare(t *testing.T, dir string) *git.Repository {
	t.Helper()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// addRemote adds remote "origin" with url to repo.
func addRemote(t *testing.T, repo *git.Repository, url string) {
	t.Helper()
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		t.Fatal(err)
	}
}

// commitFiles writes (or, for content `deleted`, removes) files in repo's
// worktree and commits them.
func commitFiles(t *testing.T, repo *git.Repository, files map[string]string, msg string) plumbing.Hash {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	root := wt.Filesystem.Root()
	for _, n := range names {
		if files[n] == deleted {
			if _, err := wt.Remove(n); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	sig := testSig()
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// headOf returns the hash refs/heads/main points at in repo.
func headOf(t *testing.T, repo *git.Repository) plumbing.Hash {
	t.Helper()
	ref, err := repo.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil {
		t.Fatal(err)
	}
	return ref.Hash()
}

// fingerprint lists every file under dir with its size and mtime, to show
// that nothing was written there.
func fingerprint(t *testing.T, dir string) map[string]string {
	t.Helper()
	fp := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			fp[p] = fmt.Sprint(fi.ModTime(), fi.Size())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// changed returns the files commit h changed relative to its first parent:
// path -> new content, or `deleted`.
func changed(t *testing.T, repo *git.Repository, h string) map[string]string {
	t.Helper()
	c, err := repo.CommitObject(plumbing.NewHash(h))
	if err != nil {
		t.Fatal(err)
	}
	var parentTree *object.Tree
	if c.NumParents() > 0 {
		p, err := c.Parent(0)
		if err != nil {
			t.Fatal(err)
		}
		if parentTree, err = p.Tree(); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	changes, err := object.DiffTree(parentTree, tree)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ch := range changes {
		if ch.To.Name == "" {
			out[ch.From.Name] = deleted
			continue
		}
		f, err := tree.File(ch.To.Name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.Contents()
		if err != nil {
			t.Fatal(err)
		}
		out[ch.To.Name] = s
	}
	return out
}

// notifier returns a Watch callback and the channel it signals; the
// callback never blocks (one pending signal at most).
func notifier() (func(), <-chan struct{}) {
	fired := make(chan struct{}, 1)
	return func() {
		select {
		case fired <- struct{}{}:
		default:
		}
	}, fired
}
