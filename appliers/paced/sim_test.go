package paced

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// newWorld is deployment test steady on v1.1.0 with instance Ready pods.
func newWorld(instance int32) *world {
	return &world{
		apps:  map[string]*App{"test": {Name: "test", Replicas: instance, Pods: instance, Ready: instance, TemplateHash: hashV0, Created: t0}},
		state: State{Phase: PhaseSteady, Base: "test", BaseHash: hashV0, BaseInstance: instance, BaseRevision: "rev-" + hashV0, Revision: "rev-" + hashV0},
		now:   t0,
		pods:  instance,
	}
}

// run steps w to Done; crashAt lists the steps whose action is dropped
// after the state is persisted. It fails after 100 steps.
func (w *world) run(t *testing.T, spec Spec, c Controls, crashAt map[int]bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if _, done := w.step(spec, c, crashAt[i]); done {
			return
		}
	}
	t.Fatalf("no Done after 100 steps; log:\n%v", w.log)
}

// The worked examples of the package doc, with pods Ready at once.
var workedExamples = []struct {
	name     string
	spec     Spec
	want     []string
	wantPeak int32
}{
	{
		name: "instance 4, surge 2, unavailable 1, CreateFirst, upgradeDuration 60s",
		spec: withDuration(testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV1), time.Minute),
		want: []string{
			"t+0s cycle 0: Create test-v1562517103 0",
			"t+0s cycle 1: Scale test-v1562517103 2",
			"t+0s cycle 1: Scale test 3",
			"t+1m0s cycle 2: Scale test-v1562517103 4",
			"t+1m0s cycle 2: Scale test 2",
			"t+2m0s cycle 3: Scale test 1",
			"t+3m0s cycle 4: Scale test 0",
			"t+3m0s Steady: Delete test",
		},
		wantPeak: 7, // cycle 2: 3 old + 4 new; batch sizes, not global bounds
	},
	{
		name: "instance 4, surge 2, unavailable 1, DeleteFirst, upgradeDuration 60s",
		spec: withDuration(testSpec(4, 2, 1, vocab.OrderDeleteFirst, hashV1), time.Minute),
		want: []string{
			"t+0s cycle 0: Create test-v1562517103 0",
			"t+0s cycle 1: Scale test 3",
			"t+0s cycle 1: Scale test-v1562517103 2",
			"t+1m0s cycle 2: Scale test 2",
			"t+1m0s cycle 2: Scale test-v1562517103 4",
			"t+2m0s cycle 3: Scale test 1",
			"t+3m0s cycle 4: Scale test 0",
			"t+3m0s Steady: Delete test",
		},
		wantPeak: 6,
	},
	{
		name: "the seed: instance 2, surge 1, unavailable 1, CreateFirst, upgradeDuration 60s",
		spec: withDuration(testSpec(2, 1, 1, vocab.OrderCreateFirst, hashV1), time.Minute),
		want: []string{
			"t+0s cycle 0: Create test-v1562517103 0",
			"t+0s cycle 1: Scale test-v1562517103 1",
			"t+0s cycle 1: Scale test 1",
			"t+1m0s cycle 2: Scale test-v1562517103 2",
			"t+1m0s cycle 2: Scale test 0",
			"t+1m0s Steady: Delete test",
		},
		wantPeak: 3,
	},
	{
		name: "instance 5, surge 2, unavailable 2, DeleteFirst, no upgradeDuration",
		spec: testSpec(5, 2, 2, vocab.OrderDeleteFirst, hashV1),
		want: []string{
			"t+0s cycle 0: Create test-v1562517103 0",
			"t+0s cycle 1: Scale test 3",
			"t+0s cycle 1: Scale test-v1562517103 2",
			"t+0s cycle 2: Scale test 1",
			"t+0s cycle 2: Scale test-v1562517103 4",
			"t+0s cycle 3: Scale test 0",
			"t+0s cycle 3: Scale test-v1562517103 5",
			"t+0s Steady: Delete test",
		},
		wantPeak: 5,
	},
}

func withDuration(s Spec, d time.Duration) Spec { s.Strategy.UpgradeDuration = d; return s }

func TestWorkedExamples(t *testing.T) {
	for _, ex := range workedExamples {
		t.Run(ex.name, func(t *testing.T) {
			w := newWorld(ex.spec.Instance)
			w.run(t, ex.spec, Controls{}, nil)
			if diff := cmp.Diff(ex.want, w.log); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if w.pods != ex.wantPeak {
				t.Errorf("peak pods %d, want %d", w.pods, ex.wantPeak)
			}
			if want := (State{Phase: PhaseSteady, Base: newApp, BaseHash: hashV1, BaseInstance: ex.spec.Instance,
				BaseRevision: "rev-" + hashV1, Revision: "rev-" + hashV1}); !cmp.Equal(want, w.state) {
				t.Errorf("final state (-want +got):\n%s", cmp.Diff(want, w.state))
			}
		})
	}
}

// TestCrashAfterPersist drops the action of every step in turn (the state
// is persisted, the process dies before acting): the rollout must perform
// exactly the same actions, none repeated or skipped.
func TestCrashAfterPersist(t *testing.T) {
	for _, ex := range workedExamples {
		steps := 2 * len(ex.want) * 4 // more than the run has
		for i := 0; i < steps; i++ {
			t.Run(fmt.Sprintf("%s/step %d", ex.name, i), func(t *testing.T) {
				w := newWorld(ex.spec.Instance)
				w.run(t, ex.spec, Controls{}, map[int]bool{i: true})
				if diff := cmp.Diff(ex.want, w.log); diff != "" {
					t.Errorf("actions (-want +got):\n%s", diff)
				}
			})
		}
		t.Run(ex.name+"/every step", func(t *testing.T) {
			w := newWorld(ex.spec.Instance)
			crash := map[int]bool{}
			for i := 0; i < 100; i += 2 {
				crash[i] = true
			}
			w.run(t, ex.spec, Controls{}, crash)
			if diff := cmp.Diff(ex.want, w.log); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestManualSimulation: two promotes release two cycles and no more.
func TestManualSimulation(t *testing.T) {
	spec := withDuration(testSpec(4, 1, 1, vocab.OrderCreateFirst, hashV1), 10*time.Second)
	spec.Strategy.Manually = true
	w := newWorld(4)
	settle := func(c Controls) Decision {
		for i := 0; i < 50; i++ {
			d, _ := w.step(spec, c, false)
			if d.Action == Wait && d.Until.IsZero() {
				return d
			}
		}
		t.Fatal("no stable wait")
		return Decision{}
	}
	cyclesAfter := func(c Controls) int32 {
		d := settle(c)
		if d.Status != StatusUpdatePaused {
			t.Fatalf("status %s (%s), want UpdatePaused", d.Status, d.Reason)
		}
		return w.state.Cycle
	}
	if got := cyclesAfter(Controls{}); got != 1 {
		t.Fatalf("without a promote %d cycles ran, want 1", got)
	}
	if got := cyclesAfter(Controls{Promote: &Promote{Rollout: "test-v999", Cycles: 3}}); got != 1 {
		t.Fatalf("a promote of another rollout released cycles: %d ran", got)
	}
	p := &Promote{Rollout: newApp, Cycles: 1}
	if got := cyclesAfter(Controls{Promote: p}); got != 2 {
		t.Fatalf("after promote 1: %d cycles, want 2", got)
	}
	if got := cyclesAfter(Controls{Promote: p}); got != 2 {
		t.Fatalf("promote 1 again: %d cycles, want still 2", got)
	}
	p.Cycles = 2
	if got := cyclesAfter(Controls{Promote: p}); got != 3 {
		t.Fatalf("after promote 2: %d cycles, want 3", got)
	}
	want := []string{
		"t+0s cycle 0: Create test-v1562517103 0",
		"t+0s cycle 1: Scale test-v1562517103 1",
		"t+0s cycle 1: Scale test 3",
		"t+10s cycle 2: Scale test-v1562517103 2",
		"t+10s cycle 2: Scale test 2",
		"t+20s cycle 3: Scale test-v1562517103 3",
		"t+20s cycle 3: Scale test 1",
	}
	if diff := cmp.Diff(want, w.log); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	p.Cycles = 3
	w.run(t, spec, Controls{Promote: p}, nil)
	if w.state.Base != newApp || len(w.apps) != 1 {
		t.Errorf("after promote 3 the rollout did not finish: %+v", w.state)
	}
}

// TestCrashDuringCancel: a revert or a newer template after cycle 1, with
// a crash after persisting at each step in turn, performs the same actions.
func TestCrashDuringCancel(t *testing.T) {
	cases := []struct {
		name string
		to   Spec
		want []string
	}{
		{name: "revert", to: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV0), want: []string{
			"t+1s cycle 1: Scale test 4", // still rollout cycle 1, phase Cancelling
			"t+1s Steady: Delete test-v1562517103",
		}},
		{name: "newer template", to: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV2), want: []string{
			"t+1s cycle 1: Scale test 4", // still rollout cycle 1, phase Cancelling
			"t+1s Steady: Delete test-v1562517103",
			"t+1s cycle 0: Create test-v1562517104 0",
			"t+1s cycle 1: Scale test-v1562517104 2",
			"t+1s cycle 1: Scale test 3",
			"t+1s cycle 2: Scale test-v1562517104 4",
			"t+1s cycle 2: Scale test 2",
			"t+1s cycle 3: Scale test 1",
			"t+1s cycle 4: Scale test 0",
			"t+1s Steady: Delete test",
		}},
	}
	for _, tc := range cases {
		for i := -1; i < 2*len(tc.want)+4; i++ {
			t.Run(fmt.Sprintf("%s/crash at step %d", tc.name, i), func(t *testing.T) {
				w := newWorld(4)
				v1 := testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV1)
				for len(w.log) < 3 { // the rollout's create and cycle 1's two scales
					w.step(v1, Controls{}, false)
				}
				w.now, w.log = w.now.Add(time.Second), nil
				w.run(t, tc.to, Controls{}, map[int]bool{i: true})
				if diff := cmp.Diff(tc.want, w.log); diff != "" {
					t.Errorf("actions (-want +got):\n%s", diff)
				}
				if len(w.apps) != 1 || w.state.New != "" {
					t.Errorf("left: %v, state %+v", w.observed(), w.state)
				}
			})
		}
	}
}
