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
