package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/policies"
)

// TestPlanWaves: the waves of a revision changing canary, two eu apps and
// us: wave 2 starts after wave 1's 10m interval, wave 3 waits for a
// promote; an unchanged app is not listed; each app's Start is its wave's.
func TestPlanWaves(t *testing.T) {
	cfg, err := policies.ParseConfig("gitpace.yaml", []byte(`waves:
- apps: ["canary"]
  interval: 10m
- apps: ["eu-*"]
  maxApps: 50%
  interval: 5m
- apps: ["*"]
  manual: true
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	changed := appliers.ChangeSet{{Action: appliers.Configured}}
	p := &Plan{Now: now, Apps: []AppPlan{
		{App: "canary", Changes: changed}, {App: "eu-1", Changes: changed}, {App: "eu-2", Changes: changed},
		{App: "eu-3", Changes: appliers.ChangeSet{{Action: appliers.Unchanged}}}, {App: "us", Changes: changed},
	}}
	for i := range p.Apps {
		p.Apps[i].Start = now
	}
	planWaves(p, cfg)
	if len(p.Waves) != 3 {
		t.Fatalf("waves = %+v", p.Waves)
	}
	if w := p.Waves[0]; !w.Start.Equal(now) || strings.Join(w.Apps, ",") != "canary" {
		t.Errorf("wave 1 = %+v", w)
	}
	if w := p.Waves[1]; !w.Start.Equal(now.Add(10*time.Minute)) || strings.Join(w.Apps, ",") != "eu-1,eu-2" || w.MaxApps != 2 {
		t.Errorf("wave 2 = %+v; want eu-1,eu-2 at now+10m, 2 at once (50%% of 3)", w)
	}
	if w := p.Waves[2]; !w.Start.IsZero() || !strings.Contains(w.Note, "gitpace promote --wave 3") {
		t.Errorf("wave 3 = %+v; want one waiting for promote", w)
	}
	if a := p.Apps[1]; !a.Start.Equal(now.Add(10*time.Minute)) || a.Wait != "wave 2 of 3" {
		t.Errorf("eu-1 start %s wait %q", a.Start, a.Wait)
	}
	var b strings.Builder
	textWaves(&b, p)
	for _, want := range []string{"2026-11-30T03:10:00Z (now+10m0s)", "3 (manual)", "after `gitpace promote --wave 3`"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestPlanOrder: the plan reports a dependsOn cycle (and one against the
// order of the waves) as invalid apps, exit 1, as the agent rejects them
// even when the commit did not change them; a missing dependency waits.
func TestPlanOrder(t *testing.T) {
	cfg, err := policies.ParseConfig("gitpace.yaml", []byte(`waves:
- apps: ["x1"]
- apps: ["x*"]
apps:
- match: a
  dependsOn: [a]
- match: x1
  dependsOn: [x2]
- match: w
  dependsOn: [nosuch]
`))
	if err != nil {
		t.Fatal(err)
	}
	changed := appliers.ChangeSet{{Action: appliers.Configured}}
	p := &Plan{Apps: []AppPlan{{App: "a"}, {App: "w", Changes: changed}, {App: "x1"}, {App: "x2"}, {App: "x3", Changes: changed}}}
	for i := range p.Apps {
		p.Apps[i].Start = p.Now
	}
	planOrder(p, cfg)
	planWaves(p, cfg)
	if e := p.Apps[0].Error; !strings.Contains(e, "dependency cycle a → a") {
		t.Errorf("a: %q", e)
	}
	if e := p.Apps[2].Error; !strings.Contains(e, "dependsOn against the order of the waves") {
		t.Errorf("x1: %q", e)
	}
	if w := p.Apps[1].Wait; !strings.Contains(w, "app nosuch, which it dependsOn, is not in the revision") {
		t.Errorf("w: wait %q", w)
	}
	// x1 is rejected, so the agent stops wave 2: x3 never starts.
	if w := p.Waves[1]; !w.Start.IsZero() || !strings.Contains(w.Note, "waves stopped by app x1 of wave 1") {
		t.Errorf("wave 2 = %+v; want stopped by x1", w)
	}
	if a := p.Apps[4]; !a.Start.IsZero() || !strings.Contains(a.Wait, "waves stopped by app x1") {
		t.Errorf("x3 start %s wait %q", a.Start, a.Wait)
	}
	if p.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1 (invalid apps)", p.ExitCode())
	}
}
