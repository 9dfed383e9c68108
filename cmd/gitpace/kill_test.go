package main_test

// "Nothing is lost on restart": the real gitpace binary is killed with
// SIGKILL in each phase of a BCS rollout cycle (and in the middle of a
// native Deployment rollout), a new process is started with the same
// flags, and the rollout must end as if nothing had happened: every cycle
// once, in order, at its own targets, none skipped or repeated.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
	"github.com/gitpace/gitpace/state"
)

const (
	imageV0 = "hub.docker.com:xxxx/xxxxxx:v1.1.0"
	imageV1 = "hub.docker.com:xxxx/xxxxxx:v1.1.1"

	readyDelay  = "pod-ready.stage.kwok.x-k8s.io/delay"
	deleteDelay = "pod-delete.stage.kwok.x-k8s.io/delay"
)

// The BCS deployment of these tests: the seed's, with 3 instances, one pod
// created and one deleted per cycle (3 cycles), 2 s between cycles, new pods
// Ready 2 s after creation and old pods gone 2 s after deletion, so that
// each phase lasts about 2 s and a kill lands in it.
const (
	instance        = 3
	maxSurge        = 1
	maxUnavailable  = 1
	upgradeDuration = 2 * time.Second
)

var versioned = regexp.MustCompile(`^test-v[0-9]+$`)

// bcsManifest is seed file name (a BCS v4 deployment) in namespace ns with
// the test's strategy, rollingOrder order, no placement constraint (3 fake
// nodes cannot hold old and new pods one per host) and podAnnotations on
// its pod template (BCS maps spec.template.metadata.annotations to pods).
func bcsManifest(t *testing.T, name, ns, order string, podAnnotations map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	obj := func(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }
	delete(d, "constraint")
	obj(d, "metadata")["namespace"] = ns
	spec := obj(d, "spec")
	spec["instance"] = instance
	ru := obj(obj(spec, "strategy"), "rollingupdate")
	ru["maxSurge"], ru["maxUnavailable"] = maxSurge, maxUnavailable
	ru["upgradeDuration"], ru["rollingOrder"] = int(upgradeDuration/time.Second), order
	tm := obj(obj(spec, "template"), "metadata")
	tm["namespace"], tm["annotations"] = ns, podAnnotations
	out, err := json.MarshalIndent(d, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// cycleTargets are the targets BCS fixes for cycles 1..n of this rollout.
func cycleTargets() []paced.Targets {
	var out []paced.Targets
	for nw, old := int32(0), int32(instance); nw < instance || old > 0; {
		nw, old = min(nw+maxSurge, instance), max(old-maxUnavailable, 0)
		out = append(out, paced.Targets{New: nw, Old: old})
	}
	return out
}

// phaseRank orders the phases of one cycle: start and delete phase in the
// rollingOrder, then Idle (the cycle ended).
func phaseRank(order string, p paced.Phase) int {
	switch p {
	case paced.PhaseStarting:
		if order == "CreateFirst" {
			return 1
		}
		return 2
	case paced.PhaseDeleting:
		if order == "CreateFirst" {
			return 2
		}
		return 1
	case paced.PhaseIdle:
		return 3
	}
	return 0
}

type killCase struct {
	order string      // rollingOrder
	phase paced.Phase // the phase to kill in
	cycle int32       // of this cycle
	// acted: kill once the phase's scale has reached the API server (the
	// agent waits for pods); else the moment the persisted state shows the
	// phase (write-ahead: its scale may or may not have gone out).
	acted bool
}

func (c killCase) name() string {
	s := c.order
	if c.acted {
		s += "/after-scale"
	} else if c.phase != paced.PhaseIdle {
		s += "/at-state-write"
	}
	return s
}

// TestKillInStartPhase: SIGKILL while a cycle's new pods are being brought
// up (cycle 2 of 3), then restart.
func TestKillInStartPhase(t *testing.T) {
	t.Parallel()
	runKillCases(t, paced.PhaseStarting, 2, true)
}

// TestKillInDeletePhase: SIGKILL while a cycle's old pods are going away
// (cycle 2 of 3), then restart.
func TestKillInDeletePhase(t *testing.T) {
	t.Parallel()
	runKillCases(t, paced.PhaseDeleting, 2, true)
}

// TestKillBetweenCycles: SIGKILL while waiting upgradeDuration after cycle
// 1, then restart: the wait counts from cycle 1's persisted end.
func TestKillBetweenCycles(t *testing.T) {
	t.Parallel()
	runKillCases(t, paced.PhaseIdle, 1, false)
}

func runKillCases(t *testing.T, phase paced.Phase, cycle int32, bothKillPoints bool) {
	for _, order := range []string{"CreateFirst", "DeleteFirst"} {
		cases := []killCase{{order: order, phase: phase, cycle: cycle}}
		if bothKillPoints {
			cases = append(cases, killCase{order: order, phase: phase, cycle: cycle, acted: true})
		}
		for _, c := range cases {
			t.Run(c.name(), func(t *testing.T) {
				t.Parallel()
				testKillBCS(t, c)
			})
		}
	}
}

func testKillBCS(t *testing.T, c killCase) {
	start := time.Now()
	cs := testenv.Client(t)
	ns, stateNS := testenv.Namespace(t), testenv.Namespace(t)
	repo := gittest.New(t)
	rec := watchReplicaSets(t, cs, ns, "test")
	ctx := within(t, 2*time.Minute)

	repo.Commit("bcs v1.1.0", map[string]string{"apps/web/test.json": bcsManifest(t, "test1-1-0.json", ns, c.order,
		map[string]string{deleteDelay: "2s"})})
	first := startAgent(t, "first (killed)", runArgs(repo.Dir, ns, stateNS)...)
	firstCtx := first.alive(ctx)
	if err := rec.until(firstCtx, "application test at 3 Ready", func(r *rsLog) bool {
		rs := r.live["test"]
		return rs != nil && rs.Status.ReadyReplicas == instance && r.cur().Phase == paced.PhaseSteady
	}); err != nil {
		t.Fatal(err)
	}
	update := repo.Commit("bcs v1.1.1 on 8888", map[string]string{"apps/web/test.json": bcsManifest(t, "test1-1-1.json", ns, c.order,
		map[string]string{readyDelay: "2s"})})
	rolloutStart := time.Now()

	// Kill the moment the rollout is where the case says.
	var killState, killRaw string
	var scaled bool
	if err := rec.until(firstCtx, fmt.Sprintf("%s in cycle %d", c.phase, c.cycle), func(r *rsLog) bool {
		st := r.cur()
		if !st.InRollout() || st.Phase != c.phase || st.Cycle != c.cycle {
			return false
		}
		scaled = c.phase == paced.PhaseStarting && r.replicas(st.New) == st.Target.New ||
			c.phase == paced.PhaseDeleting && r.replicas(st.Base) == st.Target.Old
		if c.acted && !scaled {
			return false
		}
		killState, killRaw = r.describe(), r.curRaw()
		return true
	}); err != nil {
		t.Fatal(err)
	}
	first.kill(t)
	killedAt := time.Now()
	atDeath, deathDesc := clusterState(t, cs, ns)
	t.Logf("killed %s in %s of cycle %d (its scale seen before the kill: %v) at %s into the rollout\n  watch at kill: %s\n  cluster after death: %s",
		c.order, c.phase, c.cycle, scaled, killedAt.Sub(rolloutStart).Round(time.Millisecond), killState, deathDesc)
	var dead paced.State
	if err := json.Unmarshal([]byte(atDeath), &dead); err != nil {
		t.Fatalf("state after death: %v", err)
	}
	if dead.Phase != c.phase || dead.Cycle != c.cycle {
		t.Errorf("the kill did not land in %s of cycle %d: the state the dead agent left is %s (at kill time: %s)", c.phase, c.cycle, atDeath, killRaw)
	}

	second := startAgent(t, "second (restarted)", runArgs(repo.Dir, ns, stateNS)...)
	secondCtx := second.alive(ctx)
	if err := rec.until(secondCtx, "the rollout to end: only test-v<seconds>, 3 Ready, v1.1.1", func(r *rsLog) bool {
		st := r.cur()
		rs := r.live[st.Base]
		return len(r.live) == 1 && st.Phase == paced.PhaseSteady && rs != nil && versioned.MatchString(rs.Name) &&
			*rs.Spec.Replicas == instance && rs.Status.ReadyReplicas == instance &&
			rs.Spec.Template.Spec.Containers[0].Image == imageV1
	}); err != nil {
		t.Fatal(err)
	}
	done := time.Now()
	checkBCSRollout(t, c, rec)

	app, err := untilAppState(secondCtx, cs, stateNS, "web", func(a *state.App) bool {
		l := a.Last()
		return a.Phase == state.Synced && l != nil && l.Revision.Commit == update && l.Outcome == state.RolledOut
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRevision(app.History, update); n != 1 || len(app.History) != 2 {
		t.Errorf("history has %d entries, %d of them for %s, want 2 and 1: %+v", len(app.History), n, update[:7], app.History)
	}
	t.Logf("timings: setup+create %s, rollout until kill %s, restart to done %s, total %s",
		rolloutStart.Sub(start).Round(time.Millisecond), killedAt.Sub(rolloutStart).Round(time.Millisecond),
		done.Sub(killedAt).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// clusterState reads the winning rollout state (highest Seq) from the
// deployment's ReplicaSets as they are now, and describes their replicas.
func clusterState(t *testing.T, cs kubernetes.Interface, ns string) (raw, desc string) {
	t.Helper()
	l, err := cs.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{LabelSelector: vocab.LabelDeployment + "=test"})
	if err != nil {
		t.Fatal(err)
	}
	bestSeq := int64(-1)
	for _, rs := range l.Items {
		desc += fmt.Sprintf("%s %d/%d ready; ", rs.Name, rs.Status.ReadyReplicas, *rs.Spec.Replicas)
		v := rs.Annotations[paced.AnnotationState]
		var st paced.State
		if json.Unmarshal([]byte(v), &st) == nil && st.Seq > bestSeq {
			raw, bestSeq = v, st.Seq
		}
	}
	return raw, desc + "state " + raw
}

// checkBCSRollout checks what rec saw of the whole rollout.
func checkBCSRollout(t *testing.T, c killCase, rec *rsLog) {
	t.Helper()
	steps, states, raw, maxLive, bad := rec.snapshot()
	for _, b := range bad {
		t.Errorf("seen during the rollout: %s", b)
	}
	if maxLive > 2 {
		t.Errorf("%d applications at once, want at most 2", maxLive)
	}
	final := states[len(states)-1]
	rollout := final.Base
	targets := cycleTargets()
	wantNew, wantOld := []int32{0}, []int32{instance}
	for _, tg := range targets {
		if tg.New != wantNew[len(wantNew)-1] {
			wantNew = append(wantNew, tg.New)
		}
		if tg.Old != wantOld[len(wantOld)-1] {
			wantOld = append(wantOld, tg.Old)
		}
	}
	if diff := cmp.Diff(wantNew, steps[rollout]); diff != "" {
		t.Errorf("new application %s: spec.replicas steps (-want +got):\n%s", rollout, diff)
	}
	if diff := cmp.Diff(wantOld, steps["test"]); diff != "" {
		t.Errorf("old application test: spec.replicas steps (-want +got):\n%s", diff)
	}

	// The state's way through the rollout: cycles 1..n in order, each with
	// its own targets, phases in rollingOrder within a cycle, upgradeDuration
	// between cycles. Its timestamps are written once: a cycle or phase
	// that started again (a repeat) or a clock restarted by the new process
	// (a lost timestamp) shows as a second value.
	var trail []string
	prevCycle, prevRank := int32(0), 0
	once := map[string]time.Time{}
	same := func(what string, at time.Time, i int) {
		t.Helper()
		if first, ok := once[what]; ok && !first.Equal(at) {
			t.Errorf("%s was %s, then %s: %s", what, first.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano), raw[i])
		}
		once[what] = at
	}
	for i, st := range states {
		if st.New != rollout {
			continue
		}
		trail = append(trail, fmt.Sprintf("%d:%s", st.Cycle, st.Phase))
		rank := phaseRank(c.order, st.Phase)
		switch {
		case st.Cycle < prevCycle || st.Cycle > prevCycle+1:
			t.Errorf("cycle went from %d to %d (skipped or went back): %s", prevCycle, st.Cycle, raw[i])
		case st.Cycle == prevCycle && rank < prevRank:
			t.Errorf("cycle %d went back to its %s phase (a repeat): %s", st.Cycle, st.Phase, raw[i])
		}
		same("the rollout's start", st.RolloutStart, i)
		if st.Cycle >= 1 {
			if int(st.Cycle) > len(targets) {
				t.Errorf("cycle %d: the rollout needs only %d: %s", st.Cycle, len(targets), raw[i])
			} else if want := targets[st.Cycle-1]; st.Target != want {
				t.Errorf("cycle %d targets %+v, want %+v: %s", st.Cycle, st.Target, want, raw[i])
			}
			same(fmt.Sprintf("cycle %d's start", st.Cycle), st.CycleStart, i)
			if st.Phase == paced.PhaseIdle {
				same(fmt.Sprintf("cycle %d's end", st.Cycle), st.LastCycleEnd, i)
			} else {
				same(fmt.Sprintf("the start of cycle %d's %s phase", st.Cycle, st.Phase), st.PhaseStart, i)
			}
			if st.Cycle >= 2 && st.Phase != paced.PhaseIdle {
				same(fmt.Sprintf("cycle %d's end", st.Cycle-1), st.LastCycleEnd, i)
				if gap := st.CycleStart.Sub(st.LastCycleEnd); gap < upgradeDuration {
					t.Errorf("cycle %d started %s after cycle %d ended, before upgradeDuration %s: %s", st.Cycle, gap, st.Cycle-1, upgradeDuration, raw[i])
				}
			}
		}
		prevCycle, prevRank = st.Cycle, rank
	}
	var gaps []string
	for k := int32(2); k <= int32(len(targets)); k++ {
		end, start := once[fmt.Sprintf("cycle %d's end", k-1)], once[fmt.Sprintf("cycle %d's start", k)]
		gaps = append(gaps, fmt.Sprintf("%d→%d %s", k-1, k, start.Sub(end).Round(time.Millisecond)))
	}
	if prevCycle != int32(len(targets)) {
		t.Errorf("the rollout ended after cycle %d, want %d", prevCycle, len(targets))
	}
	if final.Phase != paced.PhaseSteady || final.New != "" || !versioned.MatchString(rollout) {
		t.Errorf("final state %s, want Steady on test-v<seconds>", raw[len(raw)-1])
	}
	t.Logf("state trail (cycle:phase): %s; replica steps: %v; between cycles: %s", strings.Join(trail, " "), steps, strings.Join(gaps, ", "))
}

func countRevision(h []state.Entry, commit string) int {
	n := 0
	for _, e := range h {
		if e.Revision.Commit == commit {
			n++
		}
	}
	return n
}

// TestKillDeploymentMidRollout: a native Deployment rolled by Kubernetes'
// controller; SIGKILL the agent right after it applied the new template
// ("applied": its history may not be written yet), once it recorded the
// revision as rolling out ("recorded"), or while it follows the rollout
// the controller has begun ("following"); a new process finishes following
// the rollout and records the revision once, rolled out.
func TestKillDeploymentMidRollout(t *testing.T) {
	t.Parallel()
	for _, when := range []string{"applied", "recorded", "following"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			testKillDeployment(t, when)
		})
	}
}

func testKillDeployment(t *testing.T, when string) {
	start := time.Now()
	cs := testenv.Client(t)
	ns, stateNS := testenv.Namespace(t), testenv.Namespace(t)
	repo := gittest.New(t)
	ctx := within(t, 2*time.Minute)
	seedYAML := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "seed", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	first := repo.Commit("deploy v1.1.0", map[string]string{"apps/web/test.yaml": seedYAML("test1-1-0.yaml")})
	p1 := startAgent(t, "first (killed)", runArgs(repo.Dir, ns, stateNS)...)
	ctx1 := p1.alive(ctx)
	if _, err := untilDeployment(ctx1, cs, ns, "test", func(d *appsv1.Deployment) bool { return rolledOut(d, imageV0) }); err != nil {
		t.Fatal(err)
	}
	if _, err := untilAppState(ctx1, cs, stateNS, "web", func(a *state.App) bool {
		return a.Phase == state.Synced && len(a.History) == 1 && a.History[0].Outcome == state.RolledOut
	}); err != nil {
		t.Fatal(err)
	}

	v1 := strings.Replace(seedYAML("test1-1-1.yaml"), "    metadata:\n      labels:\n        app: test\n",
		"    metadata:\n      annotations:\n        "+readyDelay+": \"3s\"\n      labels:\n        app: test\n", 1)
	if !strings.Contains(v1, readyDelay) {
		t.Fatal("the seed's pod template changed: no place for the readiness delay")
	}
	update := repo.Commit("v1.1.1 listening on 8888", map[string]string{"apps/web/test.yaml": v1})
	rolloutStart := time.Now()
	var err error
	switch when {
	case "applied":
		_, err = untilDeployment(ctx1, cs, ns, "test", func(d *appsv1.Deployment) bool {
			return d.Spec.Template.Spec.Containers[0].Image == imageV1
		})
	case "recorded", "following":
		_, err = untilAppState(ctx1, cs, stateNS, "web", func(a *state.App) bool {
			l := a.Last()
			return l != nil && l.Revision.Commit == update && l.Outcome == state.RollingOut && a.Phase == state.Progressing
		})
		if err == nil && when == "following" {
			_, err = untilDeployment(ctx1, cs, ns, "test", func(d *appsv1.Deployment) bool {
				return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas > 0 && !rolledOut(d, imageV1)
			})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	p1.kill(t)
	killedAt := time.Now()
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rolledOut(d, imageV1) {
		t.Errorf("the kill came after the rollout ended: %+v", d.Status)
	}
	before, err := state.NewStore(cs, stateNS).Find(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s at %s into the rollout: Deployment generation %d (observed %d), %d/%d updated, %d available; history then: %s",
		when, killedAt.Sub(rolloutStart).Round(time.Millisecond), d.Generation, d.Status.ObservedGeneration,
		d.Status.UpdatedReplicas, *d.Spec.Replicas, d.Status.AvailableReplicas, historyLine(before.History))

	p2 := startAgent(t, "second (restarted)", runArgs(repo.Dir, ns, stateNS)...)
	ctx2 := p2.alive(ctx)
	if _, err := untilDeployment(ctx2, cs, ns, "test", func(d *appsv1.Deployment) bool { return rolledOut(d, imageV1) }); err != nil {
		t.Fatal(err)
	}
	app, err := untilAppState(ctx2, cs, stateNS, "web", func(a *state.App) bool {
		l := a.Last()
		return a.Phase == state.Synced && l != nil && l.Revision.Commit == update && l.Outcome == state.RolledOut
	})
	if err != nil {
		t.Fatal(err)
	}
	done := time.Now()

	// The CLI reads the same history.
	out, err := exec.Command(gitpaceBin, "history", "web", "-o", "json", "--kubeconfig", testenv.Kubeconfig(), "--state-namespace", stateNS).Output()
	if err != nil {
		t.Fatalf("gitpace history: %v\n%s", err, out)
	}
	var hist []state.Entry
	if err := json.Unmarshal(out, &hist); err != nil {
		t.Fatalf("gitpace history -o json: %v\n%s", err, out)
	}
	type row struct {
		N       int
		Commit  string
		Outcome state.Outcome
	}
	rows := func(h []state.Entry) []row {
		var out []row
		for _, e := range h {
			out = append(out, row{e.N, e.Revision.Commit, e.Outcome})
		}
		return out
	}
	want := []row{{1, first, state.RolledOut}, {2, update, state.RolledOut}}
	if diff := cmp.Diff(want, rows(hist)); diff != "" {
		t.Errorf("gitpace history web (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, rows(app.History)); diff != "" {
		t.Errorf("app state history (-want +got):\n%s", diff)
	}

	// Kubernetes rolled once: revision 2, two ReplicaSets, the change-cause
	// names the commit.
	d, err = cs.AppsV1().Deployments(ns).Get(context.Background(), "test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Annotations["deployment.kubernetes.io/revision"]; r != "2" {
		t.Errorf("Deployment revision %q, want 2 (one rollout)", r)
	}
	if cause := d.Annotations["kubernetes.io/change-cause"]; !strings.Contains(cause, update[:7]) {
		t.Errorf("change-cause %q does not name commit %s", cause, update[:7])
	}
	rss, err := cs.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss.Items) != 2 {
		t.Errorf("%d ReplicaSets, want 2 (v1.1.0 and v1.1.1)", len(rss.Items))
	}
	t.Logf("timings: setup %s, rollout until kill %s, restart to recorded %s, total %s",
		rolloutStart.Sub(start).Round(time.Millisecond), killedAt.Sub(rolloutStart).Round(time.Millisecond),
		done.Sub(killedAt).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func historyLine(h []state.Entry) string {
	var parts []string
	for _, e := range h {
		parts = append(parts, fmt.Sprintf("%d %s %s", e.N, e.Revision.Short(), e.Outcome))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// rolledOut is `kubectl rollout status` done, on image.
func rolledOut(d *appsv1.Deployment, image string) bool {
	if d == nil || d.Spec.Template.Spec.Containers[0].Image != image {
		return false
	}
	want := *d.Spec.Replicas
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.Replicas == want && d.Status.AvailableReplicas == want
}
