package revision

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/manifest"
	"github.com/gitpace/gitpace/state"
)

// HandedOverPrefix starts the Reason of an object a prune left to another
// app of the same revision; the app's name follows.
const HandedOverPrefix = "handed over to app "

// Cluster is what Diff reads: the cluster through Applier (configured as
// the agent's: DefaultNamespace, StandInNamespace, TakeoverManagers), the
// agent's state in Store, and the agent identity Agent.
type Cluster struct {
	Applier *appliers.Applier
	Store   *state.Store
	Agent   string
	// Loader loads and renders the revision's apps (kustomize, Helm with
	// the cluster's .Capabilities); nil: manifest.Load.
	Loader *manifest.Loader
}

// AppDiff is what one revision would change in one app.
type AppDiff struct {
	App   string `json:"app"`
	Error string `json:"error,omitempty"`
	// Detail is Error's full text, as the server gave it.
	Detail  string             `json:"detail,omitempty"`
	Changes appliers.ChangeSet `json:"changes,omitempty"`
}

// Diff computes, without writing anything to the cluster or to git, what
// applying snap would change: per app, a server-side dry run of each object
// against the live cluster (appliers.Applier.Diff: each Change carries the
// dry-run object in Desired), plus the objects a prune would delete, and
// for apps that left git, their prunes. Objects are prepared exactly as the
// agent would apply them (labels, change-cause). An app's bad input is in
// its AppDiff.Error; the error is for git or the cluster failing
// (appliers.IsTransient).
func Diff(ctx context.Context, c Cluster, snap *sources.Snapshot) ([]AppDiff, error) {
	all, err := c.Store.List(ctx)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	apps := map[string]*state.App{}
	for _, st := range all {
		if st.Agent == c.Agent || st.Agent == "" && apps[st.Name] == nil {
			apps[st.Name] = st
		}
	}
	_, cfgErr := policies.ConfigFromFiles(snap.Files, snap.Path)
	load := manifest.Load
	if c.Loader != nil {
		load = c.Loader.Load
	}
	built, err := Build(Config{Agent: c.Agent, Prepare: c.Applier.Prepare}, snap.Revision, load(snap), cfgErr)
	if err != nil {
		return nil, err
	}
	var out []AppDiff
	for _, b := range built.Apps {
		d := AppDiff{App: b.Name()}
		if b.Transient != nil {
			return nil, b.Transient
		}
		if b.Err != nil {
			d.Error = b.Err.Error()
			out = append(out, d)
			continue
		}
		st := apps[b.Name()]
		if st == nil {
			st = &state.App{Name: b.Name()}
		}
		objs := b.Objects
		Stamp(st, c.Agent, b.Name(), snap.Revision, objs, TemplateHashes(objs))
		cs, err := c.Applier.Diff(ctx, objs)
		if err != nil {
			if appliers.IsTransient(err) {
				return nil, err
			}
			d.Error, d.Detail = appliers.SummarizeError(err), err.Error()
		}
		for _, s := range b.Specs {
			cs = append(cs, bcsChange(st, s))
		}
		prunes, err := c.pruneDiff(ctx, built, st, Stale(Canonical(st.Inventory, c.Applier.Canonical), append(Refs(objs), PacedRefs(b.Specs)...)))
		if err != nil {
			return nil, err
		}
		d.Changes = append(cs, prunes...)
		out = append(out, d)
	}
	for _, name := range slices.Sorted(maps.Keys(apps)) {
		if built.ByName[name] != nil {
			continue
		}
		prunes, err := c.pruneDiff(ctx, built, apps[name], Canonical(apps[name].Inventory, c.Applier.Canonical))
		if err != nil {
			return nil, err
		}
		out = append(out, AppDiff{App: name, Changes: prunes})
	}
	return out, nil
}

// bcsChange says what a BCS deployment's spec would do: created, a rolling
// update to a new template, or unchanged. (`gitpace plan` shows the cycles.)
func bcsChange(st *state.App, s paced.Spec) appliers.Change {
	ref := BCSRef(s.Namespace, s.Name)
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
func (c Cluster) pruneDiff(ctx context.Context, rev *Revision, st *state.App, refs []appliers.ObjectRef) (appliers.ChangeSet, error) {
	if !rev.PruneOK() {
		return nil, nil
	}
	var cs appliers.ChangeSet
	var kube []appliers.ObjectRef
	for _, ref := range refs {
		if !IsBCS(ref) {
			kube = append(kube, ref)
			continue
		}
		if app, ok := rev.Lookup(ref.Key()); ok {
			cs = append(cs, appliers.Change{Ref: ref, Action: appliers.Skipped, Reason: HandedOverPrefix + app})
			continue
		}
		cs = append(cs, appliers.Change{Ref: ref, Action: appliers.Deleted, Diff: "- BCS deployment " + ref.Name + " and its applications\n"})
	}
	elsewhere, err := rev.ClaimedElsewhere(ctx, c.Store, c.Agent, c.Applier.Canonical)
	if err != nil {
		return nil, err
	}
	pruned, err := c.Applier.Prune(ctx, appliers.PruneRequest{Owner: appliers.Owner{Agent: c.Agent, App: st.Name}, Refs: kube, Declared: rev.Lookup,
		ClaimedElsewhere: elsewhere, DeclaredNamespaces: rev.Namespaces, DryRun: true})
	if err != nil {
		return nil, err
	}
	return append(cs, pruned...), nil
}

// ClaimedElsewhere reads, once per revision (the answer is cached on r),
// which objects other agents sharing the state namespace list in their
// inventories, keyed by canonical (appliers.Applier.Canonical): neither of
// two agents declaring one object may delete it. The function returns the
// owner ("agent X, app a") of an object key claimed elsewhere.
func (r *Revision) ClaimedElsewhere(ctx context.Context, store *state.Store, agent string, canonical func(appliers.ObjectRef) appliers.ObjectRef) (func(string) (string, bool), error) {
	r.elsewhereMu.Lock()
	defer r.elsewhereMu.Unlock()
	if r.elsewhere != nil && time.Since(r.elsewhereAt) < elsewhereTTL {
		return r.elsewhere, nil
	}
	all, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	claimed := map[string]string{}
	for _, st := range all {
		if st.Agent == agent {
			continue
		}
		for _, ref := range st.Inventory {
			claimed[canonical(ref).Key()] = appliers.Owner{Agent: st.Agent, App: st.Name}.String()
		}
	}
	r.elsewhere = func(key string) (string, bool) { o, ok := claimed[key]; return o, ok }
	r.elsewhereAt = time.Now()
	return r.elsewhere, nil
}

// StateWarning says why what agent knows from the cluster may be missing,
// so that a diff or plan would show false changes and no prunes: the state
// namespace does not exist, or holds no state of agent (another
// --state-namespace or --name than gitpace run's; or the agent never ran).
// "" when agent's state is there, or the store cannot be read (the diff
// reports that).
func StateWarning(ctx context.Context, store *state.Store, agent string) string {
	all, err := store.List(ctx)
	if err != nil {
		return ""
	}
	others := map[string]bool{}
	for _, st := range all {
		if st.Agent == agent || st.Agent == "" {
			return ""
		}
		others[st.Agent] = true
	}
	if len(others) == 0 {
		return fmt.Sprintf("namespace %s holds no gitpace state: if gitpace run keeps its state elsewhere, pass the same --state-namespace, or this shows every object as new and no prunes", store.Namespace)
	}
	return fmt.Sprintf("namespace %s holds no state of agent %s, only of %s: pass the --name gitpace run uses (prunes and change-causes depend on it)", store.Namespace, agent, strings.Join(slices.Sorted(maps.Keys(others)), ", "))
}
