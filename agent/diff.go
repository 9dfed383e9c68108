package agent

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

// AppDiff is what one revision would change in one app.
type AppDiff struct {
	App   string `json:"app"`
	Error string `json:"error,omitempty"`
	// Detail is Error's full text, as the server gave it.
	Detail  string             `json:"detail,omitempty"`
	Changes appliers.ChangeSet `json:"changes,omitempty"`
}

// Diff computes, without writing anything to the cluster or to git, what
// applying revision rev ("" = branch head) would change: per app, a
// server-side dry run of each object against the live cluster, plus the
// objects a prune would delete. Objects are prepared exactly as the agent
// would apply them (labels, change-cause).
func (a *Agent) Diff(ctx context.Context, rev string) (sources.Revision, []AppDiff, error) {
	snap, err := a.cfg.Source.SnapshotAt(ctx, rev)
	if err != nil {
		return sources.Revision{}, nil, err
	}
	all, err := a.store.List(ctx)
	if err != nil && !apierrors.IsNotFound(err) {
		return snap.Revision, nil, err
	}
	apps := map[string]*state.App{}
	for _, st := range all {
		if st.Agent == a.cfg.Name || st.Agent == "" && apps[st.Name] == nil {
			apps[st.Name] = st
		}
	}
	_, cfgErr := policies.ConfigFromFiles(snap.Files)
	built, err := a.buildRevision(snap.Revision, a.loader.Load(snap), cfgErr)
	if err != nil {
		return snap.Revision, nil, err
	}
	var out []AppDiff
	for _, b := range built.apps {
		d := AppDiff{App: b.app.Name}
		if err := firstErr(b.transient, b.err); err != nil {
			if b.transient != nil {
				return snap.Revision, nil, err
			}
			d.Error = err.Error()
			out = append(out, d)
			continue
		}
		st := apps[b.app.Name]
		if st == nil {
			st = &state.App{Name: b.app.Name}
		}
		objs := b.objs
		stamp(st, a.cfg.Name, b.app.Name, snap.Revision, objs, templateHashes(objs))
		cs, err := a.applier.Diff(ctx, objs)
		if err != nil {
			if isTransient(err) {
				return snap.Revision, nil, err
			}
			d.Error, d.Detail = appliers.SummarizeError(err), err.Error()
		}
		for _, s := range b.specs {
			cs = append(cs, bcsChange(st, s))
		}
		prunes, err := a.pruneDiff(ctx, built, st, stale(a.canonical(st.Inventory), append(refs(objs), pacedRefs(b.specs)...)))
		if err != nil {
			return snap.Revision, nil, err
		}
		d.Changes = append(cs, prunes...)
		out = append(out, d)
	}
	for _, name := range sortedKeys(apps) {
		if built.byName[name] != nil {
			continue
		}
		prunes, err := a.pruneDiff(ctx, built, apps[name], a.canonical(apps[name].Inventory))
		if err != nil {
			return snap.Revision, nil, err
		}
		out = append(out, AppDiff{App: name, Changes: prunes})
	}
	return snap.Revision, out, nil
}

// bcsChange says what a BCS deployment's spec would do: created, a rolling
// update to a new template, or unchanged. (`gitpace plan` shows the cycles.)
func bcsChange(st *state.App, s paced.Spec) appliers.Change {
	ref := bcsRef(s.Namespace, s.Name)
	old, ok := st.Templates[ref.Key()]
	c := appliers.Change{Ref: ref, Action: appliers.Unchanged}
	switch {
	case !ok:
		c.Action = appliers.Created
		c.Diff = fmt.Sprintf("+ application %s with %d instances (template %s)\n", s.Name, s.Instance, s.TemplateHash)
	case old != s.TemplateHash:
		c.Action = appliers.Configured
		c.Diff = fmt.Sprintf("~ rolling update of %s: template %s -> %s, %d instances, %d created / %d deleted per cycle (%s), %s between cycles\n",
			s.Name, old, s.TemplateHash, s.Instance, s.Strategy.MaxSurge, s.Strategy.MaxUnavailable, s.Strategy.Order, s.Strategy.UpgradeDuration)
	}
	return c
}

// pruneDiff says what a prune of refs from app st would delete, by the
// rules of a real prune (appliers.Prune), deleting nothing; objects it
// would leave are listed as skipped, with why.
func (a *Agent) pruneDiff(ctx context.Context, rev *revision, st *state.App, refs []appliers.ObjectRef) (appliers.ChangeSet, error) {
	if !rev.pruneOK() {
		return nil, nil
	}
	var cs appliers.ChangeSet
	var kube []appliers.ObjectRef
	for _, ref := range refs {
		if ref.Group != bcsGroup || ref.Kind != bcsKind {
			kube = append(kube, ref)
			continue
		}
		if app, ok := rev.lookup(ref.Key()); ok {
			cs = append(cs, appliers.Change{Ref: ref, Action: appliers.Skipped, Reason: handedOverPrefix + app})
			continue
		}
		cs = append(cs, appliers.Change{Ref: ref, Action: appliers.Deleted, Diff: "- BCS deployment " + ref.Name + " and its applications\n"})
	}
	elsewhere, err := a.claimedElsewhere(ctx, rev)
	if err != nil {
		return nil, err
	}
	pruned, err := a.applier.Prune(ctx, appliers.PruneRequest{Owner: a.owner(st.Name), Refs: kube, Declared: rev.lookup,
		ClaimedElsewhere: elsewhere, DeclaredNamespaces: rev.namespaces, DryRun: true})
	if err != nil {
		return nil, err
	}
	return append(cs, pruned...), nil
}

// StateWarning says why what this agent knows from the cluster may be
// missing, so that a diff or plan would show false changes and no prunes:
// the state namespace does not exist, or holds no state of this agent
// (another --state-namespace or --name than gitpace run's; or the agent
// never ran). "" when this agent's state is there.
func (a *Agent) StateWarning(ctx context.Context) string {
	all, err := a.store.List(ctx)
	if err != nil {
		return ""
	}
	others := map[string]bool{}
	for _, st := range all {
		if st.Agent == a.cfg.Name || st.Agent == "" {
			return ""
		}
		others[st.Agent] = true
	}
	if len(others) == 0 {
		return fmt.Sprintf("namespace %s holds no gitpace state: if gitpace run keeps its state elsewhere, pass the same --state-namespace, or this shows every object as new and no prunes", a.store.Namespace)
	}
	return fmt.Sprintf("namespace %s holds no state of agent %s, only of %s: pass the --name gitpace run uses (prunes and change-causes depend on it)", a.store.Namespace, a.cfg.Name, strings.Join(sortedKeys(others), ", "))
}
