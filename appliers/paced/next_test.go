package paced

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// TestNext walks every rule of the package doc with one explicit decision
// each. Reasons are checked for a telling phrase only.
func TestNext(t *testing.T) {
	cf := testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV1) // the worked example, rolling to v1.1.1
	cf.Strategy.UpgradeDuration = time.Minute
	df := cf
	df.Strategy.Order = vocab.OrderDeleteFirst
	manual := cf
	manual.Strategy.Manually = true

	steady := State{Phase: PhaseSteady, Base: "test", BaseHash: hashV1, BaseInstance: 4, BaseRevision: "rev-" + hashV1, Revision: "rev-" + hashV1}
	steadyV0 := State{Phase: PhaseSteady, Base: "test", BaseHash: hashV0, BaseInstance: 4, BaseRevision: "rev-" + hashV0, Revision: "rev-" + hashV0}

	// with edits a copy of rolling().
	with := func(edit func(*State)) State { s := rolling(); edit(&s); return s }
	// cycle1 is cycle 1 of the worked example in its start phase.
	cycle1 := func(s *State) {
		s.Phase, s.Cycle, s.Target, s.CycleStart, s.PhaseStart = PhaseStarting, 1, Targets{New: 2, Old: 3}, t0, t0
	}
	afterCycle1 := func(s *State) {
		cycle1(s)
		s.Phase, s.LastCycleEnd = PhaseIdle, at(10*time.Second)
	}

	cases := []struct {
		name       string
		spec       Spec
		obs        Observed
		st         State
		c          Controls
		want       Decision
		wantReason string
	}{
		// --- create, scale, steady
		{
			name: "first commit creates the application named like the deployment",
			spec: cf, c: Controls{Now: t0},
			want: Decision{Action: Create, App: "test", Replicas: 4, State: steady, Status: StatusDeploying},
		},
		{
			name: "steady and Ready is done",
			spec: cf, obs: obs(app("test", 4, 4, hashV1)), st: steady, c: Controls{Now: t0},
			want: Decision{Action: Done, State: steady, Status: StatusRunning},
		},
		{
			name: "steady waits for pods to be Ready",
			spec: cf, obs: obs(app("test", 4, 3, hashV1)), st: steady, c: Controls{Now: t0},
			want:       Decision{Action: Wait, State: steady, Status: StatusDeploying},
			wantReason: "3 of 4 pods of test Ready",
		},
		{
			name: "an instance-only change scales without rolling",
			spec: func() Spec { s := cf; s.Instance, s.Revision = 6, "rev-scale"; return s }(),
			obs:  obs(app("test", 4, 4, hashV1)), st: steady, c: Controls{Now: t0},
			want: Decision{Action: Scale, App: "test", Replicas: 6, Status: StatusDeploying,
				State: State{Phase: PhaseSteady, Base: "test", BaseHash: hashV1, BaseInstance: 6, BaseRevision: "rev-scale", Revision: "rev-scale"}},
		},
		{
			name: "no state: the existing application is adopted",
			spec: cf, obs: obs(app("test", 4, 4, hashV1)), c: Controls{Now: t0},
			want: Decision{Action: Done, Status: StatusRunning, State: State{Phase: PhaseSteady, Base: "test", BaseHash: hashV1, BaseInstance: 4}},
		},

		// --- a template change starts a rollout
		{
			name: "template change creates <name>-v<unix seconds> with 0 instances",
			spec: cf, obs: obs(app("test", 4, 4, hashV0)), st: steadyV0, c: Controls{Now: t0},
			want:       Decision{Action: Create, App: newApp, Replicas: 0, State: rolling(), Status: StatusRollingUpdate},
			wantReason: "rolling update started",
		},
		{
			name: "suffixes never stack: updating test-v1562517103 gives test-v<now>",
			spec: cf, obs: obs(app(newApp, 4, 4, hashV0)),
			st: State{Phase: PhaseSteady, Base: newApp, BaseHash: hashV0, BaseInstance: 4},
			c:  Controls{Now: at(100 * time.Second)},
			want: Decision{Action: Create, App: "test-v1562517203", Status: StatusRollingUpdate,
				State: State{Phase: PhaseIdle, Base: newApp, BaseHash: hashV0, BaseInstance: 4, New: "test-v1562517203", NewHash: hashV1,
					Revision: "rev-" + hashV1, RolloutStart: at(100 * time.Second), PromotedFor: "test-v1562517203"}},
		},
		{
			name: "a taken name moves to the next second",
			spec: cf, obs: obs(app("test", 4, 4, hashV0), App{Name: newApp, Deleting: true}), st: steadyV0, c: Controls{Now: t0},
			want: Decision{Action: Create, App: "test-v1562517104", Status: StatusRollingUpdate,
				State: with(func(s *State) { s.New, s.PromotedFor = "test-v1562517104", "test-v1562517104" })},
		},
		{
			name: "persisted but not created: the same application is created again",
			spec: cf, obs: obs(app("test", 4, 4, hashV0)), st: rolling(), c: Controls{Now: at(5 * time.Second)},
			want: Decision{Action: Create, App: newApp, Replicas: 0, State: rolling(), Status: StatusRollingUpdate},
		},
		{
			name: "after a finished rollout a revert is an ordinary rolling update",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV0), obs: obs(app(newApp, 4, 4, hashV1)),
			st: State{Phase: PhaseSteady, Base: newApp, BaseHash: hashV1, BaseInstance: 4, BaseRevision: "rev-" + hashV1, Revision: "rev-" + hashV1},
			c:  Controls{Now: at(time.Hour)},
			want: Decision{Action: Create, App: "test-v1562520703", Status: StatusRollingUpdate,
				State: State{Phase: PhaseIdle, Base: newApp, BaseHash: hashV1, BaseInstance: 4, BaseRevision: "rev-" + hashV1,
					New: "test-v1562520703", NewHash: hashV0, Revision: "rev-" + hashV0, RolloutStart: at(time.Hour), PromotedFor: "test-v1562520703"}},
		},

		// --- cycles, CreateFirst
		{
			name: "CreateFirst cycle 1 fixes targets new=min(0+2,4)=2 old=max(4-1,0)=3 and scales new up",
			spec: cf, obs: obs(app("test", 4, 4, hashV0), app(newApp, 0, 0, hashV1)), st: rolling(), c: Controls{Now: t0},
			want:       Decision{Action: Scale, App: newApp, Replicas: 2, State: with(cycle1), Status: StatusRollingUpdate},
			wantReason: "cycle 1 of 4: scaling new application",
		},
		{
			name: "start phase waits until the new pods are Ready",
			spec: cf, obs: obs(app("test", 4, 4, hashV0), app(newApp, 2, 1, hashV1)), st: with(cycle1), c: Controls{Now: at(time.Second)},
			want:       Decision{Action: Wait, Until: at(360 * time.Second), State: with(cycle1), Status: StatusRollingUpdate},
			wantReason: "1 of 2 pods of new application",
		},
		{
			name: "new pods Ready: delete phase scales old down to its fixed target",
			spec: cf, obs: obs(app("test", 4, 4, hashV0), app(newApp, 2, 2, hashV1)), st: with(cycle1), c: Controls{Now: at(2 * time.Second)},
			want: Decision{Action: Scale, App: "test", Replicas: 3, Status: StatusRollingUpdate,
				State: with(func(s *State) { cycle1(s); s.Phase, s.PhaseStart = PhaseDeleting, at(2*time.Second) })},
		},
		{
			name: "delete phase waits until the old pods are gone",
			spec: cf, obs: obs(App{Name: "test", Replicas: 3, Pods: 4, Ready: 3, TemplateHash: hashV0}, app(newApp, 2, 2, hashV1)),
			st: with(func(s *State) { cycle1(s); s.Phase, s.PhaseStart = PhaseDeleting, at(2*time.Second) }),
			c:  Controls{Now: at(3 * time.Second)},
			want: Decision{Action: Wait, Until: at(7562 * time.Second), Status: StatusRollingUpdate,
				State: with(func(s *State) { cycle1(s); s.Phase, s.PhaseStart = PhaseDeleting, at(2*time.Second) })},
			wantReason: "4 pods of old application test left",
		},
		{
			name: "old pods gone: the cycle ends and the next waits for upgradeDuration",
			spec: cf, obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)),
			st: with(func(s *State) { cycle1(s); s.Phase, s.PhaseStart = PhaseDeleting, at(2*time.Second) }),
			c:  Controls{Now: at(10 * time.Second)},
			want: Decision{Action: Wait, Until: at(70 * time.Second), Status: StatusRollingUpdate,
				State: with(func(s *State) {
					cycle1(s)
					s.Phase, s.PhaseStart, s.LastCycleEnd = PhaseIdle, at(2*time.Second), at(10*time.Second)
				})},
			wantReason: "cycle 2 of 4 starts at",
		},
		{
			name: "upgradeDuration passed: cycle 2 new=min(2+2,4)=4 old=max(3-1,0)=2",
			spec: cf, obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)), st: with(afterCycle1),
			c: Controls{Now: at(70 * time.Second)},
			want: Decision{Action: Scale, App: newApp, Replicas: 4, Status: StatusRollingUpdate,
				State: with(func(s *State) {
					afterCycle1(s)
					s.Phase, s.Cycle, s.Target, s.CycleStart, s.PhaseStart = PhaseStarting, 2, Targets{New: 4, Old: 2}, at(70*time.Second), at(70*time.Second)
				})},
		},
		{
			name: "a start phase with nothing to create goes straight to the delete phase",
			spec: cf, obs: obs(app("test", 2, 2, hashV0), app(newApp, 4, 4, hashV1)),
			st: with(func(s *State) { s.Cycle, s.Target, s.LastCycleEnd = 2, Targets{New: 4, Old: 2}, at(70*time.Second) }),
			c:  Controls{Now: at(130 * time.Second)},
			want: Decision{Action: Scale, App: "test", Replicas: 1, Status: StatusRollingUpdate,
				State: with(func(s *State) {
					s.Phase, s.Cycle, s.Target, s.LastCycleEnd = PhaseDeleting, 3, Targets{New: 4, Old: 1}, at(70*time.Second)
					s.CycleStart, s.PhaseStart = at(130*time.Second), at(130*time.Second)
				})},
		},
		{
			name: "an instance change mid-rollout applies from the next cycle",
			spec: func() Spec { s := cf; s.Instance = 3; return s }(),
			obs:  obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)), st: with(afterCycle1), c: Controls{Now: at(70 * time.Second)},
			want: Decision{Action: Scale, App: newApp, Replicas: 3, Status: StatusRollingUpdate,
				State: with(func(s *State) {
					afterCycle1(s)
					s.Phase, s.Cycle, s.Target, s.CycleStart, s.PhaseStart = PhaseStarting, 2, Targets{New: 3, Old: 2}, at(70*time.Second), at(70*time.Second)
				})},
		},

		// --- DeleteFirst
		{
			name: "DeleteFirst cycle 1 scales old down first",
			spec: df, obs: obs(app("test", 4, 4, hashV0), app(newApp, 0, 0, hashV1)), st: rolling(), c: Controls{Now: t0},
			want: Decision{Action: Scale, App: "test", Replicas: 3, Status: StatusRollingUpdate,
				State: with(func(s *State) { cycle1(s); s.Phase = PhaseDeleting })},
		},
		{
			name: "DeleteFirst: old pods gone, then the new application is scaled up",
			spec: df, obs: obs(app("test", 3, 3, hashV0), app(newApp, 0, 0, hashV1)),
			st: with(func(s *State) { cycle1(s); s.Phase = PhaseDeleting }), c: Controls{Now: at(time.Second)},
			want: Decision{Action: Scale, App: newApp, Replicas: 2, Status: StatusRollingUpdate,
				State: with(func(s *State) { cycle1(s); s.PhaseStart = at(time.Second) })},
		},
		{
			name: "DeleteFirst: new pods Ready ends the cycle",
			spec: df, obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)),
			st: with(func(s *State) { cycle1(s); s.PhaseStart = at(time.Second) }), c: Controls{Now: at(3 * time.Second)},
			want: Decision{Action: Wait, Until: at(63 * time.Second), Status: StatusRollingUpdate,
				State: with(func(s *State) {
					cycle1(s)
					s.Phase, s.PhaseStart, s.LastCycleEnd = PhaseIdle, at(time.Second), at(3*time.Second)
				})},
		},

		// --- finish
		{
			name: "old=0 and new>=instance: the old application is deleted, the deployment points at the new",
			spec: cf, obs: obs(app("test", 0, 0, hashV0), app(newApp, 4, 4, hashV1)),
			st: with(func(s *State) { s.Cycle, s.Target, s.LastCycleEnd = 4, Targets{New: 4, Old: 0}, at(190*time.Second) }),
			c:  Controls{Now: at(190 * time.Second)},
			want: Decision{Action: Delete, App: "test", Status: StatusRunning,
				State: State{Phase: PhaseSteady, Base: newApp, BaseHash: hashV1, BaseInstance: 4, BaseRevision: "rev-" + hashV1, Revision: "rev-" + hashV1}},
			wantReason: "rolling update done after 4 cycles",
		},
		{
			name: "finish persisted, old not yet deleted: it is deleted as a stray",
			spec: cf, obs: obs(app("test", 0, 0, hashV0), app(newApp, 4, 4, hashV1)),
			st: State{Phase: PhaseSteady, Base: newApp, BaseHash: hashV1, BaseInstance: 4, Revision: "rev-" + hashV1},
			c:  Controls{Now: at(200 * time.Second)},
			want: Decision{Action: Delete, App: "test", Status: StatusDeploying,
				State: State{Phase: PhaseSteady, Base: newApp, BaseHash: hashV1, BaseInstance: 4, Revision: "rev-" + hashV1}},
		},

		// --- suspend
		{
			name: "a start phase over StartTimeout is UpdateSuspend and keeps waiting",
			spec: cf, obs: obs(app("test", 4, 4, hashV0), app(newApp, 2, 1, hashV1)), st: with(cycle1),
			c:          Controls{Now: at(361 * time.Second)},
			want:       Decision{Action: Wait, State: with(cycle1), Status: StatusUpdateSuspend},
			wantReason: "start phase has run 6m1s, over its 6m0s limit",
		},
		{
			name: "a delete phase over DeleteTimeout is UpdateSuspend",
			spec: cf, obs: obs(App{Name: "test", Replicas: 3, Pods: 4, TemplateHash: hashV0}, app(newApp, 2, 2, hashV1)),
			st:         with(func(s *State) { cycle1(s); s.Phase = PhaseDeleting }),
			c:          Controls{Now: at(2 * time.Minute), DeleteTimeout: time.Minute},
			want:       Decision{Action: Wait, State: with(func(s *State) { cycle1(s); s.Phase = PhaseDeleting }), Status: StatusUpdateSuspend},
			wantReason: "delete phase has run 2m0s, over its 1m0s limit",
		},
		{
			name: "a suspended rollout resumes when its pods become Ready",
			spec: cf, obs: obs(app("test", 4, 4, hashV0), app(newApp, 2, 2, hashV1)), st: with(cycle1),
			c: Controls{Now: at(time.Hour)},
			want: Decision{Action: Scale, App: "test", Replicas: 3, Status: StatusRollingUpdate,
				State: with(func(s *State) { cycle1(s); s.Phase, s.PhaseStart = PhaseDeleting, at(time.Hour) })},
		},

		// --- pause
		{
			name: "pause: the cycle in flight completes",
			spec: cf, obs: obs(app("test", 4, 4, hashV0), app(newApp, 2, 2, hashV1)), st: with(cycle1),
			c: Controls{Now: at(2 * time.Second), Paused: true, PauseReason: "investigating"},
			want: Decision{Action: Scale, App: "test", Replicas: 3, Status: StatusRollingUpdate,
				State: with(func(s *State) { cycle1(s); s.Phase, s.PhaseStart = PhaseDeleting, at(2*time.Second) })},
		},
		{
			name: "pause: the next cycle does not start",
			spec: cf, obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)), st: with(afterCycle1),
			c:          Controls{Now: at(time.Hour), Paused: true, PauseReason: "investigating"},
			want:       Decision{Action: Wait, State: with(afterCycle1), Status: StatusUpdatePaused},
			wantReason: "paused (investigating): cycle 2 of 4 does not start",
		},
		{
			name: "pause lifted: a half-done cycle continues with its fixed targets (bk-bcs#87)",
			spec: cf, obs: obs(app("test", 4, 4, hashV0), app(newApp, 2, 2, hashV1)),
			st: with(func(s *State) { cycle1(s); s.Phase, s.PhaseStart = PhaseDeleting, at(2*time.Second) }),
			c:  Controls{Now: at(time.Hour)},
			want: Decision{Action: Scale, App: "test", Replicas: 3, Status: StatusRollingUpdate,
				State: with(func(s *State) { cycle1(s); s.Phase, s.PhaseStart = PhaseDeleting, at(2*time.Second) })},
		},
		{
			name: "pause keeps the old application after the last cycle, for a fast cancel",
			spec: cf, obs: obs(app("test", 0, 0, hashV0), app(newApp, 4, 4, hashV1)),
			st:         with(func(s *State) { s.Cycle, s.Target, s.LastCycleEnd = 4, Targets{New: 4}, t0 }),
			c:          Controls{Now: at(time.Hour), Paused: true, PauseReason: "hold"},
			want:       Decision{Action: Wait, Status: StatusUpdatePaused, State: with(func(s *State) { s.Cycle, s.Target, s.LastCycleEnd = 4, Targets{New: 4}, t0 })},
			wantReason: "all cycles done",
		},

		// --- rollingManually
		{
			name: "manual: the first cycle needs no promote",
			spec: manual, obs: obs(app("test", 4, 4, hashV0), app(newApp, 0, 0, hashV1)), st: rolling(), c: Controls{Now: t0},
			want: Decision{Action: Scale, App: newApp, Replicas: 2, State: with(cycle1), Status: StatusRollingUpdate},
		},
		{
			name: "manual: every cycle ends UpdatePaused",
			spec: manual, obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)), st: with(afterCycle1), c: Controls{Now: at(time.Hour)},
			want:       Decision{Action: Wait, State: with(afterCycle1), Status: StatusUpdatePaused},
			wantReason: "cycle 2 of 4 waits for a promote of rollout test-v1562517103 with cycles 1",
		},
		{
			name: "manual: a promote of another rollout releases nothing",
			spec: manual, obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)), st: with(afterCycle1),
			c:    Controls{Now: at(time.Hour), Promote: &Promote{Rollout: "test-v1000000000", Cycles: 5}},
			want: Decision{Action: Wait, State: with(afterCycle1), Status: StatusUpdatePaused},
		},
		{
			name: "manual: a promote releases one cycle and is counted",
			spec: manual, obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)), st: with(afterCycle1),
			c: Controls{Now: at(time.Hour), Promote: &Promote{Rollout: newApp, Cycles: 1}},
			want: Decision{Action: Scale, App: newApp, Replicas: 4, Status: StatusRollingUpdate,
				State: with(func(s *State) {
					afterCycle1(s)
					s.Phase, s.Cycle, s.Target, s.CycleStart, s.PhaseStart = PhaseStarting, 2, Targets{New: 4, Old: 2}, at(time.Hour), at(time.Hour)
					s.Promoted = 1
				})},
		},
		{
			name: "manual: a consumed promote releases no more",
			spec: manual, obs: obs(app("test", 2, 2, hashV0), app(newApp, 4, 4, hashV1)),
			st:         with(func(s *State) { afterCycle1(s); s.Cycle, s.Promoted = 2, 1 }),
			c:          Controls{Now: at(time.Hour), Promote: &Promote{Rollout: newApp, Cycles: 1}},
			want:       Decision{Action: Wait, Status: StatusUpdatePaused, State: with(func(s *State) { afterCycle1(s); s.Cycle, s.Promoted = 2, 1 })},
			wantReason: "with cycles 2",
		},
		{
			name: "manual: a released cycle still honours upgradeDuration",
			spec: manual, obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)), st: with(afterCycle1),
			c:    Controls{Now: at(20 * time.Second), Promote: &Promote{Rollout: newApp, Cycles: 1}},
			want: Decision{Action: Wait, Until: at(70 * time.Second), State: with(afterCycle1), Status: StatusRollingUpdate},
		},

		// --- cancel and restart
		{
			name: "revert mid-rollout: the old application is restored to its instance count at once",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV0), obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)),
			st: with(afterCycle1), c: Controls{Now: at(20 * time.Second)},
			want: Decision{Action: Scale, App: "test", Replicas: 4, Status: StatusRollingUpdate,
				State: with(func(s *State) { afterCycle1(s); s.Phase, s.PhaseStart = PhaseCancelling, at(20*time.Second) })},
			wantReason: "template reverted to that of test: cancelling rollout test-v1562517103",
		},
		{
			name: "revert mid-rollout: then the new application is deleted",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV0), obs: obs(app("test", 4, 3, hashV0), app(newApp, 2, 2, hashV1)),
			st: with(func(s *State) { afterCycle1(s); s.Phase, s.PhaseStart = PhaseCancelling, at(20*time.Second) }),
			c:  Controls{Now: at(21 * time.Second)},
			want: Decision{Action: Delete, App: newApp, Status: StatusRollingUpdate,
				State: State{Phase: PhaseSteady, Base: "test", BaseHash: hashV0, BaseInstance: 4, BaseRevision: "rev-" + hashV0, Revision: "rev-" + hashV0}},
		},
		{
			name: "revert while paused or suspended still cancels",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV0), obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)),
			st: with(afterCycle1), c: Controls{Now: at(20 * time.Second), Paused: true},
			want: Decision{Action: Scale, App: "test", Replicas: 4, Status: StatusRollingUpdate,
				State: with(func(s *State) { afterCycle1(s); s.Phase, s.PhaseStart = PhaseCancelling, at(20*time.Second) })},
		},
		{
			name: "revert with the old application gone: it is recreated from the spec",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV0), obs: obs(app(newApp, 2, 2, hashV1)),
			st: with(afterCycle1), c: Controls{Now: at(20 * time.Second)},
			want: Decision{Action: Create, App: "test", Replicas: 4, Status: StatusRollingUpdate,
				State: with(func(s *State) { afterCycle1(s); s.Phase, s.PhaseStart = PhaseCancelling, at(20*time.Second) })},
		},
		{
			name: "newer template mid-rollout: the old application is restored first (never three applications)",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV2), obs: obs(app("test", 3, 3, hashV0), app(newApp, 2, 2, hashV1)),
			st: with(afterCycle1), c: Controls{Now: at(20 * time.Second)},
			want: Decision{Action: Scale, App: "test", Replicas: 4, Status: StatusRollingUpdate,
				State: with(func(s *State) { afterCycle1(s); s.Phase, s.PhaseStart = PhaseCancelling, at(20*time.Second) })},
			wantReason: "newer template hash-v1.1.2 arrived during rollout test-v1562517103",
		},
		{
			name: "newer template mid-rollout: then the in-flight application is deleted",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV2), obs: obs(app("test", 4, 4, hashV0), app(newApp, 2, 2, hashV1)),
			st: with(func(s *State) { afterCycle1(s); s.Phase, s.PhaseStart = PhaseCancelling, at(20*time.Second) }),
			c:  Controls{Now: at(21 * time.Second)},
			want: Decision{Action: Delete, App: newApp, Status: StatusRollingUpdate,
				State: State{Phase: PhaseSteady, Base: "test", BaseHash: hashV0, BaseInstance: 4, BaseRevision: "rev-" + hashV0, Revision: "rev-" + hashV0}},
		},
		{
			name: "newer template mid-rollout: then a fresh rollout starts from the old application",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV2), obs: obs(app("test", 4, 4, hashV0)),
			st: steadyV0, c: Controls{Now: at(22 * time.Second)},
			want: Decision{Action: Create, App: "test-v1562517125", Status: StatusRollingUpdate,
				State: State{Phase: PhaseIdle, Base: "test", BaseHash: hashV0, BaseInstance: 4, BaseRevision: "rev-" + hashV0,
					New: "test-v1562517125", NewHash: hashV2, Revision: "rev-" + hashV2, RolloutStart: at(22 * time.Second), PromotedFor: "test-v1562517125"}},
		},
		{
			name: "newer template with the old application gone: the in-flight one becomes the base",
			spec: testSpec(4, 2, 1, vocab.OrderCreateFirst, hashV2), obs: obs(app(newApp, 2, 2, hashV1)),
			st: with(afterCycle1), c: Controls{Now: at(22 * time.Second)},
			want: Decision{Action: Create, App: "test-v1562517125", Status: StatusRollingUpdate,
				State: State{Phase: PhaseIdle, Base: newApp, BaseHash: hashV1, BaseInstance: 2, BaseRevision: "rev-" + hashV1,
					New: "test-v1562517125", NewHash: hashV2, Revision: "rev-" + hashV2, RolloutStart: at(22 * time.Second), PromotedFor: "test-v1562517125"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Next(tc.spec, tc.obs, tc.st, tc.c)
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Decision{}, "Reason")); diff != "" {
				t.Errorf("Next (-want +got):\n%s\nreason: %s", diff, got.Reason)
			}
			if !strings.Contains(got.Reason, tc.wantReason) {
				t.Errorf("reason %q does not say %q", got.Reason, tc.wantReason)
			}
		})
	}
}
