package sources

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNextPromoteCycles(t *testing.T) {
	dir := t.TempDir()
	repo := newRepo(t, dir)
	commitFiles(t, repo, map[string]string{"apps/web/test.json": "{}"}, "app")
	if n := NextPromoteCycles(dir, "apps", "web", "test-v1"); n != 1 {
		t.Fatalf("without a marker: %d, want 1", n)
	}
	if _, err := Promote(dir, "apps", "web", "test-v1", 2); err != nil {
		t.Fatal(err)
	}
	if n := NextPromoteCycles(dir, "apps", "web", "test-v1"); n != 3 {
		t.Errorf("after approving 2 cycles of test-v1: %d, want 3", n)
	}
	if n := NextPromoteCycles(dir, "apps", "web", "test-v2"); n != 1 {
		t.Errorf("for another rollout: %d, want 1 (a stale marker counts nothing)", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "apps", "web", PromoteFile)); err != nil {
		t.Fatal(err)
	}
}
