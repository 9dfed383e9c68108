package sources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"
)

func newSource(t *testing.T, cfg GitConfig) *GitSource {
	t.Helper()
	s, err := NewGitSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFetchLocalReadsInPlace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	repo := newRepo(t, dir)
	c1 := commitFiles(t, repo, map[string]string{
		"apps/web/deploy.yaml": "kind: Deployment\n",
		"apps/README.md":       "hi\n",
		"other/x.yaml":         "x\n",
	}, "first\n\nbody")
	cache := t.TempDir()
	src := newSource(t, GitConfig{URL: dir, Path: "./apps/", CacheDir: cache})
	if !src.IsLocal() {
		t.Fatal("a plain path should be read in place")
	}

	snap, err := src.Fetch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := &Snapshot{
		Revision: Revision{Commit: c1.String(), Subject: "first", Author: "Test <test@example.com>", Time: snap.Revision.Time},
		Path:     "apps",
		Files:    map[string][]byte{"web/deploy.yaml": []byte("kind: Deployment\n"), "README.md": []byte("hi\n")},
	}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}

	if _, err := src.Fetch(ctx, c1.String()); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("Fetch(since=head) = %v, want ErrUnchanged", err)
	}

	c2 := commitFiles(t, repo, map[string]string{"apps/web/deploy.yaml": "kind: Deployment # v2\n"}, "second")
	snap, err = src.Fetch(ctx, c1.String())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision.Commit != c2.String() || string(snap.Files["web/deploy.yaml"]) != "kind: Deployment # v2\n" {
		t.Errorf("after a commit got %s %q", snap.Revision.Commit, snap.Files["web/deploy.yaml"])
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("a local source cloned into the cache dir: %v", entries)
	}
}

// remoteFixture is a bare "remote" repository, a working clone that pushes to
// it, and a GitSource reading it through file://.
type remoteFixture struct {
	bare  string
	work  *git.Repository
	wdir  string
	cache string
	src   *GitSource
}

func newRemoteFixture(t *testing.T, path string) *remoteFixture {
	t.Helper()
	// No git binary can be found: file:// must be served in-process.
	t.Setenv("PATH", t.TempDir())
	f := &remoteFixture{bare: filepath.Join(t.TempDir(), "remote.git"), wdir: t.TempDir(), cache: t.TempDir()}
	newBare(t, f.bare)
	f.work = newRepo(t, f.wdir)
	addRemote(t, f.work, "file://"+f.bare)
	f.src = newSource(t, GitConfig{URL: "file://" + f.bare, Path: path, CacheDir: f.cache})
	return f
}

// commitAndPush commits files in the working clone and pushes main (and tags).
func (f *remoteFixture) commitAndPush(t *testing.T, files map[string]string, msg string) plumbing.Hash {
	t.Helper()
	h := commitFiles(t, f.work, files, msg)
	if err := Push(context.Background(), f.wdir, "", Auth{}); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestFetchRemoteMirror(t *testing.T) {
	ctx := context.Background()
	f := newRemoteFixture(t, "")
	c1 := f.commitAndPush(t, map[string]string{"web/a.yaml": "v1\n"}, "one")

	snap, err := f.src.Fetch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision.Commit != c1.String() || string(snap.Files["web/a.yaml"]) != "v1\n" {
		t.Fatalf("first fetch: %+v", snap)
	}
	mirrors, _ := filepath.Glob(filepath.Join(f.cache, "*.git"))
	if len(mirrors) != 1 {
		t.Fatalf("want one mirror in the cache dir, got %v", mirrors)
	}

	before := fingerprint(t, f.cache)
	if _, err := f.src.Fetch(ctx, c1.String()); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("Fetch(since=head) = %v, want ErrUnchanged", err)
	}
	if diff := cmp.Diff(before, fingerprint(t, f.cache)); diff != "" {
		t.Errorf("an unchanged fetch wrote to the mirror (-before +after):\n%s", diff)
	}

	c2 := f.commitAndPush(t, map[string]string{"web/a.yaml": "v2\n", "web/b.yaml": "b\n"}, "two")
	snap, err = f.src.Fetch(ctx, c1.String())
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := map[string][]byte{"web/a.yaml": []byte("v2\n"), "web/b.yaml": []byte("b\n")}
	if snap.Revision.Commit != c2.String() || !cmp.Equal(wantFiles, snap.Files) {
		t.Errorf("after push: %s %q", snap.Revision.Commit, snap.Files)
	}

	revs, err := f.src.Log(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range revs {
		got = append(got, r.Subject)
	}
	if diff := cmp.Diff([]string{"two", "one"}, got); diff != "" {
		t.Errorf("Log (-want +got):\n%s", diff)
	}
	if revs, _ := f.src.Log(ctx, 1); len(revs) != 1 || revs[0].Commit != c2.String() {
		t.Errorf("Log(1) = %v", revs)
	}

	// A fresh source on the same cache dir (a restarted agent) reuses the
	// mirror: the head is already there, so nothing is fetched.
	again := newSource(t, GitConfig{URL: "file://" + f.bare, CacheDir: f.cache})
	before = fingerprint(t, f.cache)
	if rev, err := again.Head(ctx); err != nil || rev.Commit != c2.String() {
		t.Fatalf("Head = %v, %v", rev, err)
	}
	if diff := cmp.Diff(before, fingerprint(t, f.cache)); diff != "" {
		t.Errorf("a restarted source re-fetched (-before +after):\n%s", diff)
	}
}

func TestFetchErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	repo := newRepo(t, dir)
	commitFiles(t, repo, map[string]string{"apps/a.yaml": "a\n"}, "one")
	missing := filepath.Join(t.TempDir(), "missing.git")

	tests := []struct {
		name    string
		cfg     GitConfig
		is      error
		mention []string
		hide    string
	}{
		{name: "unreachable file remote", cfg: GitConfig{URL: "file://" + missing},
			mention: []string{"file://" + missing, "list remote refs"}},
		{name: "unreachable https remote", cfg: GitConfig{URL: "https://bot:s3cret@127.0.0.1:1/org/repo.git"},
			mention: []string{"127.0.0.1:1/org/repo.git", "list remote refs"}, hide: "s3cret"},
		{name: "local branch missing", cfg: GitConfig{URL: dir, Branch: "prod"},
			is: ErrBranchNotFound, mention: []string{dir, `"prod"`}},
		{name: "remote branch missing", cfg: GitConfig{URL: "file://" + dir, Branch: "prod"},
			is: ErrBranchNotFound, mention: []string{"file://" + dir, `"prod"`}},
		{name: "path missing", cfg: GitConfig{URL: dir, Path: "clusters/prod"},
			is: ErrPathNotFound, mention: []string{dir, `"clusters/prod"`}},
		{name: "path is a file", cfg: GitConfig{URL: dir, Path: "apps/a.yaml"},
			is: ErrPathNotFound, mention: []string{`"apps/a.yaml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.CacheDir = t.TempDir()
			_, err := newSource(t, tt.cfg).Fetch(ctx, "")
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			t.Log(err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if tt.hide != "" && strings.Contains(err.Error(), tt.hide) {
				t.Errorf("error %q leaks %q", err, tt.hide)
			}
		})
	}

	if _, err := NewGitSource(GitConfig{URL: dir, Path: "../etc"}); err == nil {
		t.Error("a path leaving the repository was accepted")
	}
}

func TestSnapshotAt(t *testing.T) {
	ctx := context.Background()
	f := newRemoteFixture(t, "apps")
	c1 := f.commitAndPush(t, map[string]string{"apps/a.yaml": "v1\n"}, "one")
	if _, err := f.work.CreateTag("v1", c1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.work.CreateTag("v1-annotated", c1, &git.CreateTagOptions{Tagger: testSig(), Message: "release"}); err != nil {
		t.Fatal(err)
	}
	f.commitAndPush(t, map[string]string{"apps/a.yaml": "v2\n"}, "two")
	err := f.work.Push(&git.PushOptions{RefSpecs: []config.RefSpec{"refs/tags/*:refs/tags/*"}})
	if err != nil {
		t.Fatal(err)
	}

	sources := map[string]*GitSource{
		"local":  newSource(t, GitConfig{URL: f.wdir, Path: "apps"}),
		"remote": f.src,
	}
	for name, src := range sources {
		for _, rev := range []string{"v1", "v1-annotated", c1.String(), c1.String()[:7], "main~1"} {
			t.Run(name+"/"+rev, func(t *testing.T) {
				snap, err := src.SnapshotAt(ctx, rev)
				if err != nil {
					t.Fatal(err)
				}
				if snap.Revision.Commit != c1.String() || string(snap.Files["a.yaml"]) != "v1\n" {
					t.Errorf("SnapshotAt(%q) = %s %q", rev, snap.Revision.Commit, snap.Files)
				}
			})
		}
		t.Run(name+"/unknown", func(t *testing.T) {
			_, err := src.SnapshotAt(ctx, "v9")
			if !errors.Is(err, ErrRevisionNotFound) || !strings.Contains(err.Error(), `"v9"`) {
				t.Errorf("SnapshotAt(v9) = %v, want ErrRevisionNotFound naming it", err)
			}
		})
	}
}

func TestHeadCommit(t *testing.T) {
	ctx := context.Background()
	f := newRemoteFixture(t, "")
	h := f.commitAndPush(t, map[string]string{"a.yaml": "a\n"}, "signed, one day")
	c, err := f.src.HeadCommit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var _ *object.Commit = c // the signature gate calls c.Verify(keyring)
	if c.Hash != h {
		t.Errorf("HeadCommit = %s, want %s", c.Hash, h)
	}
	rev, err := f.src.Head(ctx)
	if err != nil || rev.Commit != h.String() || rev.Subject != "signed, one day" {
		t.Errorf("Head = %+v, %v", rev, err)
	}
}

// TestCloseRemovesTemporaryMirror: without CacheDir the mirror goes in a
// temporary directory, which Close removes (a `gitpace plan` or agent
// process leaves no gitpace-mirror-* behind); a configured CacheDir stays.
func TestCloseRemovesTemporaryMirror(t *testing.T) {
	ctx := context.Background()
	f := newRemoteFixture(t, "")
	f.commitAndPush(t, map[string]string{"web/a.yaml": "v1\n"}, "one")
	t.Setenv("TMPDIR", t.TempDir())
	src := newSource(t, GitConfig{URL: "file://" + f.bare})
	if _, err := src.Fetch(ctx, ""); err != nil {
		t.Fatal(err)
	}
	made, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "gitpace-mirror-*"))
	if len(made) != 1 {
		t.Fatalf("temporary mirrors: %v, want one", made)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "gitpace-mirror-*")); len(left) != 0 {
		t.Errorf("left after Close: %v", left)
	}
	if _, err := f.src.Fetch(ctx, ""); err != nil { // CacheDir configured
		t.Fatal(err)
	}
	if err := f.src.Close(); err != nil {
		t.Fatal(err)
	}
	if kept, _ := filepath.Glob(filepath.Join(f.cache, "*.git")); len(kept) != 1 {
		t.Errorf("a configured cache dir lost its mirror on Close: %v", kept)
	}
}
