// Package agent runs gitpace's reconcile loop: on every trigger (poll tick,
// a commit seen by fsnotify, a webhook, a watched object changing behind
// git's back) it fetches the branch head, and for each app runs the fixed
// sequence in reconcileApp. All durable state lives in the cluster (package
// state) and in git, so a restarted agent carries on where it stopped.
package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/helm"
	"github.com/gitpace/gitpace/sources/manifest"
	"github.com/gitpace/gitpace/state"
)

// Config says what the agent reconciles and how.
type Config struct {
	// Name is the agent's identity, recorded on every object it applies and
	// on its state (see DefaultName): prune deletes only objects that still
	// name this agent and the app. Default: DefaultName of the source.
	Name string
	// AllowEmpty lets a revision that holds no app, or that would prune
	// every object the agent manages, go ahead (Argo CD's allowEmpty);
	// without it such a revision is held.
	AllowEmpty bool
	Source     *sources.GitSource
	Rest       *rest.Config
	// StateNamespace holds the agent's state (default gitpace-system).
	StateNamespace string
	// DefaultNamespace is given to namespaced objects that name none.
	DefaultNamespace string
	// Interval between polls of the git remote (default 30s).
	Interval time.Duration
	// Resync is how often every app is diffed against the cluster even when
	// nothing changed, to catch drift in kinds gitpace does not watch
	// (default 10m; Deployments are watched and corrected at once).
	Resync time.Duration
	// KeyRing, when set, refuses revisions not signed by one of its keys.
	KeyRing *policies.KeyRing
	// Out receives one human-readable line per state change of a rollout.
	Out io.Writer
	Log *slog.Logger
	// Now is the clock (tests inject one).
	Now func() time.Time
	// Metrics, when set, records Prometheus metrics.
	Metrics *Metrics
	// BCSStartTimeout and BCSDeleteTimeout bound the start and delete
	// phases of a BCS rollout cycle; a phase that runs longer suspends the
	// rollout (UpdateSuspend, app Failed). Zero means BCS's 360 s and 7560 s.
	BCSStartTimeout, BCSDeleteTimeout time.Duration
	// TakeoverManagers are the field managers whose fields gitpace takes
	// over before applying (nil: appliers.DefaultTakeoverManagers).
	TakeoverManagers []string
	// Concurrency is how many apps are reconciled at once (default
	// DefaultConcurrency). One app is never reconciled twice at once.
	Concurrency int
}

// Agent is a running reconciler. Create it with New.
type Agent struct {
	cfg     Config
	applier *appliers.Applier
	store   *state.Store
	kube    kubernetes.Interface
	// loader loads and renders a revision's apps, with Helm's
	// .Capabilities from this cluster and a cache of renders.
	loader *manifest.Loader

	// mu guards the maps below and the apps map itself; an app's
	// *state.App is touched only by the worker reconciling that app.
	mu sync.Mutex
	// statesMu: workers reconcile under its read lock; building a pass
	// (adopting legacy states, reading every app's inventory) takes it
	// whole.
	statesMu sync.RWMutex
	apps     map[string]*state.App // this agent's apps; nil until loaded from the cluster
	// legacy are states written before agents had identities, adopted by
	// the first agent whose revision holds an app of that name.
	legacy map[string]*state.App
	// current is the pass in force: the newest revision built.
	current *pass
	// work: why each app is queued (want), until a worker takes it.
	work map[string]want
	// retryAt: apps waiting for a condition (a namespace terminating) or
	// failed transiently are due again at this time, for retryWant.
	retryAt   map[string]time.Time
	retryWant map[string]want
	emptyHeld string            // the reason an empty revision is held, once printed (source pass only)
	skipped   map[string]string // what the revision holds and gitpace did not read, once printed (source pass only)
	lastHead  string
	// lastCommit is the signature gate's last lookup.
	lastCommit *object.Commit
	lastFull   time.Time             // last time every app was diffed
	wake       time.Time             // reconcile every app at this time (window edges)
	expected   map[string]int64      // generation gitpace last wrote, per object key
	owned      map[string]string     // object key -> app, for the watch
	paced      map[string]*pacedItem // BCS deployments in force, by ref key
	// pacedRun serializes the BCS engine's steps (drivePaced) and deletes
	// (prune).
	pacedRun   sync.Mutex
	namespaces map[string]bool
	engine     *paced.Engine
	outLines   map[string]string // last progress line printed per object
	rollouts   map[string]appliers.DeploymentRollout
	// deadlines names the ProgressDeadlineExceeded condition of each
	// watched Deployment past its deadline (deadlineID).
	deadlines map[string]string
	// onFailure is the newest revision's gitpace.yaml onFailure; failNotes
	// and revertErrs are what handling failures remembers (failure.go).
	onFailure  policies.FailurePolicy
	failNotes  map[string]failNote
	revertErrs map[string]string
	// gitMu serializes commits the agent makes (onFailure revert).
	gitMu sync.Mutex
	// notes are the object notes printed (printNotes), by object key.
	notes map[string]string

	loop atomic.Pointer[loop]
	// watched are the stores of the workload watch (followDeployments), by
	// kind: health reads Deployments, StatefulSets and DaemonSets there.
	watched atomic.Pointer[map[string]cache.Store]
	// lbServices are the Services of the revision whose spec.type is
	// LoadBalancer (by ObjectRef.Key): the only Services whose health needs
	// their live spec and status. Under mu.
	lbServices map[string]bool
	// following is true while followDeployments watches (Run).
	following atomic.Bool
	// views are what the order between apps reads of each app's state
	// (order.go), and orderWaiting the apps whose new revision waits for
	// other apps; under mu.
	views        map[string]orderView
	orderWaiting map[string]bool
	// inForce caches the objects of each waiting app's revision in force
	// (keepInForce); under mu.
	inForce map[string]inForceObjs
	// origins: the apps' content by commit, for contentOrigin.
	origins originCache
}

// New checks cfg and connects the clients; it makes no request.
func New(cfg Config) (*Agent, error) {
	if cfg.Source == nil || cfg.Rest == nil {
		return nil, errors.New("agent: a source and a cluster are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 10 * time.Minute
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	cfg.Out = &syncWriter{w: cfg.Out}
	if cfg.Name == "" {
		sc := cfg.Source.Config()
		cfg.Name = DefaultName(sc.URL, sc.Branch, sc.Path)
	}
	if err := ValidateName(cfg.Name); err != nil {
		return nil, err
	}
	ap, err := appliers.New(cfg.Rest)
	if err != nil {
		return nil, err
	}
	if cfg.DefaultNamespace != "" {
		ap.DefaultNamespace = cfg.DefaultNamespace
	}
	ap.Agent = cfg.Name // diffs from a cache of the objects labelled with it
	if cfg.TakeoverManagers != nil {
		if err := appliers.CheckTakeoverManagers(cfg.TakeoverManagers); err != nil {
			return nil, err
		}
		ap.TakeoverManagers = cfg.TakeoverManagers
	}
	kube, err := kubernetes.NewForConfig(cfg.Rest)
	if err != nil {
		return nil, err
	}
	store := state.NewStore(kube, cfg.StateNamespace)
	// Objects in a Namespace the same revision creates are dry-run in the
	// state namespace, which exists once the agent has started.
	ap.StandInNamespace = store.Namespace
	ag := &Agent{
		cfg: cfg, applier: ap, kube: kube,
		store:  store,
		loader: manifest.NewLoader(helm.NewCachedCapabilities(kube.Discovery(), time.Minute).Get),
		work:   map[string]want{}, retryAt: map[string]time.Time{}, retryWant: map[string]want{},
		expected: map[string]int64{},
		owned:    map[string]string{},
		paced:    map[string]*pacedItem{}, namespaces: map[string]bool{},
		engine:   &paced.Engine{Client: kube},
		outLines: map[string]string{},
		rollouts: map[string]appliers.DeploymentRollout{}, deadlines: map[string]string{},
		failNotes: map[string]failNote{}, revertErrs: map[string]string{}, notes: map[string]string{},
		views: map[string]orderView{}, orderWaiting: map[string]bool{}, inForce: map[string]inForceObjs{},
	}
	// An object deleted behind git's back (or by a prune) queues its app:
	// a diff re-creates what git still declares.
	ap.OnDeleted = func(o appliers.Owner) {
		if o.Agent == ag.cfg.Name {
			ag.enqueue(o.App, wantDiff)
		}
	}
	return ag, nil
}

// Name is the agent's identity (Config.Name, or the one DefaultName derived).
func (a *Agent) Name() string { return a.cfg.Name }

// Trigger asks for a fetch of the source as soon as possible (webhook,
// fsnotify, a revert committed). Without Run it does nothing: the next
// ReconcileOnce fetches anyway.
func (a *Agent) Trigger() {
	if l := a.loop.Load(); l != nil {
		l.q.Add(keySource)
	}
}

// syncWriter serializes the progress lines of concurrent workers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (a *Agent) printf(format string, args ...any) {
	fmt.Fprintf(a.cfg.Out, "%s "+format+"\n", append([]any{a.cfg.Now().Format("15:04:05")}, args...)...)
}
