// Package gittest makes real git repositories for tests with go-git: a
// working clone to commit in, optionally with a bare "remote".
package gittest

import (
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Delete, as a file's content in Commit, removes the file.
const Delete = "\x00delete"

var clock atomic.Int64

// Repo is a non-bare repository on branch main.
type Repo struct {
	t    testing.TB
	Dir  string
	Repo *git.Repository
}

// New makes an empty repository in a temporary directory.
func New(t testing.TB) *Repo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Repo{t: t, Dir: dir, Repo: r}
}

// Signature is the test author; its time moves one second per commit.
func Signature() *object.Signature {
	return &object.Signature{Name: "Test Author", Email: "author@example.com",
		When: time.Unix(1_790_000_000+clock.Add(1), 0).UTC()}
}

// Commit writes files (content Delete removes one) and commits them,
// returning the commit hash.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	return r.commit(msg, files, nil)
}

func (r *Repo) commit(msg string, files map[string]string, key *openpgp.Entity) string {
	r.t.Helper()
	wt, err := r.Repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if files[n] == Delete {
			if _, err := wt.Remove(n); err != nil {
				r.t.Fatalf("removing %s: %v", n, err)
			}
			continue
		}
		p := filepath.Join(r.Dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(n); err != nil {
			r.t.Fatal(err)
		}
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: Signature(), AllowEmptyCommits: true, SignKey: key})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// Head returns the hash of the branch head.
func (r *Repo) Head() string {
	r.t.Helper()
	h, err := r.Repo.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	return h.Hash().String()
}

// CommitSigned is Commit with an OpenPGP signature by key.
func (r *Repo) CommitSigned(msg string, files map[string]string, key *openpgp.Entity) string {
	r.t.Helper()
	return r.commit(msg, files, key)
}
