package agent

import (
	"context"

	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
)

// Diff computes, without writing anything to the cluster or to git, what
// applying revision rev ("" = branch head) would change, as this agent
// would apply it (revision.Diff).
func (a *Agent) Diff(ctx context.Context, rev string) (sources.Revision, []revision.AppDiff, error) {
	snap, err := a.cfg.Source.SnapshotAt(ctx, rev)
	if err != nil {
		return sources.Revision{}, nil, err
	}
	diffs, err := revision.Diff(ctx, revision.Cluster{Applier: a.applier, Store: a.store, Agent: a.cfg.Name, Loader: a.loader}, snap)
	return snap.Revision, diffs, err
}
