package revision

import (
	"fmt"
	"path"

	"github.com/go-git/go-git/v5/plumbing/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/manifest"
)

// ContentChanges lists, newest first, the commits of the checked-out branch
// of the clone at dir, after commit base (exclusive), that changed app's
// content: `gitpace rollback` reverts exactly these. appsPath is the apps
// directory inside the repository, as given to `gitpace run --path`.
//
// A commit changed the app when the app's content hash (App.ContentHash)
// differs between the commit and its first parent, each built as the agent
// builds a revision (manifest.Load of the snapshot under appsPath, then
// Build), so every input the app reads counts: its own files, a kustomize
// base or component outside its directory, a Helm chart's values files,
// and gitpace.yaml when it changes what the app renders (inline Helm
// values). A commit that only adds or removes a PAUSE or PROMOTE marker, or
// changes other apps only, leaves the hash as it is and is not listed, so
// a rollback neither pauses nor resumes. The cluster is not asked
// (Build's Prepare does nothing): namespaces are not defaulted, which
// changes both sides of the comparison alike. When the app has no content
// at both (invalid, or absent), the commit counts when it changed a file
// directly in the app's directory other than those markers.
//
// Errors: a clone that cannot be opened, a base not in the branch's history
// (sources.ErrRevisionNotFound), a commit that cannot be read.
func ContentChanges(dir, appsPath, base, app string) ([]string, error) {
	hashes := map[string]string{} // commit -> app's content hash ("" none)
	hashAt := func(c *object.Commit) (string, error) {
		if h, ok := hashes[c.Hash.String()]; ok {
			return h, nil
		}
		h, err := contentAt(c, appsPath, app)
		if err != nil {
			return "", err
		}
		hashes[c.Hash.String()] = h
		return h, nil
	}
	appDir := sources.InAppDir(path.Join(appsPath, app))
	inApp := func(name string) bool {
		base := path.Base(name)
		return appDir(name) && base != sources.PauseFile && base != sources.PromoteFile
	}
	return sources.CommitsSince(dir, base, func(c *object.Commit) (bool, error) {
		after, err := hashAt(c)
		if err != nil {
			return false, err
		}
		before := ""
		if c.NumParents() > 0 {
			p, err := c.Parent(0)
			if err != nil {
				return false, err
			}
			if before, err = hashAt(p); err != nil {
				return false, err
			}
		}
		if after != "" || before != "" {
			return after != before, nil
		}
		return sources.CommitTouches(c, inApp)
	})
}

// contentAt is app's ContentHash at commit c, built as ContentChanges
// describes ("" when the app is absent or has no content).
func contentAt(c *object.Commit, appsPath, app string) (string, error) {
	snap, err := sources.CommitSnapshot(c, appsPath)
	if err != nil {
		return "", err
	}
	_, cfgErr := policies.ConfigFromFiles(snap.Files, snap.Path)
	rev, err := Build(Config{Prepare: func([]*unstructured.Unstructured) error { return nil }}, snap.Revision, manifest.Load(snap), cfgErr)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Hash.String()[:7], err)
	}
	if b := rev.ByName[app]; b != nil {
		return b.ContentHash, nil
	}
	return "", nil
}
