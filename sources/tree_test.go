package sources

import (
	"context"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/internal/gittest"
)

// commitTree stores a commit whose tree holds entries (path -> entry) in
// memory, so that any tree git can hold (symlink loops, submodules) can be
// read without a checkout.
func commitTree(t *testing.T, entries map[string]treeEntry) *object.Commit {
	t.Helper()
	st := memory.NewStorage()
	put := func(o interface {
		Encode(plumbing.EncodedObject) error
	}) plumbing.Hash {
		obj := st.NewEncodedObject()
		if err := o.Encode(obj); err != nil {
			t.Fatal(err)
		}
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	blob := func(data string) plumbing.Hash {
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, _ := obj.Writer()
		_, _ = w.Write([]byte(data))
		_ = w.Close()
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var build func(dir string) plumbing.Hash
	build = func(dir string) plumbing.Hash {
		children := map[string]object.TreeEntry{}
		for p, e := range entries {
			rel := p
			if dir != "" {
				if !strings.HasPrefix(p, dir+"/") {
					continue
				}
				rel = strings.TrimPrefix(p, dir+"/")
			}
			name, _, isDeeper := strings.Cut(rel, "/")
			if isDeeper {
				children[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: build(path.Join(dir, name))}
				continue
			}
			h := plumbing.NewHash(e.data) // a submodule's commit
			if e.mode != filemode.Submodule {
				h = blob(e.data)
			}
			children[name] = object.TreeEntry{Name: name, Mode: e.mode, Hash: h}
		}
		tr := &object.Tree{}
		for _, e := range children {
			tr.Entries = append(tr.Entries, e)
		}
		sort.Slice(tr.Entries, func(i, j int) bool { return tr.Entries[i].Name < tr.Entries[j].Name })
		return put(tr)
	}
	sig := object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1_790_000_000, 0)}
	c := &object.Commit{Author: sig, Committer: sig, Message: "tree", TreeHash: build("")}
	co, err := object.GetCommit(st, put(c))
	if err != nil {
		t.Fatal(err)
	}
	return co
}

type treeEntry struct {
	mode filemode.FileMode
	data string // content, symlink target, or a submodule's commit hash
}

func file(data string) treeEntry   { return treeEntry{filemode.Regular, data} }
func link(target string) treeEntry { return treeEntry{filemode.Symlink, target} }

// The tree walk reads links inside the repository as their targets (files
// and directories, through chains, from outside --path), and reports every
// link it does not follow, and submodules, in Skipped, reading nothing
// outside the commit.
func TestReadFilesSymlinks(t *testing.T) {
	c := commitTree(t, map[string]treeEntry{
		"shared/defaults.yaml":    file("shared: yes\n"),
		"shared/more/x.yaml":      file("x: 1\n"),
		"shared/chain1":           link("chain2"),
		"shared/chain2":           link("defaults.yaml"),
		"apps/shop/shop.yaml":     file("shop: yes\n"),
		"apps/shop/defaults.yaml": link("../../shared/defaults.yaml"),
		"apps/shop/chained.yaml":  link("../../shared/chain1"),
		"apps/shop/via-dir.yaml":  link("../lib/x.yaml"), // through the directory link apps/lib
		"apps/lib":                link("../shared/more"),
		"apps/shop/host.yaml":     link("/etc/hostname"),
		"apps/shop/passwd.yaml":   link("../../../../../../etc/passwd"),
		"apps/shop/gone.yaml":     link("missing.yaml"),
		"apps/shop/loop.yaml":     link("loop.yaml"),
		"apps/shop/up":            link(".."),
		"apps/a/b":                link("../c"),
		"apps/c/a":                link("../a"),
		"apps/sub":                {filemode.Submodule, "0123456789012345678901234567890123456789"},
		"apps/shop/exec.sh":       {filemode.Executable, "#!/bin/sh\n"},
	})
	files, skipped, err := readFiles(c, "apps")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for n, d := range files {
		got[n] = string(d)
	}
	want := map[string]string{
		"shop/shop.yaml":     "shop: yes\n",
		"shop/defaults.yaml": "shared: yes\n",
		"shop/chained.yaml":  "shared: yes\n",
		"shop/via-dir.yaml":  "x: 1\n",
		"shop/exec.sh":       "#!/bin/sh\n",
		"lib/x.yaml":         "x: 1\n",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	wantSkipped := []Skipped{
		{Path: "apps/a/b/a", Kind: SkippedSymlink, Target: "../a", Reason: "symlink to ../a is a directory that contains the link (a loop)"},
		{Path: "apps/c/a/b", Kind: SkippedSymlink, Target: "../c", Reason: "symlink to ../c is a directory that contains the link (a loop)"},
		{Path: "apps/shop/gone.yaml", Kind: SkippedSymlink, Target: "missing.yaml", Reason: "symlink to missing.yaml points at apps/shop/missing.yaml, which is not in this commit"},
		{Path: "apps/shop/host.yaml", Kind: SkippedSymlink, Target: "/etc/hostname", Reason: "symlink to /etc/hostname leaves the repository"},
		{Path: "apps/shop/loop.yaml", Kind: SkippedSymlink, Target: "loop.yaml", Reason: "symlink to loop.yaml passes through more than 40 symlinks (a loop?)"},
		{Path: "apps/shop/passwd.yaml", Kind: SkippedSymlink, Target: "../../../../../../etc/passwd", Reason: "symlink to ../../../../../../etc/passwd leaves the repository"},
		{Path: "apps/shop/up", Kind: SkippedSymlink, Target: "..", Reason: "symlink to .. is a directory that contains the link (a loop)"},
		{Path: "apps/sub", Kind: SkippedSubmodule, Reason: "a git submodule (commit 0123456); gitpace does not read submodules"},
	}
	if d := cmp.Diff(wantSkipped, skipped); d != "" {
		t.Errorf("skipped (-want +got):\n%s", d)
	}
}

// --path may itself be, or pass through, a symlink inside the repository.
func TestReadFilesPathThroughLink(t *testing.T) {
	c := commitTree(t, map[string]treeEntry{
		"deploy/apps/web/a.yaml": file("a: 1\n"),
		"apps":                   link("deploy/apps"),
	})
	files, _, err := readFiles(c, "apps")
	if err != nil {
		t.Fatal(err)
	}
	if string(files["web/a.yaml"]) != "a: 1\n" || len(files) != 1 {
		t.Errorf("files = %v", files)
	}
}

// Through a real repository: a file replaced by a link to an identical file
// reads the same; links out of the repository are Skipped, their targets
// (host files) never read.
func TestSnapshotSymlinksRealRepo(t *testing.T) {
	r := gittest.New(t)
	r.Commit("plain", map[string]string{
		"shared/defaults.yaml":    "a: 1\n",
		"apps/shop/shop.yaml":     "s: 1\n",
		"apps/shop/defaults.yaml": "a: 1\n",
	})
	src, err := NewGitSource(GitConfig{URL: r.Dir, Path: "apps"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := src.Fetch(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	r.Commit("link", map[string]string{
		"apps/shop/defaults.yaml": gittest.Symlink("../../shared/defaults.yaml"),
		"apps/shop/host.yaml":     gittest.Symlink("/etc/hostname"),
	})
	after, err := src.Fetch(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before.Files, after.Files); d != "" {
		t.Errorf("files (-plain +linked):\n%s", d)
	}
	want := []Skipped{{Path: "apps/shop/host.yaml", Kind: SkippedSymlink, Target: "/etc/hostname", Reason: "symlink to /etc/hostname leaves the repository"}}
	if d := cmp.Diff(want, after.Skipped); d != "" {
		t.Errorf("skipped (-want +got):\n%s", d)
	}
}
