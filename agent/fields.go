package agent

import (
	"strings"

	"github.com/gitpace/gitpace/appliers"
)

// printNotes prints each object's note (spec.replicas left to an HPA, a
// re-creation) once per agent process and note text: a note repeated at
// every pass would read as a new event.
func (a *Agent) printNotes(app string, cs appliers.ChangeSet) {
	for _, c := range cs {
		key := c.Ref.Key()
		a.mu.Lock()
		seen := c.Note == "" || a.notes[key] == c.Note
		if !seen {
			a.notes[key] = c.Note
		}
		a.mu.Unlock()
		if seen {
			continue
		}
		a.printf("app %s: %s: %s", app, c.Ref, c.Note)
		a.cfg.Log.Warn("object note", "app", app, "object", c.Ref.String(), "note", c.Note)
	}
}

// recreatedNote names the objects cs re-created, for the history entry.
func recreatedNote(cs appliers.ChangeSet) string {
	var names []string
	for _, c := range cs {
		if c.Action == appliers.Recreated {
			names = append(names, c.Ref.String())
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "re-created " + strings.Join(names, ", ")
}

func joinNotes(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
