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
