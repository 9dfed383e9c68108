package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/gitpace/gitpace/appliers"
)

// when shows t relative to now: "now", "2026-11-27T06:00:00Z (now+8h0m0s)",
// or "never" for the zero time.
func when(t, now time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case !t.After(now):
		return "now"
	}
	return fmt.Sprintf("%s (now+%s)", t.UTC().Format(time.RFC3339), t.Sub(now).Round(time.Second))
}

// changedObjects are the entries of cs that are not Unchanged, and how many are.
func changedObjects(cs appliers.ChangeSet) (changed []appliers.Change, unchanged int) {
	for _, c := range cs {
		if c.Action == appliers.Unchanged {
			unchanged++
			continue
		}
		changed = append(changed, c)
	}
	return changed, unchanged
}

// summary is the plan's last line, e.g. "revision 4ca8b8a: 1 of 2 apps change".
func (p *Plan) summary() string {
	var changed, failed int
	for i := range p.Apps {
		if p.Apps[i].Error != "" {
			failed++
		} else if p.Apps[i].Changed() {
			changed++
		}
	}
	rev := p.Revision.Short()
	switch {
	case p.Error != "":
		return fmt.Sprintf("revision %s is invalid: %s", rev, firstLine(p.Error))
	case failed > 0:
		return fmt.Sprintf("revision %s is invalid in %d of %d apps (the agent would reject them and change nothing there)", rev, failed, len(p.Apps))
	case changed == 0:
		return fmt.Sprintf("revision %s: no changes", rev)
	}
	return fmt.Sprintf("revision %s: %d of %d apps change", rev, changed, len(p.Apps))
}

// unchangedApps names the apps that neither change nor fail.
func (p *Plan) unchangedApps() []string {
	var out []string
	for i := range p.Apps {
		if a := &p.Apps[i]; a.Error == "" && !a.Changed() {
			out = append(out, a.App)
		}
	}
	return out
}

// shown reports whether an app gets a section of its own.
func (a *AppPlan) shown() bool { return a.Error != "" || a.Changed() }

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// rolloutTitle is e.g. "Deployment ns/test".
func (r *Rollout) title() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// cycleNote is the note column of a cycle.
func cycleNote(c Cycle) string {
	var notes []string
	if c.Approval {
		notes = append(notes, "waits for approval (rollingManually)")
	}
	if c.Wait != "" {
		notes = append(notes, "held: "+c.Wait)
	}
	return strings.Join(notes, "; ")
}
