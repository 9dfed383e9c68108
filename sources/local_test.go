package sources

import (
	"context"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"

	"github.com/gitpace/gitpace/internal/gittest"
)

// Every local form git accepts reads the branch: a bare repository (with and
// without its ".git" suffix, as git finds it), a worktree, its .git
// directory, a linked worktree, and file:// URLs of each.
func TestLocalRepositoryForms(t *testing.T) {
	r := gittest.New(t)
	head := r.Commit("one", map[string]string{"apps/web/a.yaml": "a: 1\n"})
	bare := r.Bare()
	linked := r.LinkedWorktree()
	for name, url := range map[string]string{
		"bare":                  bare,
		"bare without .git":     strings.TrimSuffix(bare, ".git"),
		"worktree":              r.Dir,
		"worktree .git":         r.Dir + "/.git",
		"inside a worktree":     r.Dir + "/apps",
		"linked worktree":       linked,
		"file:// bare":          "file://" + bare,
		"file:// worktree":      "file://" + r.Dir,
		"file:// linked":        "file://" + linked,
		"file:// worktree .git": "file://" + r.Dir + "/.git",
	} {
		t.Run(name, func(t *testing.T) {
			src, err := NewGitSource(GitConfig{URL: url, Path: "apps", CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			snap, err := src.Fetch(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if snap.Revision.Commit != head || string(snap.Files["web/a.yaml"]) != "a: 1\n" {
				t.Errorf("got %s %v, want %s", snap.Revision.Short(), snap.Files, head[:7])
			}
		})
	}
}

// A bare repository kept inside another repository's worktree is opened as
// itself, not as the enclosing worktree (which git would also find by
// searching upwards).
func TestBareInsideWorktree(t *testing.T) {
	outer := gittest.New(t)
	outer.Commit("outer", map[string]string{"x.yaml": "outer\n"})
	inner := gittest.New(t)
	want := inner.Commit("inner", map[string]string{"x.yaml": "inner\n"})
	dir := outer.Dir + "/srv/app.git"
	if _, err := git.PlainClone(dir, true, &git.CloneOptions{URL: inner.Dir}); err != nil {
		t.Fatal(err)
	}
	src, err := NewGitSource(GitConfig{URL: dir})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Fetch(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision.Commit != want {
		t.Errorf("read %s, want the bare repository's head %s", snap.Revision.Short(), want[:7])
	}
}

// A bare repository and a linked worktree are watched like a worktree: a
// push to the bare repository, or a commit on the branch the linked
// worktree shares, is reported within a second.
func TestWatchBareAndLinked(t *testing.T) {
	r := gittest.New(t)
	r.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	bare := r.Bare()
	linked := r.LinkedWorktree()
	for name, tc := range map[string]struct {
		url    string
		commit func()
	}{
		"bare":   {bare, func() { r.Commit("two", map[string]string{"a.yaml": "a: 2\n"}); r.PushTo(bare) }},
		"linked": {linked, func() { r.Commit("three", map[string]string{"a.yaml": "a: 3\n"}) }},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src, err := NewGitSource(GitConfig{URL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			notify, fired := notifier()
			if err := src.Watch(ctx, notify); err != nil {
				t.Fatal(err)
			}
			tc.commit()
			select {
			case <-fired:
			case <-time.After(5 * time.Second): // about 100ms when the machine is idle; 5s leaves room for a loaded one
				t.Fatal("no notification within 5s of the commit")
			}
			snap, err := src.Fetch(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if snap.Revision.Commit != r.Head() {
				t.Errorf("fetched %s, want the new head %s", snap.Revision.Short(), r.Head()[:7])
			}
		})
	}
}
