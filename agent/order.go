package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

// Order between apps (gitpace.yaml dependsOn and waves) decides when an
// app's NEW revision may be applied; it reads only what every app's state
// says (views, kept in memory from each save and persisted in the app's
// state ConfigMap), so a restarted agent decides exactly as the one it
// replaces.

// orderView is what the order between apps reads of an app's state.
type orderView struct {
	hash     string // state.App.ContentHash: the content applied
	phase    state.Phase
	health   health.Health
	reason   string
	rejected bool
	// rejectedHash is the content hash of the rejected revision
	// (state.Rejection.ContentHash): "" when it could not be built.
	rejectedHash string
	readyAt      time.Time // state.App.ReadyAt, valid for readyHash
	ready        string    // state.App.ReadyHash
}

// readyAt reports whether the app is Synced and Healthy at content hash.
func (v orderView) readyFor(hash string) bool {
	return hash != "" && v.hash == hash && v.phase == state.Synced && v.health == health.Healthy
}

// failedFor reports whether the app's revision of content hash failed: its
// rollout failed or is Degraded, or that revision was rejected. hash ""
// is a revision that cannot be built, so any rejection is of it (or is
// replaced by its own on the app's next pass); a rejection of other
// content (a commit since fixed it) is not a failure of this one, so that
// the next good commit goes on in its wave.
func (v orderView) failedFor(hash string) bool {
	if v.rejected && (hash == "" || v.rejectedHash == hash) {
		return true
	}
	return v.hash == hash && (v.phase == state.Failed || v.health == health.Degraded)
}

// describe says where an app stands, for a waiting reason.
func (v orderView) describe() string {
	switch {
	case v.phase == "":
		return "not applied yet"
	case v.reason != "" && (v.phase == state.Failed || v.health == health.Degraded):
		// Only a failure's reason: another state's is stale as soon as it moves.
		return fmt.Sprintf("%s/%s: %s", v.phase, orNone(string(v.health)), firstLine(v.reason))
	default:
		return fmt.Sprintf("%s/%s", v.phase, orNone(string(v.health)))
	}
}

func orNone(s string) string {
	if s == "" {
		return "unknown health"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// viewReader reads the views one at a time (a wave of a thousand apps is
// not copied for every app that asks).
type viewReader struct{ a *Agent }

func (r viewReader) of(app string) orderView {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	return r.a.views[app]
}

// orderPlan is the order between the apps of one pass.
type orderPlan struct {
	// cycles: the dependsOn cycle each app on one is part of, or the
	// cycle its dependsOn makes with the waves.
	cycles map[string]string
	// members are the revision's apps of each wave, and the agent's apps
	// that left git whose names the wave matches (removed), sorted.
	members [][]string
	removed map[string]bool
	// rollouts are the waves' rollout IDs (waveRollouts).
	rollouts []string
	// promoted are the approvals of PROMOTE-WAVES; promoteErr its error.
	promoted   sources.WavePromotions
	promoteErr error
}

// newOrderPlan computes the order of rev's apps under cfg; known are the
// agent's apps (those that left git are pruned in their wave).
func newOrderPlan(cfg *policies.Config, rev *revision.Revision, files map[string][]byte, known []string) *orderPlan {
	o := &orderPlan{removed: map[string]bool{}}
	names := make([]string, 0, len(rev.Apps))
	for _, b := range rev.Apps {
		names = append(names, b.Name())
	}
	o.cycles = cfg.OrderCycles(names)
	if cfg != nil && len(cfg.Waves) > 0 {
		o.members = make([][]string, len(cfg.Waves))
		for _, n := range names {
			if k := cfg.WaveOf(n); k >= 0 {
				o.members[k] = append(o.members[k], n)
			}
		}
		for _, n := range known {
			if k := cfg.WaveOf(n); k >= 0 && rev.ByName[n] == nil {
				o.members[k] = append(o.members[k], n)
				o.removed[n] = true
			}
		}
		for _, m := range o.members {
			sort.Strings(m)
		}
		o.waveRollouts(rev)
	}
	if data, ok := files[sources.WavePromoteFile]; ok {
		o.promoted, o.promoteErr = sources.ParseWavePromotions(data)
	}
	return o
}

// waveRollouts names the rollout of each wave: its apps at their newest
// content (rev; "" for one that left git). It changes whenever a commit
// changes an app of the wave, so an approval (PROMOTE-WAVES) releases
// exactly one rollout.
func (o *orderPlan) waveRollouts(rev *revision.Revision) {
	o.rollouts = make([]string, len(o.members))
	for k, ms := range o.members {
		h := sha256.New()
		for _, m := range ms {
			var c string
			if b := rev.ByName[m]; b != nil {
				c = b.ContentHash
			}
			fmt.Fprintf(h, "%s\x00%s\x00", m, c)
		}
		o.rollouts[k] = fmt.Sprintf("w%d-%s", k+1, hex.EncodeToString(h.Sum(nil)[:4]))
	}
}

// newest is the content app has in pass p: "" for an app that left git
// (its newest revision is its removal).
func (p *pass) newest(app string) string {
	if b := p.rev.ByName[app]; b != nil {
		return b.ContentHash
	}
	return ""
}

// orderCycle is the error of an app on a dependsOn cycle (or one its
// dependsOn makes with the waves), nil for the others.
func orderCycle(p *pass, app string) error {
	if c, ok := p.order.cycles[app]; ok {
		return fmt.Errorf("%s: apps[].dependsOn: dependency cycle %s", p.cfg.File, c)
	}
	return nil
}

// orderWait says why app's new revision (its removal when it left git)
// must wait for other apps, with the time to look again (zero: when
// another app's state changes, or orderRetry); "" when it may go. A
// rollback (rollback set: the content matches an earlier revision of the
// app) is not held by waves, as windows do not hold it: a revert must not
// queue behind the waves it reverts. It also sets st.Wave.NextAt.
func (a *Agent) orderWait(p *pass, st *state.App, rollback bool) (why string, at time.Time) {
	app := st.Name
	if st.Wave != nil {
		st.Wave.NextAt = nil
	}
	views := viewReader{a}
	for _, dep := range p.cfg.DependsOn(app) {
		if p.order.removed[app] {
			break // a removal waits for no dependency
		}
		b := p.rev.ByName[dep]
		switch {
		case b == nil:
			return fmt.Sprintf("app %s, which it dependsOn, is not in revision %s", dep, p.snap.Revision.Short()), time.Time{}
		case b.Err != nil || b.Transient != nil:
			return fmt.Sprintf("app %s, which it dependsOn, has an invalid revision %s", dep, p.snap.Revision.Short()), time.Time{}
		case views.of(dep).hash != b.ContentHash:
			return fmt.Sprintf("app %s, which it dependsOn, has not applied revision %s yet (%s)", dep, p.snap.Revision.Short(), views.of(dep).describe()), time.Time{}
		case !views.of(dep).readyFor(b.ContentHash):
			return fmt.Sprintf("app %s, which it dependsOn, is not Healthy at revision %s yet (%s)", dep, p.snap.Revision.Short(), views.of(dep).describe()), time.Time{}
		}
	}
	k := p.cfg.WaveOf(app)
	if k < 0 || rollback {
		return "", time.Time{}
	}
	waves := p.cfg.Waves
	now := a.cfg.Now()
	for i := 0; i < k; i++ {
		var done time.Time
		for _, m := range p.order.members[i] {
			v, newest := views.of(m), p.newest(m)
			switch {
			case p.order.removed[m]:
				return fmt.Sprintf("wave %d of %d waits for wave %d: app %s, removed from git, is not pruned yet", k+1, len(waves), i+1, m), time.Time{}
			case v.failedFor(newest):
				return fmt.Sprintf("waves stopped: app %s of wave %d failed (%s)", m, i+1, v.describe()), time.Time{}
			case v.hash != newest:
				return fmt.Sprintf("wave %d of %d waits for wave %d: app %s has not applied its new revision yet (%s)", k+1, len(waves), i+1, m, v.describe()), time.Time{}
			case !v.readyFor(newest):
				return fmt.Sprintf("wave %d of %d waits for wave %d: app %s is %s", k+1, len(waves), i+1, m, v.describe()), time.Time{}
			}
			if v.ready == newest && v.readyAt.After(done) {
				done = v.readyAt
			}
		}
		if start := done.Add(waves[i].IntervalDuration()); now.Before(start) {
			t := start.UTC().Truncate(time.Second) // as state times are written
			if i < k-1 {
				// The interval starts wave i+2, not this one: it still
				// waits for that wave (and a manual one for its promote).
				return fmt.Sprintf("wave %d of %d waits for wave %d, which starts at %s, %s after wave %d was Healthy", k+1, len(waves), i+2, t.Format(time.RFC3339), waves[i].Interval, i+1), start
			}
			st.Wave.NextAt = &t
			return fmt.Sprintf("wave %d of %d starts at %s, %s after wave %d was Healthy", k+1, len(waves), t.Format(time.RFC3339), waves[i].Interval, i+1), start
		}
	}
	members := p.order.members[k]
	var pending []string
	inFlight := 0
	for _, m := range members {
		v, newest := views.of(m), p.newest(m)
		switch {
		case m != app && !p.order.removed[m] && v.failedFor(newest):
			return fmt.Sprintf("waves stopped: app %s of wave %d failed (%s)", m, k+1, v.describe()), time.Time{}
		case p.order.removed[m] || v.hash != newest:
			pending = append(pending, m)
		case !v.readyFor(newest):
			inFlight++
		}
	}
	if waves[k].Manual {
		switch {
		case p.order.promoteErr != nil:
			return fmt.Sprintf("wave %d of %d is manual, and %s", k+1, len(waves), p.order.promoteErr), time.Time{}
		case !p.order.promoted.Approves(k+1, st.Wave.Rollout):
			return fmt.Sprintf("wave %d of %d is manual: waits for `gitpace promote --wave %d` (rollout %s)", k+1, len(waves), k+1, st.Wave.Rollout), time.Time{}
		}
	}
	limit := waves[k].Limit(len(members))
	for i, m := range pending {
		if m == app && i+inFlight >= limit {
			// A stable text: the app's state is not rewritten as others move.
			return fmt.Sprintf("wave %d of %d rolls out %s at once (maxApps): waits for a slot", k+1, len(waves), plural(limit, "app")), time.Time{}
		}
	}
	return "", time.Time{}
}

// setWave records app's wave in its state (nil when no wave matches it).
func (a *Agent) setWave(p *pass, st *state.App) {
	k := p.cfg.WaveOf(st.Name)
	if k < 0 || p.order.members == nil {
		st.Wave = nil
		return
	}
	w := &state.Wave{Index: k + 1, Of: len(p.cfg.Waves), Manual: p.cfg.Waves[k].Manual}
	if w.Manual {
		w.Rollout = p.order.rollouts[k]
	}
	st.Wave = w // NextAt: set by orderWait while the app waits for an interval
}

// orderRetry is how often a revision waiting for other apps is looked at
// again at the latest; a change of another app's state queues it at once.
const orderRetry = 5 * time.Second

// publishView records st for the order between apps and, when it changed
// how other apps may see it, queues the apps that wait for others.
func (a *Agent) publishView(st *state.App) {
	if st.Phase == state.Synced && st.Health == health.Healthy && st.ContentHash != "" && st.ReadyHash != st.ContentHash {
		st.ReadyHash, st.ReadyAt = st.ContentHash, a.cfg.Now().UTC()
	}
	v := orderView{hash: st.ContentHash, phase: st.Phase, health: st.Health, reason: st.Reason,
		rejected: st.Rejected != nil, readyAt: st.ReadyAt, ready: st.ReadyHash}
	if st.Rejected != nil {
		v.rejectedHash = st.Rejected.ContentHash
	}
	a.mu.Lock()
	old, had := a.views[st.Name]
	a.views[st.Name] = v
	var waiting []string
	if !had || old.hash != v.hash || old.phase != v.phase || old.health != v.health || old.rejected != v.rejected || old.rejectedHash != v.rejectedHash {
		for app := range a.orderWaiting {
			if app != st.Name {
				waiting = append(waiting, app)
			}
		}
	}
	a.mu.Unlock()
	for _, app := range waiting {
		a.enqueue(app, wantDiff)
	}
}

// markOrderWaiting records whether app waits for other apps.
func (a *Agent) markOrderWaiting(app string, waits bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if waits {
		a.orderWaiting[app] = true
	} else {
		delete(a.orderWaiting, app)
	}
}

// appNames are the names of the agent's apps (those with state).
func (a *Agent) appNames() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return sortedKeys(a.apps)
}

// keepInForce corrects drift of the revision in force while the app's new
// revision waits for other apps (drift correction never waits) or is
// rejected (keepRejected); why says which, in the drift line printed. The
// objects applied at st.Applied are diffed, cache-fed by their
// fingerprints unless fresh (a drift mark: the watch saw a change the
// cache may not have yet; withDriftMark), and what differs (an
// edit, a deletion by hand) is applied again; nothing is pruned. It
// returns only transient errors; a revision in force that cannot be read
// again is logged and left.
func (a *Agent) keepInForce(ctx context.Context, st *state.App, why string, fresh bool) error {
	if st.Applied == nil || len(st.Inventory) == 0 {
		return nil
	}
	objs, err := a.inForceObjects(ctx, st)
	if err != nil {
		a.cfg.Log.Warn("reading the revision in force to correct drift", "app", st.Name, "commit", st.Applied.Short(), "err", err)
		return nil
	}
	fps := st.Fingerprints
	if fresh {
		fps = nil
	}
	diff, err := a.applier.Diff(ctx, objs, appliers.WithFingerprints(fps))
	if err == nil {
		var conflict string
		objs, diff, conflict = a.leaveShared(objs, diff) // shared.go
		a.noteConflict(st, conflict)
	}
	if err == nil && diff.Changed() {
		var applied appliers.ChangeSet
		applied, err = a.applier.Apply(ctx, objs, diff)
		var drifted []string
		for _, c := range applied {
			a.expect(c.Ref, c.Generation)
			if c.Fingerprint != "" {
				if st.Fingerprints == nil {
					st.Fingerprints = map[string]string{}
				}
				st.Fingerprints[c.Ref.Key()] = c.Fingerprint
			}
			if c.Action == appliers.Configured || c.Action == appliers.Created || c.Action == appliers.Recreated {
				drifted = append(drifted, c.Ref.String())
			}
		}
		if len(drifted) > 0 {
			a.printf("app %s: drift: %s differed from revision %s, in force while %s; re-applied (%s)",
				st.Name, strings.Join(drifted, ", "), st.Applied.Short(), why, applied.Summary())
		}
	}
	if err != nil {
		if isTransient(err) {
			return err
		}
		a.cfg.Log.Warn("correcting drift of the revision in force", "app", st.Name, "commit", st.Applied.Short(), "err", err)
	}
	return nil
}

type driftMarkKey struct{}

// withDriftMark returns ctx marking a reconcile run because a watch saw an
// object of the app change (wantDiff without wantFull).
func withDriftMark(ctx context.Context) context.Context {
	return context.WithValue(ctx, driftMarkKey{}, true)
}

// driftMarked reports whether ctx comes from withDriftMark.
func driftMarked(ctx context.Context) bool {
	v, _ := ctx.Value(driftMarkKey{}).(bool)
	return v
}

// inForceObjects are the app's objects at the revision in force, as
// applied, deep copies; read from git once per revision in force.
func (a *Agent) inForceObjects(ctx context.Context, st *state.App) ([]*unstructured.Unstructured, error) {
	key := st.Applied.Commit + "/" + st.ContentHash
	a.mu.Lock()
	c, ok := a.inForce[st.Name]
	a.mu.Unlock()
	if !ok || c.key != key {
		objs, err := a.previousObjects(ctx, st)
		if err != nil {
			return nil, err
		}
		c = inForceObjs{key: key, objs: objs}
		a.mu.Lock()
		a.inForce[st.Name] = c
		a.mu.Unlock()
	}
	return deepCopies(c.objs), nil
}

// inForceObjs caches an app's objects at its revision in force.
type inForceObjs struct {
	key  string
	objs []*unstructured.Unstructured
}

// returnsTo reports whether content hash is that of an earlier revision in
// the app's history (a revert of an app without workload templates, which
// FindRollback cannot match).
func returnsTo(st *state.App, hash string) bool {
	for _, e := range st.History {
		if e.ContentHash == hash {
			return true
		}
	}
	return false
}
