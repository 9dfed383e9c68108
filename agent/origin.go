package agent

import (
	"context"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
)

// The revision an app's content is recorded at.
//
// An app's applied revision, its history entry and its workloads'
// change-cause name the commit that made the content in force: the oldest
// commit of the run of first-parent commits, ending at the branch head,
// that give the app that content (revision.App.ContentHash). A commit
// that leaves the app's content as it is (one changing other apps, or only
// PAUSE or PROMOTE markers) is not recorded for it, whether the agent saw
// the commits one by one or only the head (a restart, several pushed at
// once):
//
//	C0 web v1 ─ P pause web ─ C1 web v2 (paused) ─ R resume web ─ C2 api only
//	web applied at R (the PAUSE lifted): recorded at C1, the commit of v2;
//	a pass at C2, or a restart there, records nothing new for web.
//
// (Flux's lastAppliedRevision names the source's head instead; gitpace's
// history lists the commits that changed the app, as `git log` of its
// directory would, and `applied` names the same commit.)

// maxOriginWalk bounds how many commits contentOrigin reads back from the
// head: past it, the oldest commit read is taken.
const maxOriginWalk = 50

// originCache keeps each app's content hash at recent commits: those of
// the passes built (free) and those contentOrigin read. walk serializes
// the walks, so that two apps of one commit read an older commit once.
type originCache struct {
	walk   sync.Mutex
	mu     sync.Mutex
	hashes map[string]map[string]string // commit -> app -> content hash
	order  []string                     // commits, oldest first
}

// originCacheSize is how many commits originCache remembers.
const originCacheSize = 64

func (c *originCache) get(commit string) (map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hashes[commit]
	return h, ok
}

// note records the content hash of every valid app of rev at commit.
func (c *originCache) note(commit string, rev *revision.Revision) map[string]string {
	h := make(map[string]string, len(rev.Apps))
	for _, b := range rev.Apps {
		if b.ContentHash != "" {
			h[b.Name()] = b.ContentHash
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hashes == nil {
		c.hashes = map[string]map[string]string{}
	}
	if _, ok := c.hashes[commit]; !ok {
		c.order = append(c.order, commit)
		if len(c.order) > originCacheSize {
			delete(c.hashes, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.hashes[commit] = h
	return h
}

// contentOrigin returns the revision that made app's content hash, the
// content of app in pass p (see the comment at the top of this file):
// p's head, or the oldest of its first-parent ancestors down from it that
// give app the same content. The walk stops at the revision in force
// (inForce, "" if none), at a commit it cannot read, and after
// maxOriginWalk commits; a commit read is built as a pass is
// (buildRevision), so its apps' hashes compare with p's.
func (a *Agent) contentOrigin(ctx context.Context, p *pass, app, hash, inForce string) sources.Revision {
	head := p.snap.Revision
	a.origins.walk.Lock()
	defer a.origins.walk.Unlock()
	c, err := a.lookupCommit(ctx, head.Commit)
	if err != nil {
		a.cfg.Log.Warn("reading the head commit to find what changed the app; recording the head", "app", app, "commit", head.Short(), "err", err)
		return head
	}
	origin := head
	for range maxOriginWalk {
		if c.NumParents() == 0 {
			break
		}
		parent, err := c.Parent(0)
		if err != nil {
			a.cfg.Log.Warn("reading a parent commit to find what changed the app", "app", app, "commit", c.Hash.String()[:7], "err", err)
			break
		}
		if parent.Hash.String() == inForce || a.contentAt(parent)[app] != hash {
			break
		}
		c, origin = parent, sources.RevisionOf(parent)
	}
	return origin
}

// contentAt returns the content hash of every app at commit c, read from
// git and built when originCache does not hold it; nil when it cannot be
// read.
func (a *Agent) contentAt(c *object.Commit) map[string]string {
	if h, ok := a.origins.get(c.Hash.String()); ok {
		return h
	}
	snap, err := a.cfg.Source.SnapshotOf(c)
	if err != nil {
		return nil
	}
	_, cfgErr := policies.ConfigFromFiles(snap.Files, snap.Path)
	rev, err := a.buildRevision(snap.Revision, a.loader.Load(snap), cfgErr)
	if err != nil {
		return nil
	}
	return a.origins.note(c.Hash.String(), rev)
}
