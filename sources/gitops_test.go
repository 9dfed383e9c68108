package sources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"
)

// newClone makes a clone with one app, apps/web, and an unrelated file.
func newClone(t *testing.T) (string, *git.Repository) {
	t.Helper()
	t.Setenv("HOME", t.TempDir()) // no global git config
	t.Setenv("GIT_AUTHOR_NAME", "")
	t.Setenv("GIT_AUTHOR_EMAIL", "")
	dir := t.TempDir()
	repo := newRepo(t, dir)
	commitFiles(t, repo, map[string]string{
		"apps/web/deploy.yaml": "kind: Deployment\n",
		"README.md":            "readme\n",
	}, "init")
	return dir, repo
}

// assertOneCommit checks that h is the new HEAD, one commit on top of
// before, with message msg, changing exactly the files in want.
func assertOneCommit(t *testing.T, repo *git.Repository, before plumbing.Hash, h, msg string, want map[string]string) {
	t.Helper()
	c, err := repo.CommitObject(plumbing.NewHash(h))
	if err != nil {
		t.Fatal(err)
	}
	if head := headOf(t, repo); head.String() != h {
		t.Errorf("HEAD = %s, want the new commit %s", head, h)
	}
	if len(c.ParentHashes) != 1 || c.ParentHashes[0] != before {
		t.Errorf("parents = %v, want [%s]", c.ParentHashes, before)
	}
	if c.Message != msg {
		t.Errorf("message = %q, want %q", c.Message, msg)
	}
	if diff := cmp.Diff(want, changed(t, repo, h)); diff != "" {
		t.Errorf("commit changes (-want +got):\n%s", diff)
	}
}

func TestPauseResume(t *testing.T) {
	dir, repo := newClone(t)

	before := headOf(t, repo)
	h, err := Pause(dir, "apps", "web", "db migration")
	if err != nil {
		t.Fatal(err)
	}
	assertOneCommit(t, repo, before, h, "gitpace: pause web: db migration",
		map[string]string{"apps/web/PAUSE": "db migration\n"})

	before = headOf(t, repo)
	h, err = Pause(dir, "apps", "", "freeze")
	if err != nil {
		t.Fatal(err)
	}
	assertOneCommit(t, repo, before, h, "gitpace: pause all apps: freeze",
		map[string]string{"apps/PAUSE": "freeze\n"})

	before = headOf(t, repo)
	h, err = Resume(dir, "apps", "web")
	if err != nil {
		t.Fatal(err)
	}
	assertOneCommit(t, repo, before, h, "gitpace: resume web",
		map[string]string{"apps/web/PAUSE": deleted})

	if _, err := Resume(dir, "apps", "web"); !errors.Is(err, ErrNotPaused) || !strings.Contains(err.Error(), "apps/web/PAUSE") {
		t.Errorf("second Resume = %v, want ErrNotPaused naming apps/web/PAUSE", err)
	}
	if _, err := Pause(dir, "apps", "", "freeze"); err == nil {
		t.Error("pausing again with the same reason made a commit")
	}
	if _, err := Pause(dir, "apps", "api", "x"); err == nil || !strings.Contains(err.Error(), "apps/api") {
		t.Errorf("pausing a missing app = %v, want an error naming apps/api", err)
	}
	if _, err := Pause(dir, "apps", "../..", "x"); err == nil {
		t.Error("an app path leaving the repository was accepted")
	}
}

func TestPromote(t *testing.T) {
	dir, repo := newClone(t)
	before := headOf(t, repo)
	h, err := Promote(dir, "apps", "web", "web-7f9c4", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := Promotion{Rollout: "web-7f9c4", Cycles: 2}
	assertOneCommit(t, repo, before, h, "gitpace: promote web: web-7f9c4 (2 cycles)",
		map[string]string{"apps/web/PROMOTE": string(want.Marshal())})
	got, err := ParsePromotion(want.Marshal())
	if err != nil || got != want {
		t.Errorf("ParsePromotion(Marshal) = %+v, %v", got, err)
	}
	if _, err := Promote(dir, "apps", "web", "", 1); err == nil {
		t.Error("a promotion without a rollout was accepted")
	}
}

func TestVerbsRefuseStagedChanges(t *testing.T) {
	dir, repo := newClone(t)
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	if _, err := wt.Add("README.md"); err != nil {
		t.Fatal(err)
	}
	before := headOf(t, repo)
	if _, err := Pause(dir, "apps", "web", "x"); !errors.Is(err, ErrDirtyWorktree) || !strings.Contains(err.Error(), "README.md") {
		t.Errorf("Pause with a staged file = %v, want ErrDirtyWorktree naming README.md", err)
	}
	if headOf(t, repo) != before {
		t.Error("a commit was made")
	}
}

func TestCommitAuthor(t *testing.T) {
	dir, repo := newClone(t)
	if got := commitAuthor(repo); got.Name != "gitpace" || got.Email != "gitpace@localhost" {
		t.Errorf("default author = %s <%s>", got.Name, got.Email)
	}
	cfg, _ := repo.Config()
	cfg.User.Name, cfg.User.Email = "Repo User", "repo@example.com"
	if err := repo.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	h, err := Pause(dir, "apps", "web", "x")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := repo.CommitObject(plumbing.NewHash(h))
	if c.Author.Name != "Repo User" || c.Author.Email != "repo@example.com" {
		t.Errorf("author from repo config = %s <%s>", c.Author.Name, c.Author.Email)
	}
	t.Setenv("GIT_AUTHOR_NAME", "Env User")
	t.Setenv("GIT_AUTHOR_EMAIL", "env@example.com")
	if got := commitAuthor(repo); got.Name != "Env User" || got.Email != "env@example.com" {
		t.Errorf("author with GIT_AUTHOR_* set = %s <%s>", got.Name, got.Email)
	}
}

func TestPushToBareRemote(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no git binary: file:// is served in-process
	dir, repo := newClone(t)
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare := newBare(t, bareDir)
	addRemote(t, repo, "file://"+bareDir)
	ctx := context.Background()

	if _, err := Pause(dir, "apps", "web", "x"); err != nil {
		t.Fatal(err)
	}
	if err := Push(ctx, dir, "origin", Auth{}); err != nil {
		t.Fatal(err)
	}
	if got, want := headOf(t, bare), headOf(t, repo); got != want {
		t.Errorf("remote main = %s, want %s", got, want)
	}
	if err := Push(ctx, dir, "", Auth{}); err != nil {
		t.Errorf("pushing an up-to-date branch: %v", err)
	}
	if err := Push(ctx, dir, "upstream", Auth{}); err == nil || !strings.Contains(err.Error(), "upstream") {
		t.Errorf("push to a missing remote = %v", err)
	}
}
