package sources

import (
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// FuzzParsePromotion: no panic; an accepted PROMOTE file validates and
// round-trips through Marshal.
func FuzzParsePromotion(f *testing.F) {
	f.Add(Promotion{Rollout: "test-v1795737622", Cycles: 2}.Marshal())
	f.Add([]byte("rollout: web\ncycles: 1\n---\ncycles: 9\n"))
	f.Add([]byte("\xff\xfer\x00o\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePromotion(data)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted %+v: %v", p, err)
		}
		back, err := ParsePromotion(p.Marshal())
		if err != nil || back != p {
			t.Fatalf("round trip of %+v: %+v, %v", p, back, err)
		}
	})
}

// FuzzSymlinkTarget commits a symlink with any target next to a few files
// and links and reads the tree. Invariants: no panic or hang; every file
// read holds the content of a file of the commit (nothing outside it is
// read); the link is either read or listed in Skipped, never dropped.
func FuzzSymlinkTarget(f *testing.F) {
	for _, s := range []string{"../../shared/a.yaml", "/etc/passwd", "../../../../etc/passwd", "..", ".", "", "x", "../web",
		"../../apps/shop/l.yaml", "../loop/../../shared", "../../shared/", "../../shared/a.yaml/..", strings.Repeat("../", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		c := commitTree(t, map[string]treeEntry{
			"shared/a.yaml":       file("A"),
			"apps/web/w.yaml":     file("W"),
			"apps/web/up":         link(".."),
			"apps/loop":           link("loop"),
			"apps/shop/s.yaml":    file("S"),
			"apps/shop/l.yaml":    link(target),
			"apps/shop/chain":     link("l.yaml"),
			"apps/shop/deep/d":    link("../../shop"),
			"apps/shop/exec.yaml": {filemode.Executable, "X"},
		})
		files, skipped, err := readFiles(c, "apps")
		if err != nil {
			t.Fatal(err)
		}
		for n, d := range files {
			if s := string(d); s != "A" && s != "W" && s != "S" && s != "X" {
				t.Fatalf("%s holds %q, which no file of the commit holds", n, d)
			}
		}
		_, read := files["shop/l.yaml"]
		listed := false
		for _, s := range skipped {
			listed = listed || s.Path == "apps/shop/l.yaml" || strings.HasPrefix(s.Path, "apps/shop/l.yaml/")
		}
		dirRead := false
		for n := range files {
			dirRead = dirRead || strings.HasPrefix(n, "shop/l.yaml/")
		}
		if !read && !listed && !dirRead {
			t.Fatalf("symlink to %q neither read nor listed as skipped: files %v, skipped %v", target, files, skipped)
		}
	})
}
