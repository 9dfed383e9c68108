package paced

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// TestCancelByRevert: reverting the template mid-rollout deletes the new
// application and restores the old one to its full count in one step.
func TestCancelByRevert(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newRig(t)
	e := shared(&Engine{Client: r.cs, Poll: 2 * time.Second})
	v0 := seedSpec(r.ns, "v1.1.0", 4, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	since := deploy(ctx, r, e, v0)
	v1 := seedSpec(r.ns, "v1.1.1", 4, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	r.drive(ctx, e, v1, &Controls{}, func(s Status) bool { return s.Cycle == 2 && s.Phase == PhaseIdle })

	v0.Revision = "commit-revert"
	var counted []string // a cancel counts no cycle (it once read "cycle 2 of 5")
	st := r.drive(ctx, e, v0, &Controls{}, func(s Status) bool {
		if s.Phase == PhaseCancelling && (s.Cycle != 0 || s.Cycles != 0) {
			counted = append(counted, describeStatus(s))
		}
		return isDone(s)
	})
	if len(counted) > 0 {
		t.Errorf("cancelling statuses counting cycles: %v", counted)
	}
	r.waitPods(ctx, 4, "v1.1.0")
	want := []string{"create new 0", "new 1", "old 3", "new 2", "old 2", "old 4", "delete new"}
	if diff := cmp.Diff(want, r.steps(since, roles)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if got := r.rsReplicas(ctx); !cmp.Equal(got, map[string]int32{"test": 4}) {
		t.Errorf("ReplicaSets %v, want test: 4", got)
	}
	if st.Revision != "commit-revert" || st.Status != StatusRunning {
		t.Errorf("status: %s (revision %s)", describeStatus(st), st.Revision)
	}
}

// TestNewerTemplateMidRollout: a third template mid-rollout restores the
// old application, deletes the in-flight one and rolls to the newest, with
// never three applications at once.
func TestNewerTemplateMidRollout(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newRig(t)
	e := shared(&Engine{Client: r.cs, Poll: 2 * time.Second})
	since := deploy(ctx, r, e, seedSpec(r.ns, "v1.1.0", 2, 1, 1, vocab.OrderCreateFirst, upgrade, false))
	v1 := seedSpec(r.ns, "v1.1.1", 2, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	first := r.drive(ctx, e, v1, &Controls{}, func(s Status) bool { return s.Cycle == 1 && s.Phase == PhaseIdle }).Rollout

	v2 := seedSpec(r.ns, "v1.1.2", 2, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	st := r.drive(ctx, e, v2, &Controls{}, isDone)
	r.waitPods(ctx, 2, "v1.1.2")
	names := map[string]string{"test": "old", first: "first"}
	role := func(app string) string {
		if n, ok := names[app]; ok {
			return n
		}
		return "second"
	}
	want := []string{"create first 0", "first 1", "old 1", "old 2", "delete first",
		"create second 0", "second 1", "old 1", "second 2", "old 0", "delete old"}
	if diff := cmp.Diff(want, r.steps(since, role)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if st.Apps[0].Name == first || r.maxRS > 2 {
		t.Errorf("final application %s (first rollout %s), %d ReplicaSets at once", st.Apps[0].Name, first, r.maxRS)
	}
}
