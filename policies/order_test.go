package policies

import (
	"strings"
	"testing"
)

func TestDependencyCycles(t *testing.T) {
	deps := map[string][]string{
		"web": {"db", "cache"}, "db": {"net"}, "cache": {}, "net": {},
		"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "self": {"self"}, "x": {"missing"},
	}
	apps := []string{"web", "db", "cache", "net", "a", "b", "c", "d", "self", "x"}
	got := DependencyCycles(apps, func(s string) []string { return deps[s] })
	want := map[string]string{"a": "a → b → c → a", "b": "a → b → c → a", "c": "a → b → c → a", "self": "self → self"}
	if len(got) != len(want) {
		t.Fatalf("cycles = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("cycle of %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestWavesConfig(t *testing.T) {
	cfg, err := ParseConfig("gitpace.yaml", []byte(`
waves:
- apps: ["canary/*"]
- apps: ["eu-*"]
  maxApps: 3
  interval: 10m
- apps: ["*"]
  maxApps: "25%"
  manual: true
apps:
- match: web
  dependsOn: [db]
`))
	if err != nil {
		t.Fatal(err)
	}
	for app, w := range map[string]int{"canary/web": 0, "eu-1": 1, "us-1": 2, "canary": 2} {
		if got := cfg.WaveOf(app); got != w {
			t.Errorf("WaveOf(%s) = %d, want %d", app, got, w)
		}
	}
	if got := cfg.Waves[1].Limit(10); got != 3 {
		t.Errorf("maxApps 3 of 10 = %d", got)
	}
	if got := cfg.Waves[2].Limit(10); got != 3 { // 2.5 rounded up
		t.Errorf("25%% of 10 = %d, want 3", got)
	}
	if got := cfg.Waves[0].Limit(7); got != 7 {
		t.Errorf("unset maxApps of 7 = %d, want 7", got)
	}
	if got := cfg.Waves[1].IntervalDuration().String(); got != "10m0s" {
		t.Errorf("interval = %s", got)
	}
	if got := cfg.DependsOn("web"); len(got) != 1 || got[0] != "db" {
		t.Errorf("DependsOn(web) = %v", got)
	}

	for _, tc := range []struct{ in, want string }{
		{"waves:\n- maxApps: 2\n", "waves[0].apps: required"},
		{"waves:\n- apps: [a]\n  maxApps: 0\n", "waves[0].maxApps: must be at least 1"},
		{"waves:\n- apps: [a]\n  maxApps: 150%\n", "waves[0].maxApps: a number >= 1 or a percentage"},
		{"waves:\n- apps: [a]\n  interval: soon\n", "waves[0].interval:"},
		{"waves:\n- apps: [a]\n  manaul: true\n", `unknown field "waves[0].manaul"`},
		{"apps:\n- match: web\n  dependsOn: [../db]\n", "apps[0].dependsOn[0]: an app name"},
		{"waves:\n- apps: [a]\n  interval: 10\n", "waves.interval: want a string, got a number"},
		{"waves:\n- apps: [a]\n  maxApps: 1.5\n", "waves.maxApps: want a whole number, got number 1.5"},
		{"waves:\n- apps: [a]\n  manual: yes please\n", "waves.manual: want true or false, got a string"},
	} {
		_, err := ParseConfig("gitpace.yaml", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.in, err, tc.want)
		}
	}
}
