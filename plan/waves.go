package plan

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gitpace/gitpace/policies"
)

// WavePlan is one wave of gitpace.yaml's waves as the revision would roll
// it: the apps of the wave it changes and when the wave may start at the
// earliest. Times assume, as for cycles, that every pod is Ready at once:
// a wave starts at the previous wave's start plus that wave's interval
// (when it changes anything), or when it is promoted.
type WavePlan struct {
	// N is the wave, 1-based as `gitpace promote --wave N` counts.
	N int `json:"n"`
	// Apps are the wave's apps the revision changes.
	Apps []string `json:"apps"`
	// MaxApps is how many of them roll at once.
	MaxApps int `json:"maxApps"`
	// Interval is the wave's interval ("" for none): how long the next
	// wave waits after this one is Healthy.
	Interval string `json:"interval,omitempty"`
	Manual   bool   `json:"manual,omitempty"`
	// Start is the earliest start of the wave; zero when it waits for a
	// promote (Note says which).
	Start time.Time `json:"start,omitzero"`
	Note  string    `json:"note,omitempty"`
}

// planOrder reports what gitpace.yaml's dependsOn does to the revision,
// as the agent will: an app on a dependsOn cycle, or whose dependsOn runs
// against the order of the waves, is invalid (the agent rejects it, even
// when the commit did not change it); an app depending on one the
// revision does not hold waits.
func planOrder(p *Plan, cfg *policies.Config) {
	if cfg == nil {
		return
	}
	names := make([]string, 0, len(p.Apps))
	have := map[string]bool{}
	for i := range p.Apps {
		names = append(names, p.Apps[i].App)
		have[p.Apps[i].App] = true
	}
	cycles := cfg.OrderCycles(names)
	for i := range p.Apps {
		a := &p.Apps[i]
		if c, ok := cycles[a.App]; ok {
			msg := fmt.Sprintf("%s: apps[].dependsOn: dependency cycle %s", cfg.File, c)
			if a.Error != "" {
				msg = a.Error + "\n" + msg
			}
			a.Error = msg
			continue
		}
		for _, dep := range cfg.DependsOn(a.App) {
			if !have[dep] && a.Changed() {
				a.Start, a.Wait = time.Time{}, fmt.Sprintf("app %s, which it dependsOn, is not in the revision", dep)
			}
		}
	}
}

// planWaves fills p.Waves from cfg and the apps that change, and delays
// each changed app's Start to its wave's.
func planWaves(p *Plan, cfg *policies.Config) {
	if cfg == nil || len(cfg.Waves) == 0 {
		return
	}
	changed := make([][]*AppPlan, len(cfg.Waves))
	matched := make([]int, len(cfg.Waves))
	invalid := make([]string, len(cfg.Waves)) // the first invalid app of each wave
	for i := range p.Apps {
		a := &p.Apps[i]
		k := cfg.WaveOf(a.App)
		if k < 0 {
			continue
		}
		matched[k]++
		switch {
		case a.Error != "" && invalid[k] == "":
			invalid[k] = a.App
		case a.Error == "" && a.Changed():
			changed[k] = append(changed[k], a)
		}
	}
	start, note, stopped := p.Now, "", false
	for k := range cfg.Waves {
		w := &cfg.Waves[k]
		wp := WavePlan{N: k + 1, MaxApps: w.Limit(matched[k]), Interval: w.Interval, Manual: w.Manual}
		for _, a := range changed[k] {
			wp.Apps = append(wp.Apps, a.App)
		}
		if invalid[k] != "" && !stopped {
			// The agent rejects an invalid app, and a rejected app stops
			// the other apps of its wave and every later wave.
			start, note, stopped = time.Time{}, fmt.Sprintf("never: waves stopped by app %s of wave %d (invalid)", invalid[k], k+1), true
		}
		if w.Manual && len(wp.Apps) > 0 && !stopped {
			start, note = time.Time{}, fmt.Sprintf("after `gitpace promote --wave %d`", k+1)
		}
		wp.Start, wp.Note = start, note
		for _, a := range changed[k] {
			switch {
			case start.IsZero():
				a.Start, a.Wait = time.Time{}, "wave "+fmt.Sprint(k+1)+": "+note
			case a.Start.Before(start):
				a.Start, a.Wait = start, fmt.Sprintf("wave %d of %d", k+1, len(cfg.Waves))
			}
		}
		p.Waves = append(p.Waves, wp)
		if len(wp.Apps) > 0 && w.IntervalDuration() > 0 && !stopped {
			if start.IsZero() {
				note = fmt.Sprintf("%s, then %s after wave %d is Healthy", note, w.Interval, k+1)
			} else {
				start = start.Add(w.IntervalDuration())
			}
		}
	}
}

// textWaves writes the waves table of the terminal plan.
func textWaves(b *strings.Builder, p *Plan) {
	if len(p.Waves) == 0 {
		return
	}
	fmt.Fprintf(b, "\nwaves (times assume every pod is Ready at once):\n")
	table(b, func(tw io.Writer) {
		fmt.Fprintln(tw, "  WAVE\tEARLIEST START\tMAX-APPS\tINTERVAL\tAPPS")
		for _, w := range p.Waves {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", waveName(w), waveStart(w, p), w.MaxApps, orDash(w.Interval), orDash(strings.Join(w.Apps, ", ")))
		}
	})
}

// mdWaves writes the waves table of the Markdown plan.
func mdWaves(b *strings.Builder, p *Plan) {
	if len(p.Waves) == 0 {
		return
	}
	b.WriteString("\n### waves\n\n| wave | earliest start | max apps | interval | apps |\n|---:|---|---:|---|---|\n")
	for _, w := range p.Waves {
		fmt.Fprintf(b, "| %s | %s | %d | %s | %s |\n", waveName(w), cell(waveStart(w, p)), w.MaxApps, orDash(w.Interval), cell(orDash(strings.Join(w.Apps, ", "))))
	}
}

func waveName(w WavePlan) string {
	if w.Manual {
		return fmt.Sprintf("%d (manual)", w.N)
	}
	return fmt.Sprint(w.N)
}

func waveStart(w WavePlan, p *Plan) string {
	switch {
	case len(w.Apps) == 0:
		return "nothing changes"
	case w.Start.IsZero():
		return w.Note
	}
	return when(w.Start, p.Now)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
