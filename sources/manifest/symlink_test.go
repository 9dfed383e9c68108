package manifest

import (
	"errors"
	"testing"

	"github.com/gitpace/gitpace/sources"
	"github.com/google/go-cmp/cmp"
)

// A symlink that sources could not follow rejects the app it would have
// been a manifest of (even when it is the app's only manifest), naming the
// link and its target; other skipped entries are listed on the app only.
func TestSkippedSymlinksRejectTheirApp(t *testing.T) {
	cm := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")
	snap := &sources.Snapshot{Path: "apps",
		Files: map[string][]byte{"shop/shop.yaml": cm, "web/web.yaml": cm},
		Skipped: []sources.Skipped{
			{Path: "apps/only/x.yaml", Kind: sources.SkippedSymlink, Target: "/x", Reason: "symlink to /x leaves the repository"},
			{Path: "apps/shop/host.yaml", Kind: sources.SkippedSymlink, Target: "/etc/hostname", Reason: "symlink to /etc/hostname leaves the repository"},
			{Path: "apps/shop/passwd.yaml", Kind: sources.SkippedSymlink, Target: "../../../etc/passwd", Reason: "symlink to ../../../etc/passwd leaves the repository"},
			{Path: "apps/web/docs", Kind: sources.SkippedSymlink, Target: "/usr/share/doc", Reason: "symlink to /usr/share/doc leaves the repository"},
			{Path: "apps/.hidden/x.yaml", Kind: sources.SkippedSymlink, Target: "/x", Reason: "symlink to /x leaves the repository"},
		}}
	apps := Load(snap)
	if d := cmp.Diff([]string{"only", "shop", "web"}, names(apps)); d != "" {
		t.Fatalf("apps (-want +got):\n%s", d)
	}
	only, shop, web := apps[0], apps[1], apps[2]
	if only.Err == nil || only.Err.Error() != "apps/only/x.yaml: symlink to /x leaves the repository: file not read" {
		t.Errorf("only: %v", only.Err)
	}
	want := "apps/shop/host.yaml: symlink to /etc/hostname leaves the repository: file not read\n" +
		"apps/shop/passwd.yaml: symlink to ../../../etc/passwd leaves the repository: file not read"
	if shop.Err == nil || shop.Err.Error() != want || !errors.Is(shop.Err, ErrSymlink) || len(shop.Objects) != 0 {
		t.Errorf("shop: %v, %d objects; want\n%s", shop.Err, len(shop.Objects), want)
	}
	if web.Err != nil || len(web.Objects) != 1 || len(web.Skipped) != 1 || web.Skipped[0].Path != "apps/web/docs" {
		t.Errorf("web: %v, %d objects, skipped %v", web.Err, len(web.Objects), web.Skipped)
	}
}
