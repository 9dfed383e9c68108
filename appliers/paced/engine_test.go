package paced

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// upgrade is the upgradeDuration of the integration tests.
const upgrade = 1500 * time.Millisecond

// deploy creates deployment test at v1.1.0 and drives it to Done; it
// returns the resourceVersion after it (see rig.mark).
func deploy(ctx context.Context, r *rig, e func() *Engine, spec Spec) uint64 {
	r.t.Helper()
	st := r.drive(ctx, e, spec, &Controls{}, isDone)
	if st.Status != StatusRunning || len(st.Apps) != 1 || st.Apps[0].Name != "test" || st.Apps[0].RunningInstance != spec.Instance {
		r.t.Fatalf("after create: %s", describeStatus(st))
	}
	r.waitPods(ctx, int(spec.Instance), "v1.1.0")
	return r.mark(ctx)
}

func shared(e *Engine) func() *Engine { return func() *Engine { return e } }

// TestSeedRollingUpdate runs the seed's update (test1-1-0 → test1-1-1) with
// several strategies and proves from watched ReplicaSet and pod events the
// cycle sizes, the order inside each cycle, the spacing between cycles and
// the final state.
func TestSeedRollingUpdate(t *testing.T) {
	cases := []struct {
		name                         string
		instance, surge, unavailable int32
		order                        string
		unique                       bool
		cycles                       [][]string
		maxPods, minReady            int
	}{
		{name: "seed instance 2 surge 1 unavailable 1 CreateFirst UNIQUE", instance: 2, surge: 1, unavailable: 1, order: vocab.OrderCreateFirst, unique: true,
			cycles: [][]string{{"new 1", "old 1"}, {"new 2", "old 0"}}, maxPods: 3, minReady: 2},
		{name: "instance 2 surge 1 unavailable 1 DeleteFirst", instance: 2, surge: 1, unavailable: 1, order: vocab.OrderDeleteFirst,
			cycles: [][]string{{"old 1", "new 1"}, {"old 0", "new 2"}}, maxPods: 2, minReady: 1},
		{name: "instance 5 surge 2 unavailable 2 CreateFirst", instance: 5, surge: 2, unavailable: 2, order: vocab.OrderCreateFirst,
			cycles: [][]string{{"new 2", "old 3"}, {"new 4", "old 1"}, {"new 5", "old 0"}}, maxPods: 7, minReady: 5},
		{name: "instance 5 surge 2 unavailable 1 DeleteFirst", instance: 5, surge: 2, unavailable: 1, order: vocab.OrderDeleteFirst,
			cycles: [][]string{{"old 4", "new 2"}, {"old 3", "new 4"}, {"old 2", "new 5"}, {"old 1"}, {"old 0"}}, maxPods: 7, minReady: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r := newRig(t)
			e := shared(&Engine{Client: r.cs, Poll: 2 * time.Second})
			since := deploy(ctx, r, e, seedSpec(r.ns, "v1.1.0", tc.instance, tc.surge, tc.unavailable, tc.order, upgrade, tc.unique))

			v1 := seedSpec(r.ns, "v1.1.1", tc.instance, tc.surge, tc.unavailable, tc.order, upgrade, tc.unique)
			pw := testenv.WatchPods(t, r.cs, r.ns, vocab.LabelDeployment+"=test")
			rolled := time.Now()
			st := r.drive(ctx, e, v1, &Controls{}, isDone)
			took := time.Since(rolled)
			r.waitPods(ctx, int(tc.instance), "v1.1.1")

			if diff := cmp.Diff(flatten(tc.cycles), r.steps(since, roles)); diff != "" {
				t.Errorf("ReplicaSet steps (-want +got):\n%s", diff)
			}
			gaps, errs := checkCycles(r.events(), since, tc.cycles, tc.order, upgrade)
			for _, err := range errs {
				t.Error(err)
			}
			if st.Status != StatusRunning || len(st.Apps) != 1 || !strings.HasPrefix(st.Apps[0].Name, "test-v") || st.Revision != "commit-v1.1.1" {
				t.Errorf("final status: %s", describeStatus(st))
			}
			if got := r.rsReplicas(ctx); len(got) != 1 || got[st.Apps[0].Name] != tc.instance {
				t.Errorf("ReplicaSets %v, want only %s with %d", got, st.Apps[0].Name, tc.instance)
			}
			maxPods, minReady := pw.Extremes()
			if maxPods > tc.maxPods {
				t.Errorf("%d pods at once, want at most %d", maxPods, tc.maxPods)
			}
			if minReady < tc.minReady {
				t.Errorf("Ready pods fell to %d, want at least %d", minReady, tc.minReady)
			}
			t.Logf("rolled in %s (test %s): %d cycles, next cycle started %v after the previous ended (upgradeDuration %s), max pods %d, min Ready %d",
				took.Round(10*time.Millisecond), time.Since(start).Round(10*time.Millisecond), len(tc.cycles), round(gaps), upgrade, maxPods, minReady)
		})
	}
}

func round(ds []time.Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Round(10*time.Millisecond).String())
	}
	return out
}
