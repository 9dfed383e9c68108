package agent

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/state"
)

// Objects two agents declare.
//
// An object that another agent applied last (its live gitpace.dev/agent
// label names that agent) is declared by both. Each agent's watches see the
// other's write: the live-object cache watches only objects labelled with
// its own agent, so an object relabelled by the other leaves the watch as
// if it had been deleted (appliers' OnDeleted), and a Deployment gets a
// generation this agent did not write (follow.go). Re-applying at once
// made the two agents write the object in turn, several times a second,
// for ever. As Flux's kustomize-controller (which takes an object back
// only at its interval) and Argo CD (which reports a SharedResourceWarning
// and does not loop):
//
//   - a drift pass (the content in force, marked by a watch or a retry; not
//     a full resync) leaves such an object as the other agent wrote it and
//     records the conflict in the app's state (state.App.Conflict, shown in
//     `gitpace status`), printed once per change of it;
//   - new content, and a full resync (--resync, and each agent start),
//     take it over in place and say so ("took over ConfigMap/shop/x from
//     agent A, app web", with a warning in the log).
//
// Two agents that both run thus write the object at most once each per
// resync. Objects of another app of the same agent (a renamed app
// directory, an object moved between apps) are not concerned: they are
// handed over at once.

// otherAgent returns the other agent's Owner when the live object of c
// names an agent that is not this one.
func (a *Agent) otherAgent(c appliers.Change) (appliers.Owner, bool) {
	o := c.LiveOwner
	if o == nil || o.Agent == "" || o.Agent == a.cfg.Name {
		return appliers.Owner{}, false
	}
	return *o, true
}

// leaveShared takes out of a drift pass the objects that another agent
// applied last (see the file's comment): it returns objs without them,
// diff with their changes Skipped (Reason names the other owner), and the
// app's conflict text ("" when there is none).
func (a *Agent) leaveShared(objs []*unstructured.Unstructured, diff appliers.ChangeSet) ([]*unstructured.Unstructured, appliers.ChangeSet, string) {
	left := map[string]bool{}
	var notes []string
	out := make(appliers.ChangeSet, 0, len(diff))
	for _, c := range diff {
		if o, ok := a.otherAgent(c); ok && c.Action != appliers.Unchanged {
			left[c.Ref.Key()] = true
			notes = append(notes, fmt.Sprintf("%s is also declared by %s, which applied it last", c.Ref, o))
			c = appliers.Change{Ref: c.Ref, Action: appliers.Skipped, LiveOwner: c.LiveOwner,
				Reason: "left to " + o.String() + " until the next resync"}
		}
		out = append(out, c)
	}
	if len(left) == 0 {
		return objs, diff, ""
	}
	keep := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if !left[appliers.RefOf(o).Key()] {
			keep = append(keep, o)
		}
	}
	return keep, out, conflictText(notes)
}

// conflictText is the app's conflict, e.g. "ConfigMap/shop/x is also
// declared by agent A, app web, which applied it last; left as it is until
// the next resync, which takes it back (declare each object in one
// repository)".
func conflictText(notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	left := "left as it is until the next resync, which takes it back"
	if len(notes) > 1 {
		left = "left as they are until the next resync, which takes them back"
	}
	return strings.Join(notes, "; ") + "; " + left + " (declare each object in one repository)"
}

// noteConflict records an app's conflict (conflictText; "" clears it) and,
// when it changed, prints it and logs a warning.
func (a *Agent) noteConflict(st *state.App, conflict string) {
	if conflict != "" && conflict != st.Conflict {
		a.printf("app %s: conflict: %s", st.Name, conflict)
		a.cfg.Log.Warn("an object this app declares was applied by another agent; left to it until the next resync", "app", st.Name, "conflict", conflict)
	}
	st.Conflict = conflict
}
