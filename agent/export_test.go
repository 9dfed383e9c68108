package agent

import "context"

// Follow starts the Deployment and ReplicaSet watch that Run starts, for
// tests and benchmarks that drive ReconcileOnce themselves.
func (a *Agent) Follow(ctx context.Context) {
	a.following.Store(true)
	go a.followDeployments(ctx)
}

// MarkDirty marks app for a drift check, as the Deployment watch does.
func (a *Agent) MarkDirty(app string) { a.markDirty(app) }

// SourcePass runs the source pass alone (fetch, build, publish) and
// returns the apps it queues; RunApps reconciles them as ReconcileOnce
// does.
func (a *Agent) SourcePass(ctx context.Context) ([]string, error) { return a.sourcePass(ctx) }

// RunApps reconciles apps against the pass in force (ReconcileOnce's
// second half).
func (a *Agent) RunApps(ctx context.Context, apps []string) error { return a.runApps(ctx, apps) }
