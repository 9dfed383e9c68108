package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/manifest"
	"github.com/gitpace/gitpace/state"
)

// pass is a revision published to the workers: every app is reconciled
// against the newest pass (its objects, gitpace.yaml, gates).
type pass struct {
	snap  *sources.Snapshot
	rev   *revision.Revision
	cfg   *policies.Config
	gates []policies.Gate
	// held, when set, holds every app of the agent and of the revision
	// (guardEmpty): nothing is applied, nothing is pruned.
	held string
	// order is the order between the revision's apps (dependsOn, waves).
	order *orderPlan
	// inputs is each app's inputKey: a new head queues the apps whose key
	// changed (changedApps).
	inputs map[string]string
}

// ReconcileOnce runs one pass: the source, then, Concurrency at a time,
// every app the pass concerns (on a new head those whose inputs changed,
// see changedApps; all of them on a resync; those marked by a watch or due
// for a retry always). When the branch head did
// not move, nothing is marked and no resync is due, it makes no cluster
// request at all. It returns the source's error, or the apps' transient
// failures; those apps are retried by the next call.
func (a *Agent) ReconcileOnce(ctx context.Context) error {
	apps, err := a.sourcePass(ctx)
	if err != nil {
		return err
	}
	if err := a.runApps(ctx, apps); err != nil {
		a.cfg.Metrics.reconcile("error")
		return err
	}
	return nil
}

// sourcePass fetches the branch head and, when it moved or a resync or
// window edge is due, builds the revision, publishes it as the pass in
// force and returns the apps it concerns: on a resync or window edge every
// app (those of the revision and those that left it), marked for a full
// diff; on a new head those whose inputs changed, with those marked by
// watches and retries (changedApps). Otherwise it returns the apps marked
// by watches and retries. It writes nothing but the
// adoption of legacy state; applying is the workers' (syncApp).
func (a *Agent) sourcePass(ctx context.Context) ([]string, error) {
	if err := a.loadState(ctx); err != nil {
		a.cfg.Metrics.reconcile("source_error")
		return nil, err
	}
	now := a.cfg.Now()
	a.mu.Lock()
	since, snap := a.lastHead, (*sources.Snapshot)(nil)
	if a.current != nil {
		snap = a.current.snap
	}
	first := a.lastFull.IsZero()
	full := first || now.Sub(a.lastFull) >= a.cfg.Resync
	if !a.wake.IsZero() && !now.Before(a.wake) {
		full, a.wake = true, time.Time{} // a window opened or closed
	}
	wants := wantFull
	if !first {
		wants |= wantRetry // a resync or window edge, not a (re)start
	}
	a.mu.Unlock()

	fresh, err := a.cfg.Source.Fetch(ctx, since)
	switch {
	case errors.Is(err, sources.ErrUnchanged):
		if !full {
			apps := a.queued()
			if len(apps) == 0 {
				a.cfg.Metrics.reconcile("idle")
			} else {
				a.cfg.Metrics.reconcile("ok")
			}
			return apps, nil
		}
	case err != nil:
		a.cfg.Metrics.reconcile("source_error")
		return nil, fmt.Errorf("source: %w", err)
	default:
		snap = fresh
		if since != "" {
			a.cfg.Log.Info("new revision", "commit", snap.Revision.Short(), "subject", snap.Revision.Subject)
		}
	}
	p, err := a.buildPass(ctx, snap)
	if err != nil {
		a.cfg.Metrics.reconcile("error")
		return nil, err
	}
	a.mu.Lock()
	prev := a.current
	a.mu.Unlock()
	if full {
		prev = nil // a resync or a window edge: every app, for a full diff
	}
	a.statesMu.Lock() // changedApps reads the states: no worker writes one meanwhile
	set, all := a.changedApps(prev, p)
	a.statesMu.Unlock()
	if !all {
		// Then those marked by a watch, or a retry that is due.
		set = appendNew(set, a.queued())
	}
	a.mu.Lock()
	a.current, a.lastHead = p, snap.Revision.Commit
	if full {
		a.lastFull = now
		for _, name := range set {
			a.work[name] |= wants
		}
	}
	a.mu.Unlock()
	a.cfg.Metrics.reconcile("ok")
	return set, nil
}

// buildPass builds the agent-wide revision of snap and decides whether it
// is held whole (guardEmpty). Adopting legacy states and reading the
// agent's inventories excludes the workers (statesMu).
func (a *Agent) buildPass(ctx context.Context, snap *sources.Snapshot) (*pass, error) {
	apps := a.loader.Load(snap)
	cfg, cfgErr := policies.ConfigFromFiles(snap.Files, snap.Path)
	if cfgErr == nil {
		a.mu.Lock()
		a.onFailure = cfg.OnFailure // for failures seen until the next revision
		a.mu.Unlock()
	}
	gates := policies.Gates(policies.GateSetup{Config: cfg, KeyRing: a.cfg.KeyRing, Commits: a.lookupCommit, Files: snap.Files})
	a.reportSkipped(slices.Concat(snap.Skipped, manifest.Unread(snap)))
	a.statesMu.Lock()
	defer a.statesMu.Unlock()
	for i := range apps {
		if err := a.adoptLegacy(ctx, apps[i].Name); err != nil {
			return nil, err
		}
	}
	rev, err := a.buildRevision(snap.Revision, apps, cfgErr)
	if err != nil {
		return nil, err
	}
	lb := map[string]bool{}
	for _, b := range rev.Apps {
		for _, o := range b.Objects {
			if t, _, _ := unstructured.NestedString(o.Object, "spec", "type"); o.GetKind() == "Service" && o.GetAPIVersion() == "v1" && t == "LoadBalancer" {
				lb[appliers.RefOf(o).Key()] = true
			}
		}
	}
	a.mu.Lock()
	a.lbServices = lb
	a.mu.Unlock()
	a.origins.note(snap.Revision.Commit, rev)
	p := &pass{snap: snap, rev: rev, cfg: cfg, gates: gates, order: newOrderPlan(cfg, rev, snap.Files, a.appNames()), inputs: inputKeys(rev)}
	if p.held = a.guardEmpty(rev, snap); p.held != "" {
		if a.emptyHeld != p.held {
			a.printf("revision held: %s", p.held)
			a.cfg.Log.Warn("revision held", "reason", p.held)
			a.emptyHeld = p.held
		}
	} else {
		a.emptyHeld = ""
	}
	return p, nil
}

// loadState reads every app's state from the cluster once per process.
func (a *Agent) loadState(ctx context.Context) error {
	a.statesMu.Lock()
	defer a.statesMu.Unlock()
	if a.apps != nil {
		return nil
	}
	if err := a.store.EnsureNamespace(ctx); err != nil {
		return err
	}
	all, err := a.store.List(ctx)
	if err != nil {
		return err
	}
	apps, legacy := map[string]*state.App{}, map[string]*state.App{}
	for _, st := range all {
		switch st.Agent {
		case a.cfg.Name:
			apps[st.Name] = st
			a.own(st)
			a.publishView(st)
		case "":
			legacy[st.Name] = st
		}
	}
	a.mu.Lock()
	a.apps, a.legacy = apps, legacy
	a.mu.Unlock()
	return nil
}

// adoptLegacy moves the state of app name, written before agents had
// identities, to this agent: the first agent whose revision holds an app
// of that name reconciles it from then on. Other legacy states are never
// touched (nothing of them is pruned). The caller holds statesMu.
func (a *Agent) adoptLegacy(ctx context.Context, name string) error {
	old, ok := a.legacy[name]
	if !ok || a.getApp(name) != nil {
		return nil
	}
	st := *old
	st.Agent = a.cfg.Name
	if err := a.save(ctx, &st); err != nil {
		return err
	}
	if err := a.store.Delete(ctx, old); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.legacy, name)
	a.apps[name] = &st
	a.mu.Unlock()
	a.own(&st)
	a.cfg.Log.Info("adopted state written before agent identities", "app", name, "agent", a.cfg.Name)
	return nil
}

// reportSkipped says once, per entry, what the revision holds that gitpace
// did not read (a symlink leaving the repository, a submodule): nothing is
// dropped without a word. Those that look like manifests also reject their
// app (manifest.Load).
func (a *Agent) reportSkipped(skipped []sources.Skipped) {
	seen := map[string]string{}
	for _, sk := range skipped {
		line := sk.Path + ": " + sk.Reason
		seen[sk.Path] = line
		if a.skipped[sk.Path] != line {
			a.printf("skipped %s", line)
			a.cfg.Log.Warn("file not read", "path", sk.Path, "reason", sk.Reason)
		}
	}
	a.skipped = seen
}

// guardEmpty returns why the revision must be held (nothing is applied or
// pruned) unless --allow-empty is given: it holds no app under --path, or
// it keeps none of the agent's apps and would prune every object the agent
// manages (a wrong --repo, --path or branch; Argo CD's allowEmpty guards
// the same). An edit inside apps that keep their names is never held,
// however many objects it replaces. "" when it may go. The caller holds
// statesMu.
func (a *Agent) guardEmpty(rev *revision.Revision, snap *sources.Snapshot) string {
	if a.cfg.AllowEmpty {
		return ""
	}
	// Every object the agent manages, keyed as the server keys it; read
	// only when needed (a new head of many apps keeps most of them).
	managedObjects := func() map[string]bool {
		managed := map[string]bool{}
		for _, st := range a.apps {
			for _, r := range st.Inventory {
				managed[a.applier.Canonical(r).Key()] = true
			}
		}
		return managed
	}
	where := snap.Path
	if where == "" {
		where = "."
	}
	if len(rev.Apps) == 0 {
		if len(a.apps) == 0 {
			return fmt.Sprintf("revision %s holds no app under path %q: no directory there holds manifests (is --path right? --allow-empty accepts it)",
				snap.Revision.Short(), where)
		}
		return fmt.Sprintf("revision %s holds no app under path %q; the %s and %s in force stay (pass --allow-empty to prune them)",
			snap.Revision.Short(), where, plural(len(a.apps), "app"), plural(len(managedObjects()), "object"))
	}
	if !rev.PruneOK() {
		return ""
	}
	for name := range a.apps {
		if rev.ByName[name] != nil {
			return "" // an app goes on: an edit inside apps, however large
		}
	}
	managed := managedObjects()
	if len(managed) == 0 {
		return ""
	}
	for k := range managed {
		if _, ok := rev.Declared[k]; ok {
			return ""
		}
	}
	return fmt.Sprintf("revision %s keeps none of this agent's %s and would prune every object it manages (%d) while declaring none of them; nothing is applied or pruned (pass --allow-empty if that is meant)",
		snap.Revision.Short(), plural(len(a.apps), "app"), len(managed))
}

// lookupCommit returns the commit object for the signature gate. Every app
// of a pass asks for the same head commit, and commits never change, so the
// last one is kept: one lookup (a ref listing for a remote) per new head
// rather than one per app and pass.
func (a *Agent) lookupCommit(ctx context.Context, hash string) (*object.Commit, error) {
	a.mu.Lock()
	c := a.lastCommit
	a.mu.Unlock()
	if c != nil && c.Hash.String() == hash {
		return c, nil
	}
	c, err := a.cfg.Source.Commit(ctx, hash)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.lastCommit = c
	a.mu.Unlock()
	return c, nil
}

type appInput struct {
	pass     *pass
	app      *manifest.App
	built    *revision.App
	revision *revision.Revision
	rev      sources.Revision
	cfg      *policies.Config
	gates    []policies.Gate
	force    bool // diff against the cluster even if git did not change
	full     bool // a full resync (or window edge, or a process's first pass), not only a drift mark
	retry    bool // a resync or window edge: a revision refused at apply is tried again (wantRetry)
}

// reconcileApp is the one place where the order of decisions for an app is
// written down, highest priority first:
//
//  1. an invalid revision (manifest, BCS or gitpace.yaml error, a kind the
//     server does not serve) is rejected whole; the previous revision stays
//     in force;
//  2. the gates, in policies.Gates order: signature, PAUSE (freezes
//     in-flight Deployments), allow-lists, windows;
//  3. a PAUSE that was lifted: unpause, then go on with the newest revision;
//  4. nothing changed in git and no drift suspected: done;
//  5. server-side dry run of every object; any error rejects the revision;
//  6. new content's Helm PreSync hooks, waited for (hooks.go; PostSync
//     hooks run from refreshPhase once the app is Healthy);
//  7. apply what differs (Namespaces and CRDs first), hand BCS deployments
//     to the paced engine, then prune what git no longer holds, then record
//     the revision (rollback if its templates match an earlier one).
//
// It returns an error only for transient failures (the API server is
// unreachable), which the caller retries; bad input is recorded in the
// app's state instead.
func (a *Agent) reconcileApp(ctx context.Context, in appInput) error {
	st := a.appState(in.app.Name)
	a.setWave(in.pass, st)
	if in.force && !in.full {
		ctx = withDriftMark(ctx) // keepRejected diffs without fingerprints
	}
	b := in.built
	if b.Transient != nil {
		return b.Transient
	}
	if b.Err != nil {
		return a.reject(ctx, st, in.rev, "", b.Err)
	}
	if err := orderCycle(in.pass, st.Name); err != nil {
		// Bad gitpace.yaml: reported whether or not the app changed.
		return a.reject(ctx, st, in.rev, b.ContentHash, err)
	}
	specs, bcsObjs, objs := b.Specs, b.BCSObjects, b.Objects
	templates := revision.TemplateHashes(objs)
	for _, s := range specs {
		templates[revision.BCSRef(s.Namespace, s.Name).Key()] = s.TemplateHash
	}
	rollbackTo := revision.FindRollback(st, templates)
	hash := appContentHash(objs, in.app)
	pending := hash != st.ContentHash || st.Rejected != nil
	now := a.cfg.Now()
	err := policies.Check(ctx, in.gates, policies.GateInput{
		App: in.app.Name, Commit: in.rev.Commit, Rollback: rollbackTo != nil, Now: now, Objects: append(objs[:len(objs):len(objs)], bcsObjs...),
		Idle: !pending && st.Phase != state.Progressing && st.PausedBy == nil,
	})
	var held *policies.Held
	switch {
	case errors.As(err, &held) && held.Gate == policies.GatePause:
		if rollbackTo != nil && len(specs) > 0 {
			// BCS allows cancel while paused: a revert reaches the paced
			// engine (which cancels at once); native objects stay held.
			a.setPaced(st.Name, specs, in.app.Promote)
		}
		a.controlPaced(st.Name, true, held.Reason, in.app.Promote)
		reason := held.Reason
		if pending && rollbackTo == nil {
			// Say that a newer revision waits for the resume (status, and
			// run --once's exit code: see ReconcileAndReport).
			reason = fmt.Sprintf("revision %s waits: %s", in.rev.Short(), held.Reason)
		}
		return a.freeze(ctx, st, state.Paused, reason, in.force)
	case errors.As(err, &held) && held.Gate == policies.GateWindow:
		a.wakeAt(held.RetryAt)
		reason := fmt.Sprintf("revision %s held by window: %s", in.rev.Short(), held.Reason)
		a.controlPaced(st.Name, true, reason, in.app.Promote)
		return a.freeze(ctx, st, state.Held, reason, in.force)
	case errors.As(err, &held):
		return a.hold(ctx, st, in.rev, held)
	case err != nil:
		return err
	}
	a.controlPaced(st.Name, false, "", in.app.Promote)
	if st.Phase == state.Held && st.PausedBy == nil {
		// Every gate passes now: a hold by signature or allow-list ends
		// (window holds end through resume, below).
		st.Phase, st.Reason = state.OutOfSync, ""
	}
	if st.PausedBy != nil {
		if err := a.resume(ctx, st); err != nil {
			return err
		}
	}
	if pending || st.Phase == state.Progressing {
		// Wake when the window state next changes, to freeze at its edge.
		if ws := in.cfg.WindowState(in.app.Name, now, rollbackTo != nil); !ws.NextChange.IsZero() {
			a.wakeAt(ws.NextChange)
		}
	}
	if !pending {
		a.markOrderWaiting(st.Name, false)
	}
	if !pending && !in.force && (st.PruneHeld == "" || !in.revision.PruneOK()) {
		// (An app whose prune was held goes on to prune once every app's
		// revision is valid again.)
		if err := a.refreshPhase(ctx, st); err != nil {
			return err
		}
		if !pruneLastDue(st) || !in.revision.PruneOK() {
			return a.save(ctx, st)
		}
		// The rollout the prune waited for has finished: on to prune.
	}
	if r := st.Rejected; r != nil && r.AtApply && r.ContentHash == hash && !in.retry {
		// Refused at apply and undone, or a PreSync hook failed: trying
		// again at every pass (or every start of a process) would write
		// and undo, or run the hook, each time. Wait for new content or
		// a resync.
		st.Phase, st.Reason = state.Failed, rejectedReason(r)
		if err := a.keepRejected(ctx, st); err != nil {
			return err
		}
		return a.save(ctx, st)
	}
	if pending {
		// Order between apps (gitpace.yaml dependsOn, waves): a new
		// revision waits for the apps before it; drift correction of the
		// revision in force does not (keepInForce).
		why, at := a.orderWait(in.pass, st, rollbackTo != nil || returnsTo(st, hash))
		a.markOrderWaiting(st.Name, why != "")
		if why != "" {
			if err := a.keepInForce(ctx, st, "the new one waits", false); err != nil {
				return err
			}
			if err := a.refreshHealth(ctx, st); err != nil {
				return err
			}
			if at.IsZero() {
				at = now.Add(orderRetry)
			}
			return a.wait(ctx, st, in.rev, why, &peerWait{why: why}, max(at.Sub(now), 10*time.Millisecond))
		}
	}
	switch why, err := a.waitsForPeers(ctx, in); {
	case err != nil:
		return err
	case why != "":
		return a.waitForPeer(ctx, st, in.rev, why)
	}
	// Recorded at the commit that made the content (origin.go), or at the
	// revision in force when the content is the same (a resync, a restart).
	rev := in.rev
	switch {
	case hash != st.ContentHash:
		inForce := ""
		if st.Applied != nil {
			inForce = st.Applied.Commit
		}
		rev = a.contentOrigin(ctx, in.pass, in.app.Name, hash, inForce)
	case st.Applied != nil:
		rev = *st.Applied
	}
	causes := revision.Stamp(st, a.cfg.Name, in.app.Name, rev, objs, templates)
	fps := st.Fingerprints
	if in.force && !in.full {
		fps = nil // a drift mark: the watch saw a change the cache may not have yet
	}
	diff, err := a.applier.Diff(ctx, objs, appliers.WithFingerprints(fps))
	if why, ok := namespaceTerminating(err); ok {
		return a.waitFor(ctx, st, in.rev, why)
	}
	if why, ok := a.peerNamespaceGone(in, err); ok {
		return a.waitForPeer(ctx, st, in.rev, why)
	}
	if err != nil {
		return a.rejectOrRetry(ctx, st, in.rev, in.built.ContentHash, err)
	}
	send, conflict := objs, ""
	if !pending && !in.full {
		// A drift pass leaves what another agent applied last (shared.go).
		send, diff, conflict = a.leaveShared(objs, diff)
	}
	a.noteConflict(st, conflict)
	if ok, err := a.preSyncHooks(ctx, st, in, hash); !ok {
		return err // the dry run passed; hooks run, or one failed
	}
	a.printNotes(st.Name, diff)
	takenFrom := a.previousOwners(st.Name, diff)
	applied, err := a.applier.Apply(ctx, send, diff)
	if why, ok := namespaceTerminating(err); ok {
		for _, c := range applied {
			a.expect(c.Ref, c.Generation)
		}
		return a.waitFor(ctx, st, in.rev, why)
	}
	if why, ok := a.peerNamespaceGone(in, err); ok {
		for _, c := range applied {
			a.expect(c.Ref, c.Generation)
		}
		return a.waitForPeer(ctx, st, in.rev, why)
	}
	if err != nil {
		if isTransient(err) {
			return err // the retry applies the whole revision
		}
		return a.refusedAtApply(ctx, st, in.rev, hash, applied, err)
	}
	for _, c := range applied {
		// At once, before prune and record: the watch must judge the next
		// change of these objects against what gitpace just wrote.
		a.expect(c.Ref, c.Generation)
	}
	a.setPaced(st.Name, specs, in.app.Promote)
	inventory := append(revision.Refs(objs), revision.PacedRefs(specs)...)
	stale := revision.Stale(a.canonical(st.Inventory), inventory)
	rolls := templatesChanged(st.Templates, templates)
	if len(stale) > 0 && st.PruneLast && !rolls {
		// A later pass (a restart, `run --once`, a drift mark): has the
		// rollout the prune waits for finished? Read it now.
		if err := a.refreshPhase(ctx, st); err != nil {
			return err
		}
	}
	pruneLast := len(stale) > 0 && (rolls || st.PruneLast && !pruneLastDue(st))
	if pruneLast {
		// PruneLast: after the rollout this apply started (or one still
		// in flight), not while its old pods may use what it dropped.
		if !st.PruneLast {
			a.printf("app %s: %s pruned once the rollout has finished (prune last)", st.Name, plural(len(stale), "object"))
		}
		inventory = append(inventory, stale...)
		stale = nil
	}
	pruneHeld := ""
	if len(stale) > 0 && !in.revision.PruneOK() {
		pruneHeld = fmt.Sprintf("%s not pruned while %s an invalid revision (what it declares is unknown)",
			plural(len(stale), "object"), appList(in.revision.Invalid))
		if st.PruneHeld != pruneHeld {
			a.printf("app %s: %s", st.Name, pruneHeld)
		}
	}
	pruned, pruneErr := a.prune(ctx, in.revision, st, stale)
	if pruneErr != nil || !in.revision.PruneOK() {
		// The revision is applied and is recorded as such. What could not
		// be pruned (or, while another app's revision is invalid, was not
		// tried) stays in the inventory, so that a later pass prunes it.
		inventory = append(inventory, revision.Stale(revision.Stale(a.canonical(st.Inventory), inventory), settledRefs(pruned))...)
	}
	refreshErr := a.record(ctx, st, rev, hash, inventory, templates, rollbackTo, append(applied, pruned...), takenFrom)
	st.ChangeCauses, st.PruneHeld, st.PruneLast = causes, pruneHeld, pruneLast
	if pruneLast && pruneLastDue(st) {
		// Finished already (record read the phase): prune at the next
		// reconcile of the app.
		a.enqueue(st.Name, wantStatus)
	}
	if err := a.save(ctx, st); err != nil {
		return err
	}
	if pruneErr != nil {
		return fmt.Errorf("revision %s applied, but pruning failed: %w", rev.Short(), pruneErr)
	}
	return refreshErr
}

// pruneLastDue: the app holds a prune until its rollouts finish
// (state.App.PruneLast) and they have: its phase, as refreshPhase last
// read it, is Synced.
func pruneLastDue(st *state.App) bool { return st.PruneLast && st.Phase == state.Synced }

// templatesChanged: a pod template of now differs from was (workload key
// → template hash, revision.TemplateHashes): applying now starts a rollout.
func templatesChanged(was, now map[string]string) bool {
	for k, h := range now {
		if was[k] != h {
			return true
		}
	}
	return false
}

// settledRefs are the objects a prune deleted or released (Skipped).
func settledRefs(cs appliers.ChangeSet) []appliers.ObjectRef {
	var out []appliers.ObjectRef
	for _, c := range cs {
		if c.Action == appliers.Deleted || c.Action == appliers.Skipped {
			out = append(out, c.Ref)
		}
	}
	return out
}

// record updates the app's state after a successful apply and prints what
// happened. rev is the revision recorded: the commit that made the content
// (contentOrigin), the revision in force when the content is unchanged.
// Its error is refreshPhase's: the revision is recorded anyway.
func (a *Agent) record(ctx context.Context, st *state.App, rev sources.Revision, hash string,
	inventory []appliers.ObjectRef, templates map[string]string, rollbackTo *state.Entry, cs appliers.ChangeSet, takenFrom map[string][]string) error {
	handedTo := map[string][]string{}
	for _, c := range cs {
		if app, ok := strings.CutPrefix(c.Reason, handedOverPrefix); ok && c.Action == appliers.Skipped {
			handedTo[app] = append(handedTo[app], c.Ref.String())
		} else if c.Action == appliers.Skipped {
			a.printf("app %s: %s %s", st.Name, c.Ref, c.Reason)
			a.cfg.Log.Warn("prune skipped", "app", st.Name, "object", c.Ref.String(), "reason", c.Reason)
		}
	}
	handover := handoverText(takenFrom, handedTo)
	if handover != "" {
		a.printf("app %s: %s", st.Name, handover)
	}
	for _, c := range cs {
		a.cfg.Metrics.object(c.Action)
		a.expect(c.Ref, c.Generation)
		a.seedRollout(c)
	}
	newRevision := hash != st.ContentHash
	st.Rejected = nil
	if cs.Changed() {
		what := "applied"
		if !newRevision {
			var drifted []string
			for _, c := range cs {
				if c.Action == appliers.Configured || c.Action == appliers.Created || c.Action == appliers.Recreated {
					drifted = append(drifted, c.Ref.String())
					a.cfg.Log.Debug("drift corrected", "app", st.Name, "object", c.Ref.String(), "diff", c.Diff) // Secret values are masked in diffs
				}
			}
			what = "drift: " + strings.Join(drifted, ", ") + " differed from git; re-applied"
			if len(drifted) == 0 {
				// Only prunes: what an earlier revision dropped and a
				// pass held (another app's invalid revision, a failed
				// prune), done now.
				what = "pruned what earlier revisions dropped, held until now; in force:"
			}
		}
		a.printf("app %s: %s %s (%s)", st.Name, what, rev.Short(), cs.Summary())
		a.cfg.Log.Info("applied", "app", st.Name, "commit", rev.Short(), "changes", cs.Summary())
	}
	rolling := templatesChanged(st.Templates, templates)
	if newRevision && (cs.Changed() || rolling || st.Applied == nil || handover != "") {
		e := state.Entry{Revision: rev, Applied: a.cfg.Now(), Outcome: state.RolledOut, Templates: templates, ContentHash: hash}
		if rolling {
			e.Outcome = state.RollingOut
		}
		e.Message = joinNotes(recreatedNote(cs), handover)
		if rollbackTo != nil {
			e.RollbackTo = rollbackTo.N
			e.Message = joinNotes(fmt.Sprintf("rollback to revision %d (%s %s)", rollbackTo.N, rollbackTo.Revision.Short(), rollbackTo.Revision.Subject), e.Message)
			a.printf("app %s: %s", st.Name, e.Message)
		}
		st.AddHistory(e)
	}
	st.Applied, st.ContentHash, st.Templates = &rev, hash, templates
	st.Inventory = inventory
	st.Fingerprints = map[string]string{}
	for _, c := range cs {
		if c.Fingerprint != "" {
			st.Fingerprints[c.Ref.Key()] = c.Fingerprint
		}
	}
	a.own(st)
	return a.refreshPhase(withJustWritten(ctx, cs), st)
}

// reject records a revision that cannot be applied; the previous revision
// stays in force.
//
// hash is the revision's content hash ("" when it could not be built); the
// order between apps reads it (a rejection of content a later commit
// replaced stops no wave).
func (a *Agent) reject(ctx context.Context, st *state.App, rev sources.Revision, hash string, err error) error {
	return a.rejectAs(ctx, st, state.Rejection{Revision: rev, Error: appliers.SummarizeError(err), Detail: err.Error(), ContentHash: hash})
}

func (a *Agent) rejectAs(ctx context.Context, st *state.App, r state.Rejection) error {
	if st.Rejected == nil || st.Rejected.Revision.Commit != r.Revision.Commit || st.Rejected.Error != r.Error {
		a.printf("app %s: revision %s rejected, %s stays in force: %s", st.Name, r.Revision.Short(), appliedShort(st), r.Error)
		a.cfg.Log.Error("revision rejected", "app", st.Name, "commit", r.Revision.Short(), "err", firstNonEmpty(r.Detail, r.Error))
	}
	st.Rejected = &r
	st.Phase, st.Reason = state.Failed, rejectedReason(&r)
	if err := a.keepRejected(ctx, st); err != nil {
		return err
	}
	return a.save(ctx, st)
}

// keepRejected keeps the revision in force applied while the app's newest
// revision is rejected (keepInForce: drift of the revision in force is
// corrected, a deleted object re-created; nothing of the rejected revision
// is applied, nothing is pruned), and reads the health of its objects (a
// missing one is Missing). It returns only transient errors.
func (a *Agent) keepRejected(ctx context.Context, st *state.App) error {
	if st.Applied == nil {
		return nil // nothing in force
	}
	if err := a.keepInForce(ctx, st, "the newest one is rejected", driftMarked(ctx)); err != nil {
		return err
	}
	return a.refreshHealth(ctx, st)
}

func rejectedReason(r *state.Rejection) string {
	return fmt.Sprintf("revision %s rejected: %s", r.Revision.Short(), r.Error)
}

// refusedAtApply handles an object the server refused when applied after
// the whole revision passed the dry run (an admission webhook or policy, a
// quota). What the attempt applied is undone, so that the previous
// revision stays in force: objects it created are deleted, objects it
// changed get the previous revision's version again (read from git). The
// revision is then rejected like one that failed the dry run.
func (a *Agent) refusedAtApply(ctx context.Context, st *state.App, rev sources.Revision, hash string, applied appliers.ChangeSet, refusal error) error {
	for _, c := range applied {
		a.expect(c.Ref, c.Generation) // our own writes, not drift
	}
	undone, undoErr := a.undo(ctx, st, applied)
	msg, detail := appliers.SummarizeError(refusal), refusal.Error()
	if undone > 0 {
		msg += fmt.Sprintf("; undid the %d change(s) already applied", undone)
		detail += fmt.Sprintf("; undid the %d change(s) already applied", undone)
	}
	if undoErr != nil {
		a.cfg.Log.Error("undoing a partly applied revision", "app", st.Name, "commit", rev.Short(), "err", undoErr)
		msg += "; could not undo everything: " + appliers.SummarizeError(undoErr)
		detail += "; could not undo everything: " + undoErr.Error()
	}
	return a.rejectAs(ctx, st, state.Rejection{Revision: rev, Error: msg, Detail: detail, AtApply: true, ContentHash: hash})
}

// undo reverts the changes of a partly applied revision; see refusedAtApply.
// It returns how many changes it undid and, joined, everything it could not.
func (a *Agent) undo(ctx context.Context, st *state.App, applied appliers.ChangeSet) (int, error) {
	inForce := map[string]bool{}
	for _, ref := range st.Inventory {
		inForce[ref.Key()] = true
	}
	var created []appliers.ObjectRef
	changed := map[string]appliers.ObjectRef{}
	for _, c := range applied {
		switch {
		case c.Action == appliers.Created && !inForce[c.Ref.Key()]:
			created = append(created, c.Ref)
		case c.Action == appliers.Created || c.Action == appliers.Configured:
			changed[c.Ref.Key()] = c.Ref
		}
	}
	n := 0
	var errs []error
	if len(created) > 0 {
		cs, err := a.applier.Prune(ctx, appliers.PruneRequest{Owner: a.owner(st.Name), Refs: created})
		n += len(cs)
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting what the refused revision created: %w", err))
		}
	}
	if len(changed) > 0 {
		restored, err := a.restore(ctx, st, changed)
		n += restored
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// restore applies the revision in force's version of the changed objects;
// objects it does not hold (adopted ones) are named in the error.
func (a *Agent) restore(ctx context.Context, st *state.App, changed map[string]appliers.ObjectRef) (int, error) {
	if st.Applied == nil {
		return 0, fmt.Errorf("no earlier revision to restore %d changed object(s) from", len(changed))
	}
	prev, err := a.previousObjects(ctx, st)
	if err != nil {
		return 0, err
	}
	var restore []*unstructured.Unstructured
	for _, o := range prev {
		if _, ok := changed[appliers.RefOf(o).Key()]; ok {
			restore = append(restore, o)
			delete(changed, appliers.RefOf(o).Key())
		}
	}
	var errs []error
	for _, key := range sortedKeys(changed) {
		errs = append(errs, fmt.Errorf("%s was changed and revision %s does not hold it", changed[key], st.Applied.Short()))
	}
	cs, err := a.applier.Apply(ctx, restore, nil)
	for _, c := range cs {
		a.expect(c.Ref, c.Generation)
		a.seedRollout(c)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("restoring revision %s: %w", st.Applied.Short(), err))
	}
	return len(cs), errors.Join(errs...)
}

// previousObjects reads the app's objects at the revision in force, as they
// were applied (defaulted namespaces, gitpace's labels and annotations).
func (a *Agent) previousObjects(ctx context.Context, st *state.App) ([]*unstructured.Unstructured, error) {
	snap, err := a.cfg.Source.SnapshotAt(ctx, st.Applied.Commit)
	if err != nil {
		return nil, fmt.Errorf("reading revision %s: %w", st.Applied.Short(), err)
	}
	for _, app := range a.loader.Load(snap) {
		if app.Name != st.Name {
			continue
		}
		if app.Err != nil {
			return nil, fmt.Errorf("revision %s: %w", st.Applied.Short(), app.Err)
		}
		objs := revision.DesiredObjects(&app)
		if err := a.applier.Prepare(objs); err != nil {
			return nil, err
		}
		revision.Stamp(st, a.cfg.Name, st.Name, *st.Applied, objs, revision.TemplateHashes(objs))
		return objs, nil
	}
	return nil, fmt.Errorf("revision %s has no app %s", st.Applied.Short(), st.Name)
}

// rejectOrRetry rejects the revision for errors in the input, and returns
// transient errors (network, server unavailable) for the caller to retry.
func (a *Agent) rejectOrRetry(ctx context.Context, st *state.App, rev sources.Revision, hash string, err error) error {
	if isTransient(err) {
		return err
	}
	return a.reject(ctx, st, rev, hash, err)
}

func (a *Agent) hold(ctx context.Context, st *state.App, rev sources.Revision, h *policies.Held) error {
	reason := fmt.Sprintf("revision %s held by %s: %s", rev.Short(), h.Gate, h.Reason)
	if st.Phase != state.Held || st.Reason != reason {
		a.printf("app %s: %s", st.Name, reason)
	}
	st.Phase, st.Reason = state.Held, reason
	if err := a.refreshHealth(ctx, st); err != nil { // the objects in force still run
		return err
	}
	return a.save(ctx, st)
}

// removeApp prunes what an app that left git had applied, except what
// another app of the revision declares (handed over in place: a renamed
// directory, an object moved between apps), then deletes its state.
func (a *Agent) removeApp(ctx context.Context, rev *revision.Revision, st *state.App) error {
	cs, err := a.prune(ctx, rev, st, a.canonical(st.Inventory))
	if err != nil {
		st.Inventory = revision.Stale(a.canonical(st.Inventory), settledRefs(cs))
		st.Phase, st.Reason = state.Failed, "removed from git; pruning failed: "+err.Error()
		return errors.Join(err, a.save(ctx, st))
	}
	n := 0
	handedTo := map[string][]string{}
	for _, c := range cs {
		switch app, ok := strings.CutPrefix(c.Reason, handedOverPrefix); {
		case c.Action == appliers.Deleted:
			n++
			a.cfg.Metrics.object(c.Action)
		case ok:
			handedTo[app] = append(handedTo[app], c.Ref.String())
		default:
			a.printf("app %s: %s %s", st.Name, c.Ref, c.Reason)
			a.cfg.Log.Warn("prune skipped", "app", st.Name, "object", c.Ref.String(), "reason", c.Reason)
		}
	}
	if err := a.store.Delete(ctx, st); err != nil {
		return err
	}
	msg := fmt.Sprintf("app %s: removed from git; pruned %s", st.Name, plural(n, "object"))
	if h := handoverText(nil, handedTo); h != "" {
		msg = fmt.Sprintf("app %s: removed from git; %s; pruned %s", st.Name, h, plural(n, "object"))
	}
	a.printf("%s", msg)
	a.cfg.Metrics.forget(st.Name)
	a.mu.Lock()
	delete(a.apps, st.Name)
	delete(a.views, st.Name)
	delete(a.orderWaiting, st.Name)
	delete(a.retryAt, st.Name)
	delete(a.retryWant, st.Name)
	a.mu.Unlock()
	return nil
}

// handedOverPrefix starts the Reason of an object a prune left to another
// app of the same revision.
const handedOverPrefix = revision.HandedOverPrefix

// handoverText says which objects an app took over from other apps and
// handed over to them, e.g. "took over 4 objects from app web".
func handoverText(from, to map[string][]string) string {
	var parts []string
	for _, app := range sortedKeys(from) {
		parts = append(parts, fmt.Sprintf("took over %s from %s", objectCount(from[app]), app))
	}
	for _, app := range sortedKeys(to) {
		parts = append(parts, fmt.Sprintf("handed over %s to app %s", objectCount(to[app]), app))
	}
	return strings.Join(parts, "; ")
}

// plural is "1 object", "0 objects", "4 objects".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func objectCount(refs []string) string {
	if len(refs) == 1 {
		return refs[0]
	}
	return fmt.Sprintf("%d objects", len(refs))
}

// previousOwners names, per previous owner ("app web", or "agent X, app
// web" for another agent's), the objects of the diff that the live cluster
// says another owner applied: app is taking them over in place (objects a
// drift pass leaves to another agent, Skipped, are not). Taking an object
// over from another agent is logged as a warning: if that agent still
// runs, it takes the object back at its next resync (shared.go).
func (a *Agent) previousOwners(app string, diff appliers.ChangeSet) map[string][]string {
	out := map[string][]string{}
	for _, c := range diff {
		o := c.LiveOwner
		if o == nil || (o.Agent == "" || o.Agent == a.cfg.Name) && o.App == app || c.Action == appliers.Skipped {
			continue
		}
		label := "app " + o.App
		if o.Agent != "" && o.Agent != a.cfg.Name {
			label = o.String()
			a.cfg.Log.Warn("taking over an object another agent applied; if it still runs, it takes the object back at its next resync (shared.go): declare each object in one repository, or run this agent with that agent's --name",
				"app", app, "object", c.Ref.String(), "from", label)
		}
		out[label] = append(out[label], c.Ref.String())
	}
	return out
}

// owner is the Owner this agent records on app's objects.
func (a *Agent) owner(app string) appliers.Owner {
	return appliers.Owner{Agent: a.cfg.Name, App: app}
}

// canonical keys inventory refs as the server does (case 10: a stray
// namespace on a cluster-scoped kind, recorded before the kind was known).
func (a *Agent) canonical(refs []appliers.ObjectRef) []appliers.ObjectRef {
	return revision.Canonical(refs, a.applier.Canonical)
}

// waitFor records that app's revision waits for a condition outside git
// (a namespace still terminating: Kubernetes refuses every create in it
// until it is gone). It is not rejected: it returns a *WaitingError, and
// the app is diffed again every retryWait until it goes through.
func (a *Agent) waitFor(ctx context.Context, st *state.App, rev sources.Revision, why string) error {
	return a.wait(ctx, st, rev, fmt.Sprintf("%s; retrying every %s", why, retryWait), errors.New(why), retryWait)
}

// waitForPeer records that app's revision waits for another app of the
// same revision (waitsForPeers); it is tried again in peerRetry, and, in
// one ReconcileOnce pass, as soon as the other apps' round is over.
func (a *Agent) waitForPeer(ctx context.Context, st *state.App, rev sources.Revision, why string) error {
	return a.wait(ctx, st, rev, why, &peerWait{why: why, settles: true}, peerRetry)
}

// wait records a waiting revision (OutOfSync, with what it waits for) and
// returns the *WaitingError that queues the app again after retry.
func (a *Agent) wait(ctx context.Context, st *state.App, rev sources.Revision, what string, cause error, retry time.Duration) error {
	reason := fmt.Sprintf("revision %s waits: %s", rev.Short(), what)
	if st.Reason != reason {
		a.printf("app %s: %s", st.Name, reason)
		a.cfg.Log.Info("revision waits", "app", st.Name, "commit", rev.Short(), "reason", cause.Error())
	}
	st.Phase, st.Reason = state.OutOfSync, reason
	if err := a.save(ctx, st); err != nil {
		return err
	}
	return &WaitingError{Err: cause, At: a.cfg.Now().Add(retry)}
}

// peerRetry is how often a revision waiting for another app is tried again.
const peerRetry = time.Second

// retryWait is how often a waiting revision is tried again.
const retryWait = 3 * time.Second

// namespaceTerminating reports an error that a namespace being deleted
// caused: Kubernetes refuses new content in it (Forbidden with cause
// NamespaceTerminating, whose message is "namespace X is being
// terminated") until it is gone. It returns that message.
func namespaceTerminating(err error) (string, bool) {
	if err == nil || !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return "", false
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Details != nil {
		for _, c := range st.Status().Details.Causes {
			if c.Type == corev1.NamespaceTerminatingCause && c.Message != "" {
				return c.Message, true
			}
		}
	}
	return "its namespace is being terminated", true
}

// appState returns app name's state, new (OutOfSync) if it has none.
func (a *Agent) appState(name string) *state.App {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.apps[name]
	if !ok {
		st = &state.App{Name: name, Agent: a.cfg.Name, Phase: state.OutOfSync}
		a.apps[name] = st
	}
	return st
}

// getApp returns app name's state, nil if it has none.
func (a *Agent) getApp(name string) *state.App {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.apps[name]
}

// save writes the app's state, with its BCS rollouts' newest status
// (whatever held or froze the app meanwhile).
func (a *Agent) save(ctx context.Context, st *state.App) error {
	st.BCS = a.pacedStatuses(st.Name)
	st.Updated = a.cfg.Now().UTC().Truncate(time.Second)
	a.publishView(st)
	a.cfg.Metrics.phase(st.Name, st.Phase) // every phase, rejected and held ones too
	return a.store.Save(ctx, st)           // writes only when more than Updated changed
}

// prune deletes what left app st's desired state, over the whole revision:
// objects another app declares are handed over, objects whose live copy no
// longer names this agent and app are left alone (appliers.Prune). BCS
// deployments (both applications) go through the paced engine, under the
// same rules.
func (a *Agent) prune(ctx context.Context, rev *revision.Revision, st *state.App, refs []appliers.ObjectRef) (appliers.ChangeSet, error) {
	if len(refs) == 0 || !rev.PruneOK() {
		return nil, nil
	}
	var kube []appliers.ObjectRef
	var out appliers.ChangeSet
	var errs []error
	owner := a.owner(st.Name)
	for _, r := range refs {
		if !revision.IsBCS(r) {
			kube = append(kube, r)
			continue
		}
		if app, ok := rev.Lookup(r.Key()); ok {
			out = append(out, appliers.Change{Ref: r, Action: appliers.Skipped, Reason: handedOverPrefix + app})
			continue
		}
		a.pacedRun.Lock()
		deleted, err := a.engine.Delete(ctx, r.Namespace, r.Name, owner.Owns)
		a.pacedRun.Unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.dropPaced(r)
		if deleted {
			out = append(out, appliers.Change{Ref: r, Action: appliers.Deleted})
		} else {
			out = append(out, appliers.Change{Ref: r, Action: appliers.Skipped, Reason: "not pruned: its applications are not owned by " + owner.String()})
		}
	}
	elsewhere, err := rev.ClaimedElsewhere(ctx, a.store, a.cfg.Name, a.applier.Canonical)
	if err != nil {
		return out, err
	}
	cs, err := a.applier.Prune(ctx, appliers.PruneRequest{Owner: owner, Refs: kube, Declared: rev.Lookup,
		ClaimedElsewhere: elsewhere, DeclaredNamespaces: rev.Namespaces})
	errs = append(errs, err)
	a.mu.Lock()
	for _, c := range cs {
		switch {
		case c.Action == appliers.Deleted:
			a.forgetLocked(c.Ref.Key(), true) // gone from git and the cluster
		case strings.HasPrefix(c.Reason, handedOverPrefix):
			// the app taking it over owns it once it applied it
		case a.owned[c.Ref.Key()] == st.Name:
			delete(a.owned, c.Ref.Key()) // released
		}
	}
	a.mu.Unlock()
	return append(out, cs...), errors.Join(errs...)
}

// appList is "app b has" or "apps b, c have".
func appList(apps []string) string {
	if len(apps) == 1 {
		return "app " + apps[0] + " has"
	}
	return "apps " + strings.Join(apps, ", ") + " have"
}

func appliedShort(st *state.App) string {
	if st.Applied == nil {
		return "nothing"
	}
	return st.Applied.Short()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pausedWithNewRevision reports whether paused app st has a revision in
// the current pass that is not applied (new content, or a rejected one):
// PAUSE holds it, so `run --once` did not apply every app's revision.
func (a *Agent) pausedWithNewRevision(name string, st *state.App) bool {
	if st.Rejected != nil {
		return true
	}
	p := a.current
	if p == nil || p.rev == nil {
		return false
	}
	b := p.rev.ByName[name]
	return b != nil && (b.Err != nil || b.ContentHash != st.ContentHash)
}

// ReconcileAndReport runs one pass (for `gitpace run --once`) and turns
// apps that are not in sync with git into an error: rejected revisions,
// held revisions (a PAUSE holding a new one too) and failed rollouts.
func (a *Agent) ReconcileAndReport(ctx context.Context) error {
	if err := a.ReconcileOnce(ctx); err != nil {
		return err
	}
	var errs []error
	if a.emptyHeld != "" {
		errs = append(errs, errors.New(a.emptyHeld))
	}
	for _, name := range sortedKeys(a.apps) {
		st := a.apps[name]
		switch st.Phase {
		case state.Failed, state.Held:
			errs = append(errs, fmt.Errorf("app %s: %s: %s", name, st.Phase, st.Reason))
		case state.Paused:
			if a.pausedWithNewRevision(name, st) { // held by PAUSE: not applied
				errs = append(errs, fmt.Errorf("app %s: %s: %s", name, st.Phase, st.Reason))
			}
		case state.OutOfSync:
			if st.Reason != "" { // a revision waiting for the cluster
				errs = append(errs, fmt.Errorf("app %s: %s: %s", name, st.Phase, st.Reason))
			}
		}
	}
	return errors.Join(errs...)
}
