package paced

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

var errCrash = errors.New("crash after persisting")

// TestKillInEachPhase runs rollouts in which every call is a fresh Engine
// (nothing in memory survives a step) and every new state is persisted by
// an Engine that then dies before acting: the next one must take over from
// the persisted state alone. The rollout must end right, with no cycle
// repeated or skipped.
func TestKillInEachPhase(t *testing.T) {
	cases := []struct {
		name                         string
		instance, surge, unavailable int32
		order                        string
		cycles                       [][]string
	}{
		{name: "CreateFirst", instance: 3, surge: 2, unavailable: 1, order: vocab.OrderCreateFirst,
			cycles: [][]string{{"new 2", "old 2"}, {"new 3", "old 1"}, {"old 0"}}},
		{name: "DeleteFirst", instance: 3, surge: 1, unavailable: 2, order: vocab.OrderDeleteFirst,
			cycles: [][]string{{"old 1", "new 1"}, {"old 0", "new 2"}, {"new 3"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r := newRig(t)
			k := newKiller(r)
			fresh := k.engine
			since := deploy(ctx, r, fresh, seedSpec(r.ns, "v1.1.0", tc.instance, tc.surge, tc.unavailable, tc.order, upgrade, false))
			spec := seedSpec(r.ns, "v1.1.1", tc.instance, tc.surge, tc.unavailable, tc.order, upgrade, false)
			st := r.drive(ctx, fresh, spec, &Controls{}, isDone)
			r.waitPods(ctx, int(tc.instance), "v1.1.1")
			if diff := cmp.Diff(flatten(tc.cycles), r.steps(since, roles)); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if _, errs := checkCycles(r.events(), since, tc.cycles, tc.order, upgrade); len(errs) > 0 {
				t.Error(errors.Join(errs...))
			}
			if st.Status != StatusRunning || len(r.rsReplicas(ctx)) != 1 {
				t.Errorf("final: %s", describeStatus(st))
			}
			// Cut short before: creating the first application, creating the
			// new one, scaling in a start phase, scaling in a delete phase,
			// waiting after a cycle ended, deleting the old application.
			for _, want := range []string{"Steady/Create", "Idle/Create", "Starting/Scale", "Deleting/Scale", "Idle/Wait", "Steady/Delete"} {
				if k.killed[want] == 0 {
					t.Errorf("no crash after persisting %s; crashed at %v", want, k.killed)
				}
			}
			t.Logf("%s", k)
		})
	}
}

// killer hands out a fresh Engine for every call; the first Engine to
// persist each new state dies right after persisting it.
type killer struct {
	r          *rig
	calls      int
	crashedSeq int64
	killed     map[string]int // phase/action of the decisions cut short
}

func newKiller(r *rig) *killer { return &killer{r: r, crashedSeq: -1, killed: map[string]int{}} }

func (k *killer) engine() *Engine {
	k.calls++
	return &Engine{Client: k.r.cs, Poll: 2 * time.Second, afterPersist: func(d Decision) error {
		if d.State.Seq <= k.crashedSeq {
			return nil // a state already cut short once: act on it
		}
		k.crashedSeq = d.State.Seq
		k.killed[fmt.Sprintf("%s/%s", d.State.Phase, d.Action)]++
		return errCrash
	}}
}

func (k *killer) String() string {
	return fmt.Sprintf("%d calls, each a fresh Engine; %d new states, each persisted by an Engine that died before acting: %v",
		k.calls, k.crashedSeq, k.killed)
}

// TestKillDuringCancel: a revert mid-rollout under the same crashes as
// TestKillInEachPhase restores the old application and deletes the new one.
func TestKillDuringCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRig(t)
	k := newKiller(r)
	v0 := seedSpec(r.ns, "v1.1.0", 3, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	since := deploy(ctx, r, k.engine, v0)
	v1 := seedSpec(r.ns, "v1.1.1", 3, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	r.drive(ctx, k.engine, v1, &Controls{}, func(s Status) bool { return s.Cycle == 1 && s.Phase == PhaseIdle })
	k.killed = map[string]int{}
	st := r.drive(ctx, k.engine, v0, &Controls{}, isDone)
	r.waitPods(ctx, 3, "v1.1.0")
	if diff := cmp.Diff([]string{"create new 0", "new 1", "old 2", "old 3", "delete new"}, r.steps(since, roles)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	for _, want := range []string{"Cancelling/Scale", "Steady/Delete"} {
		if k.killed[want] == 0 {
			t.Errorf("no crash after persisting %s; crashed at %v", want, k.killed)
		}
	}
	if st.Status != StatusRunning || !cmp.Equal(r.rsReplicas(ctx), map[string]int32{"test": 3}) {
		t.Errorf("final: %s", describeStatus(st))
	}
	t.Logf("%s", k)
}
