package sources_test

import (
	"errors"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/sources"
)

// TestCommitsSince: the commits after base for which the predicate holds,
// newest first; here CommitTouches of the files directly in apps/team, not
// those that changed only the nested app team/api or another app.
func TestCommitsSince(t *testing.T) {
	r := gittest.New(t)
	base := r.Commit("base", map[string]string{"apps/team/a.yaml": "a: 1\n", "apps/team/api/b.yaml": "b: 1\n", "apps/other/c.yaml": "c: 1\n"})
	mine := r.Commit("team", map[string]string{"apps/team/a.yaml": "a: 2\n"})
	r.Commit("nested app only", map[string]string{"apps/team/api/b.yaml": "b: 2\n"})
	r.Commit("other app only", map[string]string{"apps/other/c.yaml": "c: 2\n"})
	removed := r.Commit("team, file removed", map[string]string{"apps/team/a.yaml": gittest.Delete})

	got, err := sources.CommitsSince(r.Dir, base, touching("apps/team"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{removed, mine}, got); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
	if got, err := sources.CommitsSince(r.Dir, base, touching("apps/team/api")); err != nil || len(got) != 1 {
		t.Errorf("nested app: %v, %v; want its one commit", got, err)
	}
	if _, err := sources.CommitsSince(r.Dir, "0123456789012345678901234567890123456789", touching("apps/team")); !errors.Is(err, sources.ErrRevisionNotFound) {
		t.Errorf("unknown base: %v, want ErrRevisionNotFound", err)
	}
}

func touching(appDir string) func(*object.Commit) (bool, error) {
	in := sources.InAppDir(appDir)
	return func(c *object.Commit) (bool, error) { return sources.CommitTouches(c, in) }
}
