package sources

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readWorktree(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return deleted
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRevert(t *testing.T) {
	dir, repo := newClone(t)
	c1 := commitFiles(t, repo, map[string]string{"apps/web/deploy.yaml": "image: v1\n"}, "web v1")
	c2 := commitFiles(t, repo, map[string]string{
		"apps/web/deploy.yaml": "image: v2\n",
		"apps/web/svc.yaml":    "kind: Service\n",
		"README.md":            deleted,
	}, "web v2")
	commitFiles(t, repo, map[string]string{"apps/api/deploy.yaml": "api\n"}, "api")
	_ = c1

	before := headOf(t, repo)
	r1, err := Revert(dir, []string{c2.String()[:8]}, "health checks failed")
	if err != nil {
		t.Fatal(err)
	}
	msg := "Revert \"web v2\"\n\nhealth checks failed\n\nThis reverts commit " + c2.String() + ".\n"
	assertOneCommit(t, repo, before, r1, msg, map[string]string{
		"apps/web/deploy.yaml": "image: v1\n",
		"apps/web/svc.yaml":    deleted,
		"README.md":            "readme\n",
	})
	if diff := cmp.Diff([]string{c2.String()}, ParseReverts(msg)); diff != "" {
		t.Errorf("ParseReverts (-want +got):\n%s", diff)
	}
	if got := readWorktree(t, dir, "apps/web/deploy.yaml"); got != "image: v1\n" {
		t.Errorf("worktree deploy.yaml = %q", got)
	}

	// Reverting the revert brings v2 back.
	before = headOf(t, repo)
	r2, err := Revert(dir, []string{r1}, "")
	if err != nil {
		t.Fatal(err)
	}
	assertOneCommit(t, repo, before, r2, "Revert \"Revert \"web v2\"\"\n\nThis reverts commit "+r1+".\n", map[string]string{
		"apps/web/deploy.yaml": "image: v2\n",
		"apps/web/svc.yaml":    "kind: Service\n",
		"README.md":            deleted,
	})
	if got := readWorktree(t, dir, "apps/web/svc.yaml"); got != "kind: Service\n" {
		t.Errorf("worktree svc.yaml = %q", got)
	}
}

func TestRevertSeveralCommitsInOneCommit(t *testing.T) {
	dir, repo := newClone(t)
	c1 := commitFiles(t, repo, map[string]string{"apps/web/deploy.yaml": "image: v1\n"}, "v1")
	c2 := commitFiles(t, repo, map[string]string{"apps/web/deploy.yaml": "image: v2\n"}, "v2")
	before := headOf(t, repo)
	// Given oldest first; applied newest first, listed newest first.
	h, err := Revert(dir, []string{c1.String(), c2.String()}, "")
	if err != nil {
		t.Fatal(err)
	}
	msg := "Revert 2 commits\n\nThis reverts commit " + c2.String() + ".\nThis reverts commit " + c1.String() + ".\n"
	assertOneCommit(t, repo, before, h, msg, map[string]string{"apps/web/deploy.yaml": "kind: Deployment\n"})
}

func TestRevertConflictLeavesWorktreeAlone(t *testing.T) {
	dir, repo := newClone(t)
	c1 := commitFiles(t, repo, map[string]string{"apps/web/deploy.yaml": "image: v1\n", "apps/web/svc.yaml": "s1\n"}, "v1")
	commitFiles(t, repo, map[string]string{"apps/web/deploy.yaml": "image: v1-hotfix\n"}, "hotfix")
	before := headOf(t, repo)

	_, err := Revert(dir, []string{c1.String()}, "")
	if !errors.Is(err, ErrRevertConflict) || !strings.Contains(err.Error(), "apps/web/deploy.yaml") {
		t.Fatalf("Revert = %v, want ErrRevertConflict naming apps/web/deploy.yaml", err)
	}
	if headOf(t, repo) != before {
		t.Error("a commit was made")
	}
	for name, want := range map[string]string{"apps/web/deploy.yaml": "image: v1-hotfix\n", "apps/web/svc.yaml": "s1\n"} {
		if got := readWorktree(t, dir, name); got != want {
			t.Errorf("%s = %q, want it untouched (%q)", name, got, want)
		}
	}
	wt, _ := repo.Worktree()
	if st, _ := wt.Status(); !st.IsClean() {
		t.Errorf("worktree not clean after a failed revert:\n%s", st)
	}
}

func TestRevertRefusesLocalChanges(t *testing.T) {
	dir, repo := newClone(t)
	c1 := commitFiles(t, repo, map[string]string{"apps/web/deploy.yaml": "image: v1\n"}, "v1")
	if err := os.WriteFile(filepath.Join(dir, "apps/web/deploy.yaml"), []byte("wip\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Revert(dir, []string{c1.String()}, "")
	if !errors.Is(err, ErrDirtyWorktree) || !strings.Contains(err.Error(), "apps/web/deploy.yaml") {
		t.Fatalf("Revert = %v, want ErrDirtyWorktree naming the file", err)
	}
	if got := readWorktree(t, dir, "apps/web/deploy.yaml"); got != "wip\n" {
		t.Errorf("local change lost: %q", got)
	}
	if _, err := Revert(dir, []string{"0123456789abcdef0123456789abcdef01234567"}, ""); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("Revert(unknown) = %v, want ErrRevisionNotFound", err)
	}
}
