package agent

// Helm hooks, run as Argo CD runs resource hooks (argo-cd docs
// user-guide/resource_hooks.md and helm.md "Helm Hooks"; sources/helm maps
// the Helm events to the phases).
//
// A sync is the apply of new content (a revision whose objects or hooks
// differ from the content in force); a drift re-apply of the content in
// force is no sync and runs no hook. Per sync:
//
//	PreSync   (pre-install, pre-upgrade): before the app's other objects, in
//	          waves of equal helm.sh/hook-weight (lowest first; by kind and
//	          name within a wave, all of a wave applied before any is waited
//	          for). A wave must finish before the next starts: a Job until
//	          Complete or Failed, a Pod until Succeeded or Failed, any other
//	          kind until kstatus says Current. A failed hook rejects the
//	          revision (the previous revision stays in force, nothing else
//	          of it is applied), like a refused apply: tried again at a full
//	          resync or with new content, not at a process start
//	          (wantRetry).
//	PostSync  (post-install, post-upgrade): once the app's objects are
//	          applied and it is Synced and Healthy (its rollouts done), in
//	          waves as above. Running, the app is Progressing; a failed hook
//	          makes it Failed and Degraded, naming the hook, until the next
//	          sync.
//
// helm.sh/hook-delete-policy: before-hook-creation (the default when none
// is given, as in Argo CD) deletes the hook object left by an earlier sync
// before creating it again; hook-succeeded deletes it once its phase
// succeeded, hook-failed once it failed. An object is deleted only while it
// names this agent and app (appliers.Prune with the app's Owner); a hook
// object gitpace cannot prove it owns is never replaced, and the sync fails
// naming it. Hook objects carry the owner like every applied object, but
// are not in the app's inventory: they are never pruned (Argo CD leaves
// hooks to their delete policies too).
//
// Progress lives in the cluster, so that a restarted agent neither runs a
// finished hook of a sync again nor skips one: each hook object carries
// the sync's key (HookSyncAnnotation: the content in force before, "..",
// the content it brings), and the app's state records each phase's
// outcome (state.HookRun) before a delete policy removes the objects that
// proved it.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/helm"
	"github.com/gitpace/gitpace/sources/manifest"
	"github.com/gitpace/gitpace/state"
)

// Annotations gitpace writes on hook objects.
const (
	// HookAnnotation is the hook's phase: PreSync or PostSync.
	HookAnnotation = "gitpace.dev/hook"
	// HookSyncAnnotation is the key of the sync that created the object
	// (state.HookRun.Key).
	HookSyncAnnotation = "gitpace.dev/hook-sync"
)

// Helm's hook delete policies (helm.sh/hook-delete-policy values; Argo CD's
// BeforeHookCreation, HookSucceeded, HookFailed).
const (
	deleteBeforeCreation = "before-hook-creation"
	deleteSucceeded      = "hook-succeeded"
	deleteFailed         = "hook-failed"
)

// hookRetry is how often a running PreSync hook is read again.
const hookRetry = 2 * time.Second

// appContentHash is revision.ContentHash over the app's objects and its
// Helm hooks as rendered: a change of a hook alone is new content, whose
// sync runs the hooks. Apps without hooks hash as before.
func appContentHash(objs []*unstructured.Unstructured, app *manifest.App) string {
	return revision.AppContentHash(objs, app)
}

// hookSyncKey is the key of the sync from content from to content to.
func hookSyncKey(from, to string) string {
	if from == "" {
		from = "none"
	}
	return from + ".." + to
}

// hookState is where a hook object is.
type hookState int

const (
	hookRunning hookState = iota
	hookDone
	hookFailed
)

// hookObject is one hook to apply: the object as sent (prepared, stamped),
// and what it ended as once run.
type hookObject struct {
	obj      *unstructured.Unstructured
	ref      appliers.ObjectRef
	source   string // "file:line" of the hook's document in the chart
	weight   int
	policies []string
	state    hookState
	message  string
}

func (h *hookObject) deletes(policy string) bool {
	if len(h.policies) == 0 {
		return policy == deleteBeforeCreation // Argo CD's default
	}
	for _, p := range h.policies {
		if p == policy {
			return true
		}
	}
	return false
}

// hookObjects copies the app's hooks of phase for sending: the source
// annotation, namespaces defaulted and kinds checked (appliers.Prepare),
// gitpace's owner label and annotation, the phase and the sync's key. They
// are in wave order: weight, then kind and name.
func (a *Agent) hookObjects(st *state.App, app *manifest.App, phase helm.Phase, key string) ([]hookObject, error) {
	var objs []*unstructured.Unstructured
	var out []hookObject
	for _, h := range app.Hooks {
		if h.Phase != phase {
			continue
		}
		c := h.Object.DeepCopy()
		ann := c.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		source := fmt.Sprintf("%s:%d", h.Origin.File, h.Origin.Line)
		ann[appliers.SourceAnnotation] = source
		ann[HookAnnotation] = string(phase)
		ann[HookSyncAnnotation] = key
		c.SetAnnotations(ann)
		objs = append(objs, c)
		out = append(out, hookObject{obj: c, source: source, weight: h.Weight, policies: h.DeletePolicies})
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := a.applier.Prepare(objs); err != nil {
		return nil, fmt.Errorf("%s hook: %w", phase, err)
	}
	revision.Stamp(st, a.cfg.Name, st.Name, sources.Revision{}, objs, nil) // no templates: no change-cause
	for i := range out {
		out[i].ref = appliers.RefOf(out[i].obj)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].weight != out[j].weight {
			return out[i].weight < out[j].weight
		}
		if out[i].ref.Kind != out[j].ref.Kind {
			return out[i].ref.Kind < out[j].ref.Kind
		}
		return out[i].ref.Name < out[j].ref.Name
	})
	return out, nil
}

// hookResult is a phase's progress: the hooks that finished, and the
// first of the current wave that failed or still runs ("Job/ns/name
// failed: reason"), both "" when the phase succeeded.
type hookResult struct {
	finished []*hookObject
	failed   string
	running  string
	// failedAt is the failed hook's "file:line" (its document in the
	// chart), as objects' errors name theirs.
	failedAt string
}

// failure says why phase failed: "file:line: PreSync hook Job/ns/name
// failed: reason", the file and line of the hook's document in the chart
// first, as appliers.ObjectError names an object's.
func (r hookResult) failure(phase helm.Phase) string {
	msg := string(phase) + " " + r.failed
	if r.failedAt != "" {
		msg = r.failedAt + ": " + msg
	}
	return msg
}

// runHooks runs one phase's hooks (see the file's doc), applying what the
// cluster does not hold for this sync yet and reading the rest; it returns
// at the first wave that has not succeeded. retry re-creates hooks of this
// sync that failed (a full resync retrying a failed PreSync). Errors are
// the API server's (an apply refused, an object gitpace does not own).
func (a *Agent) runHooks(ctx context.Context, app string, hooks []hookObject, key string, retry bool) (hookResult, error) {
	var res hookResult
	for start := 0; start < len(hooks); {
		end := start + 1
		for end < len(hooks) && hooks[end].weight == hooks[start].weight {
			end++
		}
		wave := hooks[start:end]
		start = end
		for i := range wave {
			h := &wave[i]
			s, msg, err := a.syncHook(ctx, app, h, key, retry)
			if err != nil {
				return res, err
			}
			h.state, h.message = s, msg
		}
		for i := range wave {
			h := &wave[i]
			switch h.state {
			case hookFailed:
				res.finished = append(res.finished, h)
				if res.failed == "" {
					res.failed = fmt.Sprintf("hook %s failed: %s", h.ref, h.message)
					res.failedAt = h.source
				}
			case hookRunning:
				if res.running == "" {
					res.running = fmt.Sprintf("hook %s %s", h.ref, h.message)
				}
			default:
				res.finished = append(res.finished, h)
			}
		}
		if res.failed != "" || res.running != "" {
			return res, nil
		}
	}
	return res, nil
}

// syncHook brings one hook to this sync and says where it is: the live
// object of this sync is read; one of an earlier sync is deleted first
// when its policy says before-hook-creation (else applied over); a
// missing one is created. A live object of the hook's name that this
// agent and app do not own (made by hand, or another app's or agent's) is
// never changed nor deleted, whatever the delete policy: a *StalledError
// names it and its owner (hookNotOwned).
func (a *Agent) syncHook(ctx context.Context, app string, h *hookObject, key string, retry bool) (hookState, string, error) {
	live, err := a.applier.Get(ctx, h.ref)
	if err != nil {
		return 0, "", fmt.Errorf("hook %s: %w", h.ref, err)
	}
	if live != nil && !a.owner(app).Owns(live) {
		return 0, "", hookNotOwned(h.ref, appliers.NotOwnedReason(live))
	}
	if live != nil && live.GetDeletionTimestamp() != nil {
		return hookRunning, "waits: the previous object is being deleted", nil
	}
	if live != nil && live.GetAnnotations()[HookSyncAnnotation] == key {
		s, msg := hookStatus(h.ref, live)
		if s != hookFailed || !retry {
			return s, msg, nil
		}
	}
	if live != nil && (h.deletes(deleteBeforeCreation) || retry) {
		gone, err := a.deleteHook(ctx, app, h.ref)
		if err != nil {
			return 0, "", err
		}
		if !gone {
			return hookRunning, "waits: the previous object is being deleted", nil
		}
	}
	if _, err := a.applier.Apply(ctx, []*unstructured.Unstructured{h.obj}, nil); err != nil {
		return 0, "", fmt.Errorf("hook: %w", err) // the applier's error names the object and its template
	}
	a.cfg.Log.Info("hook applied", "app", app, "hook", h.ref.String(), "phase", h.obj.GetAnnotations()[HookAnnotation], "sync", key)
	if live, err = a.applier.Get(ctx, h.ref); err != nil || live == nil {
		return hookRunning, "created", err
	}
	s, msg := hookStatus(h.ref, live)
	return s, msg, nil
}

// hookStatus reads a live hook object: a Pod is done when Succeeded and
// failed when Failed; a Job is done when Complete and failed when Failed
// (its condition's reason and message); any other kind is done when
// kstatus says Current and failed when it says Failed (appliers/health).
func hookStatus(ref appliers.ObjectRef, u *unstructured.Unstructured) (hookState, string) {
	if ref.Group == "" && ref.Kind == "Pod" {
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		switch phase {
		case "Succeeded":
			return hookDone, "succeeded"
		case "Failed":
			reason, _, _ := unstructured.NestedString(u.Object, "status", "reason")
			msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
			return hookFailed, joinReason("pod phase Failed", reason, msg)
		}
		return hookRunning, "running (pod phase " + firstNonEmpty(phase, "Pending") + ")"
	}
	o := health.OfObject(ref, u)
	switch o.Health {
	case health.Healthy:
		return hookDone, "succeeded"
	case health.Degraded:
		if ref.Group == "batch" && ref.Kind == "Job" {
			if reason, msg, ok := condition(u, "Failed"); ok {
				return hookFailed, joinReason("Job Failed", reason, msg)
			}
		}
		return hookFailed, o.Message
	}
	return hookRunning, "running"
}

// condition returns the reason and message of u's condition typ when True.
func condition(u *unstructured.Unstructured, typ string) (string, string, bool) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ && m["status"] == "True" {
			reason, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return reason, msg, true
		}
	}
	return "", "", false
}

// joinReason is "reason: message", or def when both are empty.
func joinReason(def, reason, msg string) string {
	switch {
	case reason != "" && msg != "":
		return reason + ": " + msg
	case reason != "" || msg != "":
		return reason + msg
	}
	return def
}

// deleteHook deletes a hook object that names this agent and app
// (appliers.Prune checks it); one that does not is an error naming it:
// gitpace never deletes what it cannot prove it owns. gone reports that
// the object no longer exists.
func (a *Agent) deleteHook(ctx context.Context, app string, ref appliers.ObjectRef) (bool, error) {
	cs, err := a.applier.Prune(ctx, appliers.PruneRequest{Owner: a.owner(app), Refs: []appliers.ObjectRef{ref}})
	if err != nil {
		return false, fmt.Errorf("hook %s: deleting the previous object: %w", ref, err)
	}
	for _, c := range cs {
		if c.Action == appliers.Skipped {
			return false, hookNotOwned(ref, strings.TrimPrefix(c.Reason, "not pruned: "))
		}
	}
	live, err := a.applier.Get(ctx, ref)
	return live == nil, err
}

// hookNotOwned is the error for a live object of a hook's name that this
// agent and app do not own (why: appliers.NotOwnedReason). It is the
// input's fault, not a passing one: the revision is rejected naming the
// object (retrying changes nothing until the object or the chart changes).
func hookNotOwned(ref appliers.ObjectRef, why string) error {
	return &StalledError{Err: fmt.Errorf("hook %s: the object in the cluster cannot be replaced (%s); gitpace changes or deletes only hook objects it owns", ref, why)}
}

// cleanupHooks applies the delete policies of a phase's finished hooks:
// hook-succeeded deletes those that succeeded, hook-failed those that
// failed. What cannot be deleted is logged: it stays until the next
// sync's before-hook-creation.
func (a *Agent) cleanupHooks(ctx context.Context, app string, finished []*hookObject) {
	for _, h := range finished {
		if h.state == hookDone && h.deletes(deleteSucceeded) || h.state == hookFailed && h.deletes(deleteFailed) {
			if _, err := a.deleteHook(ctx, app, h.ref); err != nil {
				a.cfg.Log.Warn("hook not deleted", "app", app, "hook", h.ref.String(), "err", err)
			}
		}
	}
}

// preSyncHooks runs the PreSync hooks of a sync of in's content, hash, and
// says whether the app's objects may be applied now. When not, err is what
// reconcileApp returns: a *WaitingError while a hook runs (the app is
// tried again in hookRetry), nil when a failed hook rejected the revision
// (recorded in st), or a transient error. Apps without hooks, and content
// already in force (a drift re-apply), pass at once.
func (a *Agent) preSyncHooks(ctx context.Context, st *state.App, in appInput, hash string) (bool, error) {
	if len(in.app.Hooks) == 0 || hash == st.ContentHash {
		return true, nil
	}
	key := hookSyncKey(st.ContentHash, hash)
	if h := st.Hooks; h != nil && h.Key == key && h.PreSync == state.HookSucceeded {
		return true, nil // done before a restart, or before a refused apply
	}
	hooks, err := a.hookObjects(st, in.app, helm.PreSync, key)
	if err != nil {
		return false, a.rejectOrRetry(ctx, st, in.rev, in.built.ContentHash, err)
	}
	if err := a.hookNamespaces(ctx, st, in, hooks); err != nil {
		return false, a.rejectOrRetry(ctx, st, in.rev, in.built.ContentHash, fmt.Errorf("PreSync hook namespace: %w", err))
	}
	r := st.Rejected
	retry := in.retry && r != nil && r.AtApply && r.ContentHash == hash
	res, err := a.runHooks(ctx, st.Name, hooks, key, retry)
	if err != nil {
		return false, a.rejectOrRetry(ctx, st, in.rev, in.built.ContentHash, fmt.Errorf("PreSync %w", err))
	}
	switch {
	case res.failed != "":
		a.cleanupHooks(ctx, st.Name, res.finished)
		msg := res.failure(helm.PreSync)
		return false, a.rejectAs(ctx, st, state.Rejection{Revision: in.rev, Error: msg, AtApply: true, ContentHash: hash})
	case res.running != "":
		what := "PreSync " + res.running
		return false, a.wait(ctx, st, in.rev, what, errors.New(what), hookRetry)
	}
	st.Hooks = &state.HookRun{ContentHash: hash, Key: key, PreSync: state.HookSucceeded}
	if len(hooks) > 0 {
		a.printf("app %s: revision %s: PreSync hooks succeeded (%s)", st.Name, in.rev.Short(), hookNames(hooks))
		// Recorded before a delete policy removes what proved it.
		if err := a.save(ctx, st); err != nil {
			return false, err
		}
		a.cleanupHooks(ctx, st.Name, res.finished)
	}
	return true, nil
}

// hookNamespaces applies the app's own Namespace objects (createNamespace,
// or one the chart holds) that PreSync hooks are in, before the hooks: as
// Argo CD creates the namespace of a sync before its PreSync hooks. A
// Namespace that exists and is unchanged is not written.
func (a *Agent) hookNamespaces(ctx context.Context, st *state.App, in appInput, hooks []hookObject) error {
	need := map[string]bool{}
	for _, h := range hooks {
		need[h.ref.Namespace] = h.ref.Namespace != ""
	}
	var nss []*unstructured.Unstructured
	for _, o := range in.built.Objects {
		if o.GetAPIVersion() == "v1" && o.GetKind() == "Namespace" && need[o.GetName()] {
			nss = append(nss, o.DeepCopy())
		}
	}
	if len(nss) == 0 {
		return nil
	}
	revision.Stamp(st, a.cfg.Name, st.Name, in.rev, nss, nil)
	_, err := a.applier.Apply(ctx, nss, nil)
	return err
}

// postSyncHooks runs the PostSync hooks of the sync whose content is in
// force, once phase (what the app's rollouts say) is Synced and its health
// Healthy, and says what they make of the phase: Progressing while one
// runs (the app is read again in healthRecheck), Failed naming the hook
// that failed (and Degraded health), "" when they do not change it (none,
// done, or not due yet). Called by refreshPhase.
func (a *Agent) postSyncHooks(ctx context.Context, st *state.App, phase state.Phase) (state.Phase, string, error) {
	h := st.Hooks
	if h == nil || h.ContentHash != st.ContentHash || h.PreSync != state.HookSucceeded || h.PostSync == state.HookSucceeded {
		return "", "", nil
	}
	if h.PostSync == "" {
		if phase != state.Synced || st.Health != health.Healthy {
			return "", "", nil // after the app's rollouts, as Argo CD
		}
		app := a.manifestInForce(st.Name, st.ContentHash)
		if app == nil {
			return "", "", nil // the revision published holds other content: its sync comes first
		}
		hooks, err := a.hookObjects(st, app, helm.PostSync, h.Key)
		var res hookResult
		if err == nil {
			res, err = a.runHooks(ctx, st.Name, hooks, h.Key, false)
		}
		switch {
		case err != nil && isTransient(err):
			return "", "", err
		case err != nil:
			res.failed = err.Error()
		case res.running != "":
			a.recheckHealth(st.Name)
			return state.Progressing, "PostSync " + res.running, nil
		}
		h.PostSync = state.HookSucceeded
		if res.failed != "" {
			h.PostSync, h.Reason = state.HookFailed, res.failure(helm.PostSync)
			a.printf("app %s: %s", st.Name, h.Reason)
		} else if len(hooks) > 0 {
			a.printf("app %s: PostSync hooks succeeded (%s)", st.Name, hookNames(hooks))
		}
		// Recorded before a delete policy removes what proved it.
		if err := a.save(ctx, st); err != nil {
			return "", "", err
		}
		a.cleanupHooks(ctx, st.Name, res.finished)
	}
	if h.PostSync != state.HookFailed {
		return "", "", nil
	}
	st.Health, st.HealthReason = health.Degraded, h.Reason
	a.cfg.Metrics.health(st.Name, health.Degraded)
	return state.Failed, h.Reason, nil
}

// manifestInForce is the app of the revision published whose content is
// hash, nil when the app there is invalid or holds other content.
func (a *Agent) manifestInForce(name, hash string) *manifest.App {
	a.mu.Lock()
	p := a.current
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	b := p.rev.ByName[name]
	if b == nil || b.Err != nil || b.Transient != nil || appContentHash(b.Objects, b.Manifest) != hash {
		return nil
	}
	return b.Manifest
}

// hookNames lists hooks as "Job/ns/a, Pod/ns/b".
func hookNames(hooks []hookObject) string {
	names := make([]string, len(hooks))
	for i := range hooks {
		names[i] = hooks[i].ref.String()
	}
	return strings.Join(names, ", ")
}
