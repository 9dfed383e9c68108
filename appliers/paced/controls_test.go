package paced

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// TestManualPromotes: with rollingManually the first cycle runs, then every
// cycle waits for a promote naming the rollout; a stale promote releases
// nothing; two promotes release two cycles and no more.
func TestManualPromotes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newRig(t)
	e := shared(&Engine{Client: r.cs, Poll: 2 * time.Second})
	since := deploy(ctx, r, e, seedSpec(r.ns, "v1.1.0", 4, 1, 1, vocab.OrderCreateFirst, upgrade, false))
	spec := seedSpec(r.ns, "v1.1.1", 4, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	spec.Strategy.Manually = true

	c := &Controls{Promote: &Promote{Rollout: "test-v1000000000", Cycles: 9}} // a stale PROMOTE of an older rollout
	pausedAfter := func(cycle int32) Status {
		t.Helper()
		st := r.drive(ctx, e, spec, c, func(s Status) bool { return s.Status == StatusUpdatePaused })
		if st.Cycle != cycle || st.Phase != PhaseIdle || !strings.Contains(st.Reason, "waits for a promote of rollout "+st.Rollout) {
			t.Fatalf("want UpdatePaused after cycle %d, got %s", cycle, describeStatus(st))
		}
		return st
	}
	st := pausedAfter(1)
	rollout := st.Rollout
	for _, a := range st.Apps {
		if a.Status != StatusUpdatePaused {
			t.Errorf("application %s is %s, want UpdatePaused", a.Name, a.Status)
		}
	}
	for promotes := 1; promotes <= 2; promotes++ {
		c.Promote = &Promote{Rollout: rollout, Cycles: promotes}
		pausedAfter(int32(1 + promotes))
	}
	// No more cycles: stay paused for well over upgradeDuration.
	before := r.mark(ctx)
	r.hold(ctx, 3*upgrade, func() {
		st, err := e().Reconcile(ctx, spec, Controls{Now: time.Now(), Promote: c.Promote})
		if err != nil || st.Status != StatusUpdatePaused || st.Cycle != 3 {
			t.Fatalf("after two promotes: %v %s", err, describeStatus(st))
		}
	})
	if got := r.steps(before, roles); len(got) != 0 {
		t.Errorf("ReplicaSet changes without a promote: %v", got)
	}
	if diff := cmp.Diff([]string{"create new 0", "new 1", "old 3", "new 2", "old 2", "new 3", "old 1"}, r.steps(since, roles)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	c.Promote = &Promote{Rollout: rollout, Cycles: 3}
	st = r.drive(ctx, e, spec, c, isDone)
	r.waitPods(ctx, 4, "v1.1.1")
	if st.Apps[0].Name != rollout {
		t.Errorf("finished on %s, want %s", st.Apps[0].Name, rollout)
	}
}

// TestPauseMidCycle: a pause committed during a cycle lets that cycle
// complete and holds the next; lifting it continues to the end.
func TestPauseMidCycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newRig(t)
	e := shared(&Engine{Client: r.cs, Poll: 2 * time.Second})
	since := deploy(ctx, r, e, seedSpec(r.ns, "v1.1.0", 3, 1, 1, vocab.OrderCreateFirst, upgrade, false))
	spec := seedSpec(r.ns, "v1.1.1", 3, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	spec.Template.Spec.Template.Annotations = map[string]string{"pod-ready.stage.kwok.x-k8s.io/delay": "3s"}

	c := &Controls{}
	st := r.drive(ctx, e, spec, c, func(s Status) bool { return s.Phase == PhaseStarting && s.Cycle == 1 })
	c.Paused, c.PauseReason = true, "checking the canary"
	st = r.drive(ctx, e, spec, c, func(s Status) bool { return s.Status == StatusUpdatePaused })
	if st.Cycle != 1 || st.Phase != PhaseIdle || !strings.Contains(st.Reason, "checking the canary") {
		t.Fatalf("want paused after cycle 1: %s", describeStatus(st))
	}
	if diff := cmp.Diff([]string{"create new 0", "new 1", "old 2"}, r.steps(since, roles)); diff != "" {
		t.Errorf("the cycle in flight did not complete (-want +got):\n%s", diff)
	}
	before := r.mark(ctx)
	r.hold(ctx, 3*upgrade, func() {
		cc := *c
		cc.Now = time.Now()
		if st, err := e().Reconcile(ctx, spec, cc); err != nil || st.Status != StatusUpdatePaused || st.Cycle != 1 {
			t.Fatalf("while paused: %v %s", err, describeStatus(st))
		}
	})
	if got := r.steps(before, roles); len(got) != 0 {
		t.Errorf("ReplicaSet changes while paused: %v", got)
	}
	c.Paused = false
	r.drive(ctx, e, spec, c, isDone)
	r.waitPods(ctx, 3, "v1.1.1")
	cycles := [][]string{{"new 1", "old 2"}, {"new 2", "old 1"}, {"new 3", "old 0"}}
	if diff := cmp.Diff(flatten(cycles), r.steps(since, roles)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if _, errs := checkCycles(r.events(), since, cycles, vocab.OrderCreateFirst, upgrade); len(errs) > 0 {
		t.Error(errors.Join(errs...))
	}
}

// TestSuspendThenRevert: new pods that never become Ready suspend the
// rollout once the start phase outlives StartTimeout; the rollout stays
// suspended (nothing undone, no next step) until a revert cancels it.
func TestSuspendThenRevert(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRig(t)
	e := shared(&Engine{Client: r.cs, Poll: 2 * time.Second})
	v0 := seedSpec(r.ns, "v1.1.0", 3, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	since := deploy(ctx, r, e, v0)
	broken := seedSpec(r.ns, "v1.1.1", 3, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	broken.Template.Spec.Template.Labels["gitpace.dev/never-ready"] = "true"
	broken.TemplateHash += "-never-ready"

	c := &Controls{StartTimeout: 2 * time.Second}
	st := r.drive(ctx, e, broken, c, func(s Status) bool { return s.Status == StatusUpdateSuspend })
	if st.Cycle != 1 || st.Phase != PhaseStarting || !strings.Contains(st.Reason, "start phase has run") ||
		!strings.Contains(st.Reason, "0 of 1 pods of new application") {
		t.Errorf("suspended: %s", describeStatus(st))
	}
	for _, a := range st.Apps {
		if a.Status != StatusUpdateSuspend {
			t.Errorf("application %s is %s, want UpdateSuspend", a.Name, a.Status)
		}
	}
	before := r.mark(ctx)
	r.hold(ctx, 2*upgrade, func() {
		cc := *c
		cc.Now = time.Now()
		if s, err := e().Reconcile(ctx, broken, cc); err != nil || s.Status != StatusUpdateSuspend {
			t.Fatalf("while suspended: %v %s", err, describeStatus(s))
		}
	})
	if got := r.steps(before, roles); len(got) != 0 {
		t.Errorf("ReplicaSet changes while suspended: %v", got)
	}
	st = r.drive(ctx, e, v0, c, isDone)
	r.waitPods(ctx, 3, "v1.1.0")
	if diff := cmp.Diff([]string{"create new 0", "new 1", "delete new"}, r.steps(since, roles)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if got := r.rsReplicas(ctx); !cmp.Equal(got, map[string]int32{"test": 3}) {
		t.Errorf("ReplicaSets %v, want test: 3", got)
	}
}
