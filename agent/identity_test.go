package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDefaultNameForms: every form a user may give for one local repository
// names one agent; another path, branch or repository names another.
func TestDefaultNameForms(t *testing.T) {
	dir := t.TempDir()
	work, bare := filepath.Join(dir, "shop"), filepath.Join(dir, "shop-bare.git")
	for _, d := range []string{filepath.Join(work, ".git"), bare} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	same := func(what string, forms ...string) {
		t.Helper()
		want := DefaultName(forms[0], "main", "apps")
		for _, f := range forms[1:] {
			if got := DefaultName(f, "main", "apps"); got != want {
				t.Errorf("%s: DefaultName(%q) = %s, DefaultName(%q) = %s", what, forms[0], want, f, got)
			}
		}
		if err := ValidateName(want); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	same("worktree", work, work+"/", filepath.Join(work, ".git"), "file://"+work, "file://"+work+"/.git")
	same("bare", bare, filepath.Join(dir, "shop-bare"), "file://"+bare)
	if DefaultName(work, "main", "apps") != DefaultName(work, "main", "./apps/") { // path spellings
		t.Error("--path apps and ./apps/ name two agents")
	}
	for _, other := range []string{DefaultName(work, "main", "."), DefaultName(work, "prod", "apps"), DefaultName(bare, "main", "apps")} {
		if other == DefaultName(work, "main", "apps") {
			t.Errorf("another path, branch or repository gave the same name %s", other)
		}
	}
	if got := DefaultName("https://git.example.com/org/Shop.git/", "main", "apps"); got[:5] != "shop-" {
		t.Errorf("remote name %s, want shop-<hash>", got)
	}
	for _, bad := range []string{"", "has space", "-lead", string(make([]byte, 64))} {
		if ValidateName(bad) == nil {
			t.Errorf("ValidateName(%q) accepted", bad)
		}
	}
}
