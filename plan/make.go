package plan

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/manifest"
)

// Config says what to plan against: the same source and cluster settings
// as the agent's.
type Config struct {
	// AgentName is the identity of the agent whose apps are planned
	// (agent.Config.Name; "" derives it from the source as the agent does).
	AgentName string
	// TakeoverManagers is agent.Config.TakeoverManagers (nil: the default).
	TakeoverManagers []string
	Source           *sources.GitSource
	Rest             *rest.Config
	// StateNamespace holds the agent's state (its inventories decide prunes).
	StateNamespace string
	// DefaultNamespace is given to namespaced objects that name none.
	DefaultNamespace string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Make plans revision rev (a branch, tag or commit; "" is the branch head):
// it diffs every app against the live cluster and plans the rollouts the
// changes trigger. It reads git and the cluster and writes nothing. An
// invalid revision is reported in the plan (Plan.Error, AppPlan.Error), not
// as an error; errors are for git or the cluster failing.
func Make(ctx context.Context, cfg Config, rev string) (*Plan, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Resolve rev once, so that the diff and the rollouts read the same
	// commit even if the branch moves meanwhile.
	snap, err := cfg.Source.SnapshotAt(ctx, rev)
	if err != nil {
		return nil, err
	}
	ag, err := agent.New(agent.Config{Name: cfg.AgentName, TakeoverManagers: cfg.TakeoverManagers, Source: cfg.Source, Rest: cfg.Rest,
		StateNamespace: cfg.StateNamespace, DefaultNamespace: cfg.DefaultNamespace})
	if err != nil {
		return nil, err
	}
	warning := ag.StateWarning(ctx)
	revision, diffs, err := ag.Diff(ctx, snap.Revision.Commit)
	if err != nil {
		return nil, err
	}
	ap, err := appliers.New(cfg.Rest)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg.Rest)
	if err != nil {
		return nil, err
	}
	m := &maker{now: cfg.Now().UTC().Truncate(time.Second), applier: ap, kube: kube}
	p := &Plan{Revision: revision, Now: m.now, Warning: warning}
	if m.policy, err = policies.ConfigFromFiles(snap.Files); err != nil {
		p.Error = err.Error()
	}
	apps := map[string]*manifest.App{}
	loaded := manifest.Load(snap)
	for i := range loaded {
		apps[loaded[i].Name] = &loaded[i]
	}
	for _, d := range diffs {
		a, err := m.app(ctx, d, apps[d.App])
		if err != nil {
			return nil, err
		}
		p.Apps = append(p.Apps, a)
	}
	return p, nil
}

// maker holds what planning the apps of one revision needs.
type maker struct {
	now     time.Time
	policy  *policies.Config // nil when gitpace.yaml is invalid
	applier *appliers.Applier
	kube    kubernetes.Interface
}

// app plans one app; app is nil when the app left git (its objects are
// pruned).
func (m *maker) app(ctx context.Context, d agent.AppDiff, app *manifest.App) (AppPlan, error) {
	a := AppPlan{App: d.App, Error: d.Error, Changes: d.Changes}
	var errs []string
	if a.Error != "" {
		errs = append(errs, a.Error)
	}
	for _, c := range d.Changes {
		if !isDeployment(c.Ref) || c.Action == appliers.Unchanged {
			continue
		}
		var live *unstructured.Unstructured
		if c.Action == appliers.Configured {
			u, err := m.applier.Get(ctx, c.Ref)
			if err != nil {
				return a, fmt.Errorf("%s: %w", c.Ref, err)
			}
			live = u
		}
		r, err := deploymentRollout(c, live)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		a.Rollouts = append(a.Rollouts, r)
	}
	w := m.windows(d.App)
	if app != nil && app.Err == nil {
		for _, f := range app.BCS {
			dep, err := bcs.Parse(f.File, f.Data)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			r, err := m.bcs(ctx, dep, w)
			if err != nil {
				return a, err
			}
			a.Rollouts = append(a.Rollouts, r)
		}
		if app.Pause != nil {
			a.Paused = app.Pause.Path
			if app.Pause.Reason != "" {
				a.Paused += ": " + app.Pause.Reason
			}
		}
	}
	a.Error = strings.Join(errs, "\n")
	if a.Changed() {
		a.Start, a.Wait, _ = w.Earliest(m.now)
	}
	return a, nil
}

// windows returns the app's sync windows; nil (always allowed) when
// gitpace.yaml is invalid, which the plan reports on its own.
func (m *maker) windows(app string) *Windows {
	if m.policy == nil {
		return nil
	}
	return &Windows{Config: m.policy, App: app}
}

// bcs plans the rollout of BCS deployment d against its live ReplicaSets.
func (m *maker) bcs(ctx context.Context, d *bcs.Deployment, w *Windows) (Rollout, error) {
	// The rollout engine's selector (appliers/paced): ReplicaSets it does
	// not manage are none of its applications.
	sel := labels.Set{bcs.LabelDeployment: d.Name(), appliers.ManagedByLabel: appliers.ManagedByValue}.String()
	rss, err := m.kube.AppsV1().ReplicaSets(d.Namespace()).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return Rollout{}, fmt.Errorf("listing the ReplicaSets of BCS deployment %s/%s: %w", d.Namespace(), d.Name(), err)
	}
	return bcsRollout(d, rss.Items, m.now, w), nil
}
