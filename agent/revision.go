package agent

import (
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/manifest"
)

// buildRevision builds the agent-wide revision of apps (revision.Build)
// with the agent's identity and its applier's discovery.
func (a *Agent) buildRevision(rev sources.Revision, apps []manifest.App, cfgErr error) (*revision.Revision, error) {
	return revision.Build(revision.Config{Agent: a.cfg.Name, Prepare: a.applier.Prepare}, rev, apps, cfgErr)
}
