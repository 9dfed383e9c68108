package plan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Text writes the plan for a terminal: per app that changes, the unified
// diff of each object (as `gitpace diff` prints them), then each rollout
// with its steps or cycles as kubectl-style tables; a summary line last.
func Text(w io.Writer, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "plan of revision %s %q (%s), from %s\n", p.Revision.Short(), p.Revision.Subject, p.Revision.Author, p.Now.Format("2006-01-02T15:04:05Z07:00"))
	if p.Error != "" {
		fmt.Fprintf(&b, "\nerror: %s\n", p.Error)
	}
	for i := range p.Apps {
		if a := &p.Apps[i]; a.shown() {
			textApp(&b, a, p)
		}
	}
	textWaves(&b, p)
	if names := p.unchangedApps(); len(names) > 0 {
		fmt.Fprintf(&b, "\nunchanged apps: %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(&b, "\n%s\n", p.summary())
	_, err := io.WriteString(w, b.String())
	return err
}

func textApp(b *strings.Builder, a *AppPlan, p *Plan) {
	changed, _ := changedObjects(a.Changes)
	if len(a.Changes) > 0 {
		fmt.Fprintf(b, "\n=== app %s: %s\n", a.App, a.Changes.Summary())
	} else {
		fmt.Fprintf(b, "\n=== app %s\n", a.App)
	}
	if a.Error != "" {
		fmt.Fprintf(b, "error: the revision is invalid for this app; the agent would reject it and change nothing:\n%s\n", indent(a.Error, "  "))
	}
	if a.Paused != "" {
		fmt.Fprintf(b, "paused by %s: nothing rolls until the marker is removed\n", a.Paused)
	}
	switch {
	case a.Wait != "" && a.Start.IsZero():
		fmt.Fprintf(b, "waits: %s\n", a.Wait) // a manual wave: no time to give
	case a.Wait != "":
		fmt.Fprintf(b, "held: %s; earliest apply %s\n", a.Wait, when(a.Start, p.Now))
	}
	for _, c := range changed {
		fmt.Fprintf(b, "\n# %s %s\n%s", c.Ref, c.Action, c.Diff)
	}
	if len(a.Hooks) > 0 && a.Changed() {
		fmt.Fprintf(b, "\nhooks run with this apply:\n")
		for _, h := range a.Hooks {
			fmt.Fprintf(b, "  %s\n", h)
		}
	}
	for i := range a.Rollouts {
		textRollout(b, &a.Rollouts[i], p)
	}
}

func textRollout(b *strings.Builder, r *Rollout, p *Plan) {
	fmt.Fprintf(b, "\n%s: %s\n", r.title(), r.Summary)
	if r.Strategy != "" && (len(r.Steps) > 0 || len(r.Cycles) > 0) {
		fmt.Fprintf(b, "  %s\n", r.Strategy)
	}
	if len(r.Steps) > 0 {
		table(b, func(tw io.Writer) {
			fmt.Fprintln(tw, "  STEP\tNEW\tOLD\tTOTAL\tMIN-AVAILABLE\tACTION")
			for i, s := range r.Steps {
				fmt.Fprintf(tw, "  %d\t%d\t%d\t%d\t%d\t%s\n", i+1, s.New, s.Old, s.Total, s.MinAvailable, s.Action)
			}
		})
	}
	if len(r.Cycles) > 0 {
		table(b, func(tw io.Writer) {
			fmt.Fprintln(tw, "  CYCLE\tEARLIEST START\tNEW\tOLD\tACTION\tNOTE")
			for _, c := range r.Cycles {
				fmt.Fprintf(tw, "  %d\t%s\t%d→%d\t%d→%d\t%s\t%s\n", c.N, when(c.Start, p.Now), c.NewFrom, c.NewTo, c.OldFrom, c.OldTo, c.Action(), cycleNote(c))
			}
		})
		fmt.Fprintf(b, "  earliest finish: %s\n", when(r.Finish, p.Now))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(b, "  note: %s\n", n)
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// table writes rows through a tabwriter with kubectl's spacing, without
// the padding an empty last column leaves at the ends of lines.
func table(b *strings.Builder, rows func(io.Writer)) {
	var t strings.Builder
	tw := tabwriter.NewWriter(&t, 0, 8, 3, ' ', 0)
	rows(tw)
	_ = tw.Flush()
	for line := range strings.Lines(t.String()) {
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteString("\n")
	}
}
