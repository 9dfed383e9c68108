package plan

import (
	"fmt"
	"io"
	"strings"
)

// Markdown writes the plan as GitHub-flavoured Markdown, for a CI job to
// post on the pull request: a heading per app that changes or fails, a
// table of its object changes, the diffs in ```diff fences, each rollout's
// steps or cycles as a table and a BCS rollout's earliest finish.
func Markdown(w io.Writer, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## gitpace plan: `%s` %s\n\n", p.Revision.Short(), cell(p.Revision.Subject))
	fmt.Fprintf(&b, "**%s**. Planned %s; times assume every pod is Ready at once.\n", p.summary(), p.Now.Format("2006-01-02T15:04:05Z07:00"))
	if p.Error != "" {
		fmt.Fprintf(&b, "\n> [!CAUTION]\n> The revision is invalid.\n\n%s", fenced("text", p.Error))
	}
	for i := range p.Apps {
		if a := &p.Apps[i]; a.shown() {
			mdApp(&b, a, p)
		}
	}
	mdWaves(&b, p)
	if names := p.unchangedApps(); len(names) > 0 {
		fmt.Fprintf(&b, "\nUnchanged apps: `%s`\n", strings.Join(names, "`, `"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdApp(b *strings.Builder, a *AppPlan, p *Plan) {
	fmt.Fprintf(b, "\n### app `%s`\n", a.App)
	if a.Error != "" {
		fmt.Fprintf(b, "\n> [!CAUTION]\n> Invalid: the agent would reject this revision of the app and change nothing.\n\n%s", fenced("text", a.Error))
	}
	if a.Paused != "" {
		fmt.Fprintf(b, "\n> [!NOTE]\n> Paused by %s: nothing rolls until the marker is removed.\n", cell(a.Paused))
	}
	switch {
	case a.Wait != "" && a.Start.IsZero():
		fmt.Fprintf(b, "\n> [!NOTE]\n> Waits: %s.\n", cell(a.Wait))
	case a.Wait != "":
		fmt.Fprintf(b, "\n> [!NOTE]\n> Held: %s. Earliest apply: %s.\n", cell(a.Wait), when(a.Start, p.Now))
	}
	changed, unchanged := changedObjects(a.Changes)
	if len(changed) > 0 {
		b.WriteString("\n| object | change |\n|---|---|\n")
		for _, c := range changed {
			fmt.Fprintf(b, "| `%s` | %s |\n", c.Ref, c.Action)
		}
		if unchanged > 0 {
			fmt.Fprintf(b, "\n%d more unchanged.\n", unchanged)
		}
		b.WriteString("\n")
		for _, c := range changed {
			b.WriteString(fenced("diff", c.Diff))
		}
	}
	if len(a.Hooks) > 0 && a.Changed() {
		b.WriteString("\n**Hooks run with this apply**:\n\n")
		for _, h := range a.Hooks {
			fmt.Fprintf(b, "- %s\n", cell(h))
		}
	}
	for i := range a.Rollouts {
		mdRollout(b, &a.Rollouts[i], p)
	}
}

func mdRollout(b *strings.Builder, r *Rollout, p *Plan) {
	fmt.Fprintf(b, "\n**%s `%s/%s`**: %s\n", r.Kind, r.Namespace, r.Name, cell(r.Summary))
	if r.Strategy != "" && (len(r.Steps) > 0 || len(r.Cycles) > 0) {
		fmt.Fprintf(b, "(%s)\n", cell(r.Strategy))
	}
	if len(r.Steps) > 0 {
		b.WriteString("\n| step | new | old | total | min available | action |\n|---:|---:|---:|---:|---:|---|\n")
		for i, s := range r.Steps {
			fmt.Fprintf(b, "| %d | %d | %d | %d | %d | %s |\n", i+1, s.New, s.Old, s.Total, s.MinAvailable, cell(s.Action))
		}
	}
	if len(r.Cycles) > 0 {
		b.WriteString("\n| cycle | earliest start | new | old | action | note |\n|---:|---|---:|---:|---|---|\n")
		for _, c := range r.Cycles {
			fmt.Fprintf(b, "| %d | %s | %d→%d | %d→%d | %s | %s |\n", c.N, when(c.Start, p.Now), c.NewFrom, c.NewTo, c.OldFrom, c.OldTo, cell(c.Action()), cell(cycleNote(c)))
		}
		fmt.Fprintf(b, "\n**Earliest finish**: %s\n", when(r.Finish, p.Now))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(b, "\n- %s\n", cell(n))
	}
}

// cell escapes text for a table cell or a single Markdown line: pipes,
// newlines, and angle brackets, which would start HTML tags ("test-v<unix
// seconds>", "Name <email>").
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

// fenced puts text in a code fence longer than any backtick run inside it.
func fenced(lang, text string) string {
	fence := "```"
	for strings.Contains(text, fence) {
		fence += "`"
	}
	return fmt.Sprintf("%s%s\n%s\n%s\n", fence, lang, strings.TrimRight(text, "\n"), fence)
}
