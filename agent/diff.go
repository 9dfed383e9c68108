package agent

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/manifest"
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
	apps, err := a.store.List(ctx)
	if err != nil && !apierrors.IsNotFound(err) {
		return snap.Revision, nil, err
	}
	if apps == nil {
		apps = map[string]*state.App{}
	}
	var out []AppDiff
	seen := map[string]bool{}
	for _, app := range manifest.Load(snap) {
		seen[app.Name] = true
		d := AppDiff{App: app.Name}
		if app.Err != nil {
			d.Error = app.Err.Error()
			out = append(out, d)
			continue
		}
		specs, _, err := bcsDesired(&app, snap.Revision.Commit)
		if err != nil {
			d.Error = err.Error()
			out = append(out, d)
			continue
		}
		st := apps[app.Name]
		if st == nil {
			st = &state.App{Name: app.Name}
		}
		objs := desiredObjects(&app)
		if err := a.applier.Prepare(objs); err != nil {
			d.Error = err.Error()
			out = append(out, d)
			continue
		}
		templates := templateHashes(objs)
		stamp(st, app.Name, snap.Revision, objs, templates)
		cs, err := a.applier.Diff(ctx, objs)
		if err != nil {
			if isTransient(err) {
				return snap.Revision, nil, err
			}
			d.Error, d.Detail = appliers.SummarizeError(err), err.Error()
		}
		for _, s := range specs {
			cs = append(cs, bcsChange(st, s))
		}
		prunes, err := a.pruneDiff(ctx, stale(st.Inventory, append(refs(objs), pacedRefs(specs)...)))
		if err != nil {
			return snap.Revision, nil, err
		}
		d.Changes = append(cs, prunes...)
		out = append(out, d)
	}
	for _, name := range sortedKeys(apps) {
		if seen[name] {
			continue
		}
		prunes, err := a.pruneDiff(ctx, apps[name].Inventory)
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

func (a *Agent) pruneDiff(ctx context.Context, refs []appliers.ObjectRef) (appliers.ChangeSet, error) {
	var cs appliers.ChangeSet
	for _, ref := range refs {
		if ref.Group == bcsGroup && ref.Kind == bcsKind {
			cs = append(cs, appliers.Change{Ref: ref, Action: appliers.Deleted, Diff: "- BCS deployment " + ref.Name + " and its applications\n"})
			continue
		}
		live, err := a.applier.Get(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		if live == nil {
			continue
		}
		cs = append(cs, appliers.Change{Ref: ref, Action: appliers.Deleted, Diff: appliers.UnifiedDiff(ref, appliers.Normalize(live), nil)})
	}
	return cs, nil
}
