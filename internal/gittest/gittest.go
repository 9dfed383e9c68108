// Package gittest makes real git repositories for tests with go-git: a
// working clone to commit in, optionally with a bare "remote".
package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Delete, as a file's content in Commit, removes the file.
const Delete = "\x00delete"

// symlinkPrefix marks a file's content in Commit as a symlink target.
const symlinkPrefix = "\x00symlink:"

// Symlink, as a file's content in Commit, makes the file a symlink to
// target (committed as git does, mode 120000).
func Symlink(target string) string { return symlinkPrefix + target }

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
	return r.commit(msg, files, git.CommitOptions{})
}

func (r *Repo) commit(msg string, files map[string]string, opts git.CommitOptions) string {
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
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			if err := os.Remove(p); err != nil { // never write through a link
				r.t.Fatal(err)
			}
		}
		if target, ok := strings.CutPrefix(files[n], symlinkPrefix); ok {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				r.t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				r.t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(n); err != nil {
			r.t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(files[n], symlinkPrefix); ok {
			r.indexLink(n, target)
		}
	}
	opts.Author, opts.AllowEmptyCommits = Signature(), true
	h, err := wt.Commit(msg, &opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// indexLink stores target as the blob of the symlink n in the index, as git
// does: go-git's worktree rewrites an absolute target relative to the
// worktree root ("/etc/hostname" becomes "/../../etc/hostname").
func (r *Repo) indexLink(n, target string) {
	r.t.Helper()
	obj := r.Repo.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := w.Write([]byte(target)); err != nil {
		r.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		r.t.Fatal(err)
	}
	h, err := r.Repo.Storer.SetEncodedObject(obj)
	if err != nil {
		r.t.Fatal(err)
	}
	idx, err := r.Repo.Storer.Index()
	if err != nil {
		r.t.Fatal(err)
	}
	e, err := idx.Entry(n)
	if err != nil {
		r.t.Fatal(err)
	}
	e.Hash, e.Mode, e.Size = h, filemode.Symlink, uint32(len(target))
	if err := r.Repo.Storer.SetIndex(idx); err != nil {
		r.t.Fatal(err)
	}
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
	return r.commit(msg, files, git.CommitOptions{SignKey: key})
}

// CommitSignedWith is Commit signed by signer, e.g. an SSHSigner.
func (r *Repo) CommitSignedWith(msg string, files map[string]string, signer git.Signer) string {
	r.t.Helper()
	return r.commit(msg, files, git.CommitOptions{Signer: signer})
}

// SSHSigner signs git objects as git does with gpg.format=ssh (ssh-keygen
// -Y sign -n git, SHA-512), with its own Ed25519 key.
type SSHSigner struct {
	Signer ssh.Signer
	// Namespace defaults to "git"; tests set another to forge a bad one.
	Namespace string
}

// NewSSHSigner makes an SSHSigner with a fresh Ed25519 key.
func NewSSHSigner(t testing.TB) *SSHSigner {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &SSHSigner{Signer: s}
}

// AuthorizedKey is the public key as one authorized_keys line.
func (s *SSHSigner) AuthorizedKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.Signer.PublicKey())))
}

// Sign implements git.Signer: an armored SSH signature of message.
func (s *SSHSigner) Sign(message io.Reader) ([]byte, error) {
	ns := s.Namespace
	if ns == "" {
		ns = "git"
	}
	sig, err := sshsig.Sign(message, s.Signer, sshsig.HashSHA512, ns)
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}

// Bare makes a bare clone of r named app.git in a temporary directory, as a
// server keeps a repository, and returns its path. PushTo updates it.
func (r *Repo) Bare() string {
	r.t.Helper()
	dir := filepath.Join(r.t.TempDir(), "app.git")
	if _, err := git.PlainClone(dir, true, &git.CloneOptions{URL: r.Dir}); err != nil {
		r.t.Fatal(err)
	}
	return dir
}

// PushTo pushes branch main to the repository at dir (e.g. from Bare).
func (r *Repo) PushTo(dir string) {
	r.t.Helper()
	rem := git.NewRemote(r.Repo.Storer, &config.RemoteConfig{Name: "bare", URLs: []string{dir}})
	err := rem.Push(&git.PushOptions{RemoteName: "bare", RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/main"}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		r.t.Fatal(err)
	}
}

// LinkedWorktree adds a linked worktree of r (`git worktree add --detach`,
// run with the git binary: go-git cannot add one) in a temporary directory
// and returns its path. Its .git is a file naming a directory under r's
// .git/worktrees; branches live in r's .git.
func (r *Repo) LinkedWorktree() string {
	r.t.Helper()
	dir := filepath.Join(r.t.TempDir(), "linked")
	cmd := exec.Command("git", "-C", r.Dir, "worktree", "add", "--detach", dir, "main")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git worktree add: %v\n%s", err, out)
	}
	return dir
}
