// Package agent runs gitpace's reconcile loop: on every trigger (poll tick,
// a commit seen by fsnotify, a webhook, a watched object changing behind
// git's back) it fetches the branch head, and for each app runs the fixed
// sequence in reconcileApp. All durable state lives in the cluster (package
// state) and in git, so a restarted agent carries on where it stopped.
package agent

import (
	"context"
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

	mu   sync.Mutex
	apps map[string]*state.App // this agent's apps; nil until loaded from the cluster
	// legacy are states written before agents had identities, adopted by
	// the first agent whose revision holds an app of that name.
	legacy map[string]*state.App
	// retryAt: apps waiting for a condition (a namespace terminating) are
	// diffed again at this time though nothing changed. Loop goroutine only.
	retryAt    map[string]time.Time
	emptyHeld  string            // the reason an empty revision is held, once printed
	skipped    map[string]string // what the revision holds and gitpace did not read, once printed
	lastHead   string
	lastSnap   *sources.Snapshot
	lastCommit *object.Commit        // the signature gate's last lookup
	dirty      map[string]bool       // apps to diff again though git did not move
	lastFull   time.Time             // last time every app was diffed
	wake       time.Time             // reconcile every app at this time (window edges)
	expected   map[string]int64      // generation gitpace last wrote, per object key
	owned      map[string]string     // object key -> app, for the watch
	paced      map[string]*pacedItem // BCS deployments in force, by ref key
	namespaces map[string]bool
	engine     *paced.Engine
	outLines   map[string]string // last progress line printed per object
	rollouts   map[string]appliers.DeploymentRollout
	// deadlines names the ProgressDeadlineExceeded condition of each
	// watched Deployment past its deadline (deadlineID).
	deadlines map[string]string
	statusCh  chan string
	pacedCh   chan struct{}
	// onFailure is the newest revision's gitpace.yaml onFailure; failNotes
	// and revertErrs are what handling failures remembers (failure.go).
	// Loop goroutine only.
	onFailure  policies.FailurePolicy
	failNotes  map[string]failNote
	revertErrs map[string]string
	// notes are the object notes printed (printNotes), by object key.
	// Loop goroutine only.
	notes map[string]string

	trigger chan struct{}
	// following is true while followDeployments watches (Run).
	following atomic.Bool
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
	return &Agent{
		cfg: cfg, applier: ap, kube: kube,
		store:  store,
		loader: manifest.NewLoader(helm.NewCachedCapabilities(kube.Discovery(), time.Minute).Get),
		dirty:  map[string]bool{}, retryAt: map[string]time.Time{},
		expected: map[string]int64{},
		owned:    map[string]string{},
		paced:    map[string]*pacedItem{}, namespaces: map[string]bool{},
		engine:   &paced.Engine{Client: kube},
		outLines: map[string]string{},
		rollouts: map[string]appliers.DeploymentRollout{}, deadlines: map[string]string{},
		failNotes: map[string]failNote{}, revertErrs: map[string]string{}, notes: map[string]string{},
		statusCh: make(chan string, 1024),
		pacedCh:  make(chan struct{}, 1),
		trigger:  make(chan struct{}, 1),
	}, nil
}

// Name is the agent's identity (Config.Name, or the one DefaultName derived).
func (a *Agent) Name() string { return a.cfg.Name }

// Trigger asks for a reconcile as soon as possible (webhook, fsnotify).
func (a *Agent) Trigger() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends: at start, every Interval, on Trigger, on
// local commits and on drift. Errors are logged and retried with backoff;
// the last good state stays in force meanwhile.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.cfg.Source.Watch(ctx, a.Trigger); err != nil {
		a.cfg.Log.Warn("watching the local repository failed; polling only", "err", err)
	}
	a.following.Store(true)
	go a.followDeployments(ctx)
	backoff := time.Duration(0)
	for {
		err := a.ReconcileOnce(ctx)
		wait := a.cfg.Interval
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = nextBackoff(backoff, a.cfg.Interval)
			wait = backoff
			a.cfg.Log.Error("reconcile failed; keeping the last good state", "err", err, "retryIn", wait.String())
		} else {
			backoff = 0
		}
		if due := a.drivePaced(ctx); !due.IsZero() {
			wait = min(wait, max(due.Sub(a.cfg.Now()), 0)+10*time.Millisecond)
		}
		a.mu.Lock()
		if !a.wake.IsZero() {
			wait = min(wait, max(a.wake.Sub(a.cfg.Now()), 0)+10*time.Millisecond)
		}
		for _, at := range a.retryAt {
			wait = min(wait, max(at.Sub(a.cfg.Now()), 0)+10*time.Millisecond)
		}
		a.mu.Unlock()
		if err := a.waitNext(ctx, wait); err != nil {
			return nil
		}
	}
}

// nextBackoff doubles from 1s, never past the poll interval nor a minute.
func nextBackoff(prev, interval time.Duration) time.Duration {
	limit := min(interval, time.Minute)
	next := time.Second
	if prev > 0 {
		next = prev * 2
	}
	return min(next, limit)
}

func (a *Agent) printf(format string, args ...any) {
	fmt.Fprintf(a.cfg.Out, "%s "+format+"\n", append([]any{a.cfg.Now().Format("15:04:05")}, args...)...)
}

// waitNext waits for the next trigger or tick, meanwhile handling rollout
// status events (which need no git access). A BCS rollout's next due time
// may bring the wake-up forward, never push it back: the poll interval,
// window edges and retries that set wait always fire on time (a finished
// rollout's due time is a resync away, and must not starve the poll).
func (a *Agent) waitNext(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.trigger:
			return nil
		case <-t.C:
			return nil
		case <-a.pacedCh:
			// A BCS ReplicaSet changed (pods Ready or gone): step its rollout.
			if due := a.drivePaced(ctx); !due.IsZero() {
				t.Reset(min(time.Until(deadline), max(due.Sub(a.cfg.Now()), 0)+10*time.Millisecond))
			}
		case app := <-a.statusCh:
			if st, ok := a.apps[app]; ok {
				a.refreshPhase(ctx, st)
				if err := a.save(ctx, st); err != nil {
					a.cfg.Log.Error("saving app state", "app", app, "err", err)
				}
			}
		}
	}
}
