package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/workqueue"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/state"
)

// The work queue (client-go's rate-limited workqueue, as the Kubernetes
// controllers use it) is keyed by app name, plus these keys for the work
// that is not one app's. A key is never processed by two workers at once;
// an app's transient failure backs off that app alone; timers are AddAfter
// calls, and a later timer never cancels an earlier one (the delaying queue
// keeps the earliest time of a key).
const (
	// keySource fetches the branch head, builds the revision, publishes it
	// and queues the apps it concerns. Due every Interval, on Trigger
	// (fsnotify, webhook, a revert committed), and at window edges.
	keySource = "\x00source"
	// keyPaced steps the BCS rollouts that are due (appliers/paced).
	keyPaced = "\x00paced"
)

// DefaultConcurrency is how many apps are reconciled at once by default:
// Flux's kustomize-controller defaults to 4 workers, Argo CD to 10
// operation processors; gitpace's apps are small (a few objects each) and
// its per-object requests are cheap, so 8 keeps the API server busy
// without queueing on its priority-and-fairness seats.
const DefaultConcurrency = 8

// want says why an app is queued; the reasons of several triggers add up
// until a worker takes the app.
type want uint8

const (
	// wantStatus: re-evaluate the phase (a watched rollout changed).
	wantStatus want = 1 << iota
	// wantDiff: diff against the cluster though git did not move (drift
	// seen by a watch, a retry).
	wantDiff
	// wantFull: a resync, a window edge or a process's first pass: a full
	// diff of every object.
	wantFull
	// wantRetry: a resync or a window edge, not a process's first pass: a
	// revision refused at apply or by a failed PreSync hook
	// (state.Rejection.AtApply) is tried again. A restart or `run --once`
	// is no resync: each would create the failed hook Job anew.
	wantRetry
)

// loop is the running queue of Run.
type loop struct {
	q workqueue.TypedRateLimitingInterface[string]
}

// enqueue records why app needs a reconcile and, under Run, queues it.
// Without Run (ReconcileOnce), the next pass takes it.
func (a *Agent) enqueue(app string, w want) {
	if app == "" {
		return
	}
	a.mu.Lock()
	a.work[app] |= w
	a.mu.Unlock()
	if l := a.loop.Load(); l != nil {
		l.q.Add(app)
	}
}

// enqueueAfter queues app at t (a namespace terminating, a window edge).
// Without Run the next ReconcileOnce from t on takes it.
func (a *Agent) enqueueAfter(app string, w want, t time.Time) {
	a.mu.Lock()
	if at, ok := a.retryAt[app]; !ok || t.Before(at) {
		a.retryAt[app] = t
	}
	a.retryWant[app] |= w
	a.mu.Unlock()
	if l := a.loop.Load(); l != nil {
		l.q.AddAfter(app, max(t.Sub(a.cfg.Now()), 0)+10*time.Millisecond)
	}
}

// kickPaced makes the BCS engine step due rollouts soon.
func (a *Agent) kickPaced() {
	if l := a.loop.Load(); l != nil {
		l.q.Add(keyPaced)
	}
}

// takeWork returns and clears why app was queued, with the retries that
// are due by now.
func (a *Agent) takeWork(app string) want {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.work[app]
	delete(a.work, app)
	if at, ok := a.retryAt[app]; ok && !a.cfg.Now().Before(at) {
		w |= a.retryWant[app] | wantDiff
		delete(a.retryAt, app)
		delete(a.retryWant, app)
	}
	return w
}

// queued lists the apps with work (marks, due retries), sorted.
func (a *Agent) queued() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	set := map[string]bool{}
	for app := range a.work {
		set[app] = true
	}
	for app, at := range a.retryAt {
		if !now.Before(at) {
			set[app] = true
		}
	}
	return sortedKeys(set)
}

// Run reconciles until ctx ends: the source at start, every Interval, on
// Trigger and on local commits; each app on a new revision, on drift, on
// its own timers and retries; BCS rollouts as their engine asks. Errors
// are logged and retried with backoff; the last good state stays in force
// meanwhile.
func (a *Agent) Run(ctx context.Context) error {
	limit := min(a.cfg.Interval, time.Minute)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, max(limit, time.Second)),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "gitpace"})
	a.loop.Store(&loop{q: q})
	defer a.loop.Store(nil)
	if err := a.cfg.Source.Watch(ctx, a.Trigger); err != nil {
		a.cfg.Log.Warn("watching the local repository failed; polling only", "err", err)
	}
	a.following.Store(true)
	go a.followDeployments(ctx)
	defer a.applier.Close()
	q.Add(keySource)
	// Work marked before Run (a watch event) is taken by the first pass.
	var wg sync.WaitGroup
	for range a.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.processNext(ctx, q) {
			}
		}()
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
	return nil
}

// processNext takes one key from the queue and handles its outcome; false
// when the queue is shut down.
func (a *Agent) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	if ctx.Err() != nil {
		return true
	}
	switch key {
	case keySource:
		apps, err := a.sourcePass(ctx)
		o := Classify(err)
		switch o.Kind {
		case Transient:
			q.AddRateLimited(key)
			a.cfg.Log.Error("reconcile failed; keeping the last good state", "err", err, "retries", q.NumRequeues(key))
		case Stalled:
			q.Forget(key)
			a.cfg.Log.Error("source stalled; waiting for new content", "err", err)
		default:
			q.Forget(key)
		}
		q.AddAfter(keySource, a.cfg.Interval)
		if t := a.wakeTime(); !t.IsZero() {
			q.AddAfter(keySource, max(t.Sub(a.cfg.Now()), 0)+10*time.Millisecond)
		}
		for _, app := range apps {
			q.Add(app)
		}
		q.Add(keyPaced)
	case keyPaced:
		if due := a.drivePaced(ctx); !due.IsZero() {
			q.AddAfter(keyPaced, max(due.Sub(a.cfg.Now()), 0)+10*time.Millisecond)
		}
	default:
		o := a.syncApp(ctx, key)
		switch o.Kind {
		case Transient, Stalled:
			a.cfg.Metrics.reconcile("error")
		}
		switch o.Kind {
		case Transient:
			a.cfg.Log.Error("app reconcile failed; retrying with backoff", "app", key, "err", o.Err, "retries", q.NumRequeues(key))
			q.AddRateLimited(key)
		case Waiting:
			q.Forget(key)
			q.AddAfter(key, max(o.RetryAt.Sub(a.cfg.Now()), 0)+10*time.Millisecond)
		default:
			q.Forget(key)
		}
	}
	return true
}

// syncApp reconciles one app against the revision in force (the last one
// the source published) and classifies the result. A transient failure
// keeps the app's marks, so that its retry diffs again.
func (a *Agent) syncApp(ctx context.Context, app string) Outcome {
	w := a.takeWork(app)
	a.mu.Lock()
	p := a.current
	a.mu.Unlock()
	if p == nil {
		return Outcome{Kind: Done} // the first source pass queues it again
	}
	a.statesMu.RLock()
	err := a.reconcileIn(ctx, p, app, w)
	a.statesMu.RUnlock()
	o := Classify(err)
	switch o.Kind {
	case Transient:
		a.mu.Lock()
		a.work[app] |= w | wantDiff
		a.mu.Unlock()
	case Waiting:
		a.enqueueAfter(app, w|wantDiff, o.RetryAt)
	}
	return o
}

// reconcileIn is one app's reconcile against pass p: removed from git,
// held with the whole revision, or reconcileApp.
func (a *Agent) reconcileIn(ctx context.Context, p *pass, app string, w want) error {
	b := p.rev.ByName[app]
	if p.held != "" {
		st := a.appState(app)
		st.Phase, st.Reason = state.Held, p.held
		return a.save(ctx, st)
	}
	if b == nil {
		st := a.getApp(app)
		if st == nil || !p.rev.PruneOK() {
			return nil // what the invalid apps declare is unknown: prune nothing yet
		}
		if p.order.removed[app] {
			// An app that left git and that a wave matches is pruned in
			// its wave: after the waves before it, with its maxApps, and
			// for a manual wave once promoted.
			a.setWave(p, st)
			why, at := a.orderWait(p, st, false)
			a.markOrderWaiting(app, why != "")
			if why != "" {
				now := a.cfg.Now()
				if at.IsZero() {
					at = now.Add(orderRetry)
				}
				return a.wait(ctx, st, p.snap.Revision, "removal "+why, &peerWait{why: why}, max(at.Sub(now), 10*time.Millisecond))
			}
		}
		return a.removeApp(ctx, p.rev, st)
	}
	// The pass is shared by every sync of the app until the next one:
	// each sync stamps and sends its own copy of the objects.
	own := *b
	own.Objects, own.BCSObjects = deepCopies(b.Objects), deepCopies(b.BCSObjects)
	in := appInput{pass: p, app: b.Manifest, built: &own, revision: p.rev, rev: p.snap.Revision, cfg: p.cfg, gates: p.gates,
		force: w&(wantDiff|wantFull) != 0, full: w&wantFull != 0, retry: w&wantRetry != 0}
	return a.reconcileApp(ctx, in)
}

// runApps reconciles apps with Concurrency workers (ReconcileOnce's
// pass): failures (transient, or stalled ones that state does not record)
// are returned, by app; waiting apps are due again at their time.
func (a *Agent) runApps(ctx context.Context, apps []string) error {
	failed := map[string]error{}
	// Apps waiting for another app of the revision (peerWait) are run
	// again once the round that may have brought what they wait for is
	// over, while rounds make progress; waits that settle by themselves (a
	// CRD just applied becoming served) get a few more rounds, peerRetry
	// apart.
	settleRounds := 0
	for len(apps) > 0 {
		settling := false
		var mu sync.Mutex
		var wg sync.WaitGroup
		var again []string
		sem := make(chan struct{}, a.cfg.Concurrency)
		for _, app := range apps {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				o := a.syncApp(ctx, app)
				mu.Lock()
				defer mu.Unlock()
				var pw *peerWait
				switch {
				case o.Kind == Transient || o.Kind == Stalled:
					failed[app] = o.Err
				case o.Kind == Waiting && errors.As(o.Err, &pw):
					again = append(again, app)
					settling = settling || pw.settles
				}
			}()
		}
		wg.Wait()
		if len(again) == len(apps) {
			if !settling || settleRounds >= maxSettleRounds {
				break // no app of the round got further: wait for the next pass
			}
			settleRounds++
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(peerRetry):
			}
		}
		sort.Strings(again)
		for _, app := range again {
			a.mu.Lock()
			delete(a.retryAt, app) // due now, not at its retry time
			a.work[app] |= a.retryWant[app] | wantDiff
			delete(a.retryWant, app)
			a.mu.Unlock()
		}
		apps = again
	}
	var errs []error
	for _, app := range sortedKeys(failed) {
		errs = append(errs, fmt.Errorf("app %s: %w", app, failed[app]))
	}
	return errors.Join(errs...)
}

// peerWait is why an app waits for another app of the same revision.
// settles: what it waits for comes by itself shortly after the other app
// applied (a CRD becoming Established and served, a Namespace created).
type peerWait struct {
	why     string
	settles bool
}

func (p *peerWait) Error() string { return p.why }

// waitsForPeers returns why app's revision must wait for another app of the
// same revision, "" when it need not: a namespace its objects use that
// another app brings (a Namespace object) and that does not exist yet, or
// a kind of its objects that another app's CRD brings and the server does
// not serve yet. The
// apps of a revision are reconciled concurrently, so the order of their
// directories no longer decides; an app that brings its own Namespace is
// handled by the applier (stand-in dry run, Namespaces first). A namespace
// seen once is not read again.
func (a *Agent) waitsForPeers(ctx context.Context, in appInput) (string, error) {
	own := map[string]bool{}
	used := map[string]bool{}
	for _, o := range in.built.Objects {
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			own[o.GetName()] = true
		}
		if ns := o.GetNamespace(); ns != "" {
			used[ns] = true
		}
	}
	for _, s := range in.built.Specs {
		used[s.Namespace] = true
	}
	for _, o := range in.built.Objects {
		ref := appliers.RefOf(o)
		c, ok := in.revision.CRDs[ref.Group+"/"+ref.Kind]
		if !ok || c.App == in.app.Name {
			continue
		}
		if _, err := a.applier.Mapping(ref); errors.Is(err, appliers.ErrUnknownKind) {
			a.enqueue(c.App, wantDiff)
			return fmt.Sprintf("CustomResourceDefinition %s, which app %s brings, does not serve %s yet", c.Name, c.App, ref.Kind), nil
		} else if err != nil {
			return "", err
		}
	}
	for _, ns := range sortedKeys(used) {
		if own[ns] {
			continue
		}
		key := appliers.ObjectRef{Kind: "Namespace", Name: ns}.Key()
		peer, ok := in.revision.Lookup(key)
		if !ok || peer == in.app.Name {
			continue
		}
		a.mu.Lock()
		known := a.namespaces[ns]
		a.mu.Unlock()
		if known {
			continue
		}
		_, err := a.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			a.enqueue(peer, wantDiff) // it brings the Namespace (again, if deleted by hand)
			return fmt.Sprintf("Namespace %s, which app %s brings, does not exist yet", ns, peer), nil
		case err != nil:
			return "", err
		}
		a.mu.Lock()
		a.namespaces[ns] = true
		a.mu.Unlock()
	}
	return "", nil
}

// maxSettleRounds bounds the rounds a ReconcileOnce pass gives a wait that
// settles by itself (10 s at peerRetry): a CRD is served a moment after
// it is created.
const maxSettleRounds = 10

// deepCopies copies objs, each deeply.
func deepCopies(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	if objs == nil {
		return nil
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

// peerNamespaceGone turns an error of a namespace that does not exist (a
// Namespace deleted by hand after waitsForPeers saw it) into the name of
// the app of the revision that brings it: the app waits for it, and that
// app is queued to bring it back. ok is false for any other error.
func (a *Agent) peerNamespaceGone(in appInput, err error) (string, bool) {
	var st apierrors.APIStatus
	if err == nil || !apierrors.IsNotFound(err) || !errors.As(err, &st) {
		return "", false
	}
	d := st.Status().Details
	if d == nil || d.Kind != "namespaces" || d.Name == "" {
		return "", false
	}
	peer, ok := in.revision.Lookup(appliers.ObjectRef{Kind: "Namespace", Name: d.Name}.Key())
	if !ok || peer == in.app.Name {
		return "", false
	}
	a.mu.Lock()
	delete(a.namespaces, d.Name)
	a.mu.Unlock()
	a.enqueue(peer, wantDiff)
	return fmt.Sprintf("Namespace %s, which app %s brings, does not exist", d.Name, peer), true
}
