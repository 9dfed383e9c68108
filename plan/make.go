package plan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/helm"
	"github.com/gitpace/gitpace/sources/manifest"
	"github.com/gitpace/gitpace/state"
)

// Config says what to plan against: the same source and cluster settings
// as the agent's.
type Config struct {
	// AgentName is the identity of the agent whose apps are planned
	// (agent.Config.Name, e.g. agent.DefaultName of the source); required.
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

// ObjectDiff is what `gitpace diff` prints: the object diffs of a
// revision, without the rollouts.
type ObjectDiff struct {
	Revision sources.Revision
	Apps     []revision.AppDiff
	// Warning is revision.StateWarning: "" unless the state of the agent
	// is missing from the state namespace.
	Warning string
}

// Diff diffs revision rev (a branch, tag or commit; "" is the branch head)
// against the live cluster, as the agent cfg.AgentName would apply it
// (revision.Diff). It writes nothing.
func Diff(ctx context.Context, cfg Config, rev string) (*ObjectDiff, error) {
	snap, err := cfg.Source.SnapshotAt(ctx, rev)
	if err != nil {
		return nil, err
	}
	c, err := cfg.cluster()
	if err != nil {
		return nil, err
	}
	return diff(ctx, c, snap)
}

func diff(ctx context.Context, c revision.Cluster, snap *sources.Snapshot) (*ObjectDiff, error) {
	var err error
	out := &ObjectDiff{Revision: snap.Revision, Warning: revision.StateWarning(ctx, c.Store, c.Agent)}
	if out.Apps, err = revision.Diff(ctx, c, snap); err != nil {
		return nil, err
	}
	return out, nil
}

// cluster connects to cfg's cluster as the agent does (agent.New): the
// applier with the agent's default namespace and takeover managers, dry
// runs of objects in a namespace the revision creates made in the state
// namespace, and the agent's state store. It makes no request.
func (cfg Config) cluster() (revision.Cluster, error) {
	if cfg.AgentName == "" {
		return revision.Cluster{}, errors.New("plan: Config.AgentName is required")
	}
	ap, err := appliers.New(cfg.Rest)
	if err != nil {
		return revision.Cluster{}, err
	}
	if cfg.DefaultNamespace != "" {
		ap.DefaultNamespace = cfg.DefaultNamespace
	}
	if cfg.TakeoverManagers != nil {
		if err := appliers.CheckTakeoverManagers(cfg.TakeoverManagers); err != nil {
			return revision.Cluster{}, err
		}
		ap.TakeoverManagers = cfg.TakeoverManagers
	}
	kube, err := kubernetes.NewForConfig(cfg.Rest)
	if err != nil {
		return revision.Cluster{}, err
	}
	store := state.NewStore(kube, cfg.StateNamespace)
	ap.StandInNamespace = store.Namespace
	// Helm's .Capabilities from this cluster, as the agent renders.
	loader := manifest.NewLoader(helm.NewCachedCapabilities(kube.Discovery(), time.Minute).Get)
	return revision.Cluster{Applier: ap, Store: store, Agent: cfg.AgentName, Loader: loader}, nil
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
	c, err := cfg.cluster()
	if err != nil {
		return nil, err
	}
	d, err := diff(ctx, c, snap)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg.Rest)
	if err != nil {
		return nil, err
	}
	m := &maker{now: cfg.Now().UTC().Truncate(time.Second), kube: kube, prepare: c.Applier.Prepare}
	p := &Plan{Revision: d.Revision, Now: m.now, Warning: d.Warning}
	if m.policy, err = policies.ConfigFromFiles(snap.Files, snap.Path); err != nil {
		p.Error = err.Error()
	}
	apps := map[string]*manifest.App{}
	loaded := c.Loader.Load(snap) // rendered once: the diff's renders are cached
	for i := range loaded {
		apps[loaded[i].Name] = &loaded[i]
	}
	for _, ad := range d.Apps {
		a, err := m.app(ctx, ad, apps[ad.App])
		if err != nil {
			return nil, err
		}
		p.Apps = append(p.Apps, a)
	}
	planOrder(p, m.policy)
	planWaves(p, m.policy)
	return p, nil
}

// maker holds what planning the apps of one revision needs.
type maker struct {
	now    time.Time
	policy *policies.Config // nil when gitpace.yaml is invalid
	kube   kubernetes.Interface
	// prepare defaults namespaces as the agent does before it applies an
	// object (appliers.Applier.Prepare).
	prepare func([]*unstructured.Unstructured) error
}

// app plans one app; app is nil when the app left git (its objects are
// pruned).
func (m *maker) app(ctx context.Context, d revision.AppDiff, app *manifest.App) (AppPlan, error) {
	a := AppPlan{App: d.App, Error: d.Error, Changes: d.Changes}
	var errs []string
	if a.Error != "" {
		errs = append(errs, a.Error)
	}
	for _, c := range d.Changes {
		if !isDeployment(c.Ref) || c.Action == appliers.Unchanged {
			continue
		}
		r, err := deploymentRollout(c, c.Live())
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
		hooks, err := m.hooks(app)
		if err != nil {
			errs = append(errs, err.Error())
		}
		a.Hooks = hooks
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
	rss, err := m.kube.AppsV1().ReplicaSets(d.Namespace()).List(ctx, metav1.ListOptions{LabelSelector: paced.Selector(d.Name())})
	if err != nil {
		return Rollout{}, fmt.Errorf("listing the ReplicaSets of BCS deployment %s/%s: %w", d.Namespace(), d.Name(), err)
	}
	return bcsRollout(d, rss.Items, m.now, w), nil
}

// hooks describes app's Helm hooks (hookLine), named as the agent names
// them once it prepared them for applying (agent/hooks.go): their
// namespaces defaulted. An error is the agent's too (it rejects the
// revision); the hooks are then named as written.
func (m *maker) hooks(app *manifest.App) ([]string, error) {
	if len(app.Hooks) == 0 {
		return nil, nil
	}
	objs := make([]*unstructured.Unstructured, len(app.Hooks))
	for i, h := range app.Hooks {
		objs[i] = h.Object.DeepCopy()
	}
	var err error
	if err = m.prepare(objs); err != nil {
		err = fmt.Errorf("hook: %w", err)
		for i, h := range app.Hooks {
			objs[i] = h.Object
		}
	}
	out := make([]string, len(app.Hooks))
	for i, h := range app.Hooks {
		out[i] = hookLine(h, objs[i])
	}
	return out, err
}

// hookLine describes Helm hook h, prepared as obj, for the plan:
// "PreSync Job/web/web-migrate (weight 0, apps/web/templates/migrate.yaml;
// delete policy hook-succeeded)", the object named Kind/namespace/name as
// in the plan's changes.
func hookLine(h manifest.Hook, obj *unstructured.Unstructured) string {
	name := appliers.RefOf(obj).String()
	policy := "before-hook-creation (default)"
	if len(h.DeletePolicies) > 0 {
		policy = strings.Join(h.DeletePolicies, ", ")
	}
	return fmt.Sprintf("%s %s (weight %d, %s; delete policy %s)", h.Phase, name, h.Weight, h.Origin.File, policy)
}
