package sources_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/sources"
)

// TestCommitsSince: `gitpace rollback team` reverts the commits that
// changed the app team, the files directly in apps/team, and not those that
// changed only the nested app team/api or another app.
func TestCommitsSince(t *testing.T) {
	r := gittest.New(t)
	base := r.Commit("base", map[string]string{"apps/team/a.yaml": "a: 1\n", "apps/team/api/b.yaml": "b: 1\n", "apps/other/c.yaml": "c: 1\n"})
	mine := r.Commit("team", map[string]string{"apps/team/a.yaml": "a: 2\n"})
	r.Commit("nested app only", map[string]string{"apps/team/api/b.yaml": "b: 2\n"})
	r.Commit("other app only", map[string]string{"apps/other/c.yaml": "c: 2\n"})
	removed := r.Commit("team, file removed", map[string]string{"apps/team/a.yaml": gittest.Delete})

	got, err := sources.CommitsSince(r.Dir, base, "apps/team")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{removed, mine}, got); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
	if got, err := sources.CommitsSince(r.Dir, base, "apps/team/api"); err != nil || len(got) != 1 {
		t.Errorf("nested app: %v, %v; want its one commit", got, err)
	}
	if _, err := sources.CommitsSince(r.Dir, "0123456789012345678901234567890123456789", "apps/team"); !errors.Is(err, sources.ErrRevisionNotFound) {
		t.Errorf("unknown base: %v, want ErrRevisionNotFound", err)
	}
}
