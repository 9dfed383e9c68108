package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/state"
)

// inputKey identifies what a reconcile of app b reads from its revision,
// apart from the commit and gitpace.yaml (compared whole, by
// changedApps): its desired objects as built (namespaces defaulted,
// file:line annotations), its BCS files, its Helm hooks and render
// notes, the PAUSE marker that applies to it (in its directory or an
// ancestor), its PROMOTE marker, the entries of its directory that were
// not read, and its bad input or transient error. Two revisions that give
// an app the same key reconcile it alike; 64 hex digits of a sha256.
func inputKey(b *revision.App) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	m := b.Manifest
	_ = enc.Encode([]any{m.Name, m.Kind, m.Dir, m.Pause, m.Promote, m.Skipped, m.Notes, errText(b.Err), errText(b.Transient)})
	for _, o := range b.Objects {
		_ = enc.Encode(o.Object)
	}
	for _, f := range m.BCS {
		_ = enc.Encode(f)
	}
	for _, hk := range m.Hooks {
		var obj map[string]any
		if hk.Object != nil {
			obj = hk.Object.Object
		}
		_ = enc.Encode([]any{obj, hk.Origin, hk.Hook})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// inputKeys is inputKey of every app of rev, by name.
func inputKeys(rev *revision.Revision) map[string]string {
	out := make(map[string]string, len(rev.Apps))
	for _, b := range rev.Apps {
		out[b.Name()] = inputKey(b)
	}
	return out
}

// changedApps returns the apps a new head concerns when neither a resync
// nor a window edge is due, given the pass in force (prev) and the new
// one (p): every app of the agent and of p when something that every app
// reads changed, otherwise only the apps whose own inputs changed, those
// that left git, and those whose last reconcile did not settle. all is
// true when every app is returned.
//
// Every app is concerned when there is no previous pass (the first one of
// the process: the states are checked against the cluster once), when
// revisions must be signed (the signature gate checks the head commit,
// which every app's revision moves to), when gitpace.yaml changed (app
// rules, allow-lists, windows, onFailure), when either pass is held whole
// (guardEmpty), and when the previous pass held an invalid app (prunes
// were deferred while it did: revision.Revision.PruneOK).
//
// An app whose last reconcile did not settle is one without state or
// applied revision, or not Synced (Progressing, OutOfSync waiting for a
// namespace or another app, Held, Paused, Failed), or with a rejected
// revision: its reconcile may come out differently now. Apps marked by
// watches and due retries are added by the caller (queued).
//
// The apps whose inputs changed come first, sorted, then the others,
// sorted: the workers take them in this order, so a commit's own apps are
// not queued behind the others. The caller holds statesMu.
func (a *Agent) changedApps(prev, p *pass) (apps []string, all bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	all = prev == nil || a.cfg.KeyRing != nil || prev.held != "" || p.held != "" ||
		!prev.rev.PruneOK() || !bytes.Equal(prev.snap.Files[policies.ConfigFile], p.snap.Files[policies.ConfigFile])
	changed, others := map[string]bool{}, map[string]bool{}
	for _, b := range p.rev.Apps {
		switch name := b.Name(); {
		case all || prev.inputs[name] != p.inputs[name]:
			changed[name] = true
		case !settled(a.apps[name]):
			others[name] = true
		}
	}
	for name := range a.apps {
		if all || p.rev.ByName[name] == nil {
			changed[name] = true // left git: prune it
		}
	}
	return appendNew(sortedKeys(changed), sortedKeys(others)), all
}

// appendNew appends to list the names of more that it does not hold yet.
func appendNew(list, more []string) []string {
	seen := make(map[string]bool, len(list))
	for _, s := range list {
		seen[s] = true
	}
	for _, s := range more {
		if !seen[s] {
			seen[s] = true
			list = append(list, s)
		}
	}
	return list
}

// settled reports whether an app's last reconcile settled: a revision
// applied and Synced, nothing rejected, not paused.
func settled(st *state.App) bool {
	return st != nil && st.Applied != nil && st.Phase == state.Synced && st.Rejected == nil && st.PausedBy == nil
}
