package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaseName is the Lease, in the state namespace, that agents elect a leader
// with.
const LeaseName = "gitpace-leader"

// Election configures leader election between agents that share a state
// namespace (replicas of one agent, for availability). Zero durations mean
// the Kubernetes components' defaults: 15 s, 10 s and 2 s.
type Election struct {
	// Identity names this agent in the Lease; default hostname_random.
	Identity                                  string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// ErrLeaseLost is returned by RunElected when another agent took the lease
// over; the process should exit (and be restarted as a standby), as
// Kubernetes controllers do.
var ErrLeaseLost = errors.New("lost the leader lease")

// RunElected runs the agent (Run) only while it holds the Lease LeaseName in
// the state namespace; a standby waits, making no write. When ctx ends, the
// agent stops first and the lease is released after, so a standby takes over
// at once and two agents never act together. A lease lost while running
// (renewal failed for RenewDeadline) stops the agent and returns
// ErrLeaseLost.
func (a *Agent) RunElected(ctx context.Context, e Election) error {
	if e.Identity == "" {
		host, _ := os.Hostname()
		e.Identity = host + "_" + rand.String(6)
	}
	e.LeaseDuration = orDefault(e.LeaseDuration, 15*time.Second)
	e.RenewDeadline = orDefault(e.RenewDeadline, 10*time.Second)
	e.RetryPeriod = orDefault(e.RetryPeriod, 2*time.Second)
	for {
		err := a.store.EnsureNamespace(ctx)
		if err == nil {
			break
		}
		a.cfg.Log.Error("leader election: state namespace", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.RetryPeriod):
		}
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: a.store.Namespace, Name: LeaseName},
		Client:     a.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	ran := make(chan error, 1) // Run's result, once it was started
	var started atomic.Bool
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: "gitpace",
		LeaseDuration: e.LeaseDuration, RenewDeadline: e.RenewDeadline, RetryPeriod: e.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) {
				started.Store(true)
				a.cfg.Metrics.setLeader(true)
				a.cfg.Log.Info("leader election: leading", "identity", e.Identity, "lease", a.store.Namespace+"/"+LeaseName)
				run, stop := context.WithCancel(leading)
				go func() {
					select {
					case <-ctx.Done():
					case <-run.Done():
					}
					stop()
				}()
				ran <- a.Run(run)
				stop()
				a.cfg.Metrics.setLeader(false)
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != e.Identity {
					a.cfg.Log.Info("leader election: standing by", "leader", id, "identity", e.Identity)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	// The elector gets its own context: it is cancelled (and the lease
	// released) only after Run has returned.
	elect, release := context.WithCancel(context.Background())
	defer release()
	elected := make(chan struct{})
	go func() { defer close(elected); le.Run(elect) }()
	select {
	case <-ctx.Done():
		if started.Load() {
			<-ran // the agent has stopped: no write after the release
		}
		release()
		<-elected
		return nil
	case <-elected:
		// The elector stops by itself only after losing the lease.
		<-ran
		return ErrLeaseLost
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
