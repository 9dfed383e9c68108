package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

var t0 = time.Date(2026, 11, 27, 11, 59, 0, 0, time.UTC)

func strategy(surge, unavailable int32, upgrade time.Duration, order string, manually bool) bcs.Strategy {
	return bcs.Strategy{MaxSurge: surge, MaxUnavailable: unavailable, UpgradeDuration: upgrade, Order: order, Manually: manually}
}

func windows(t *testing.T, yaml string) *Windows {
	t.Helper()
	cfg, err := policies.ParseConfig(policies.ConfigFile, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return &Windows{Config: cfg, App: "web"}
}

// noonDeny holds rollouts of every app from 12:00 to 13:00 UTC.
const noonDeny = `
windows:
- kind: deny
  schedule: "0 12 * * *"
  duration: 1h
`

func TestBCSCycles(t *testing.T) {
	const minute = time.Minute
	tests := []struct {
		name             string
		newR, oldR, inst int32
		s                bcs.Strategy
		w                string // gitpace.yaml; "" = no windows
		want             []Cycle
	}{{
		name: "seed: instance 2, surge 1, unavailable 1, upgradeDuration 60s",
		oldR: 2, inst: 2, s: strategy(1, 1, minute, vocab.OrderCreateFirst, false),
		want: []Cycle{
			{N: 1, Start: t0, NewFrom: 0, NewTo: 1, OldFrom: 2, OldTo: 1, Order: vocab.OrderCreateFirst},
			{N: 2, Start: t0.Add(minute), NewFrom: 1, NewTo: 2, OldFrom: 1, OldTo: 0, Order: vocab.OrderCreateFirst},
		},
	}, {
		name: "instance 5, surge 2, unavailable 1: the deletions pace it",
		oldR: 5, inst: 5, s: strategy(2, 1, 30*time.Second, vocab.OrderDeleteFirst, false),
		want: []Cycle{
			{N: 1, Start: t0, NewFrom: 0, NewTo: 2, OldFrom: 5, OldTo: 4, Order: vocab.OrderDeleteFirst},
			{N: 2, Start: t0.Add(30 * time.Second), NewFrom: 2, NewTo: 4, OldFrom: 4, OldTo: 3, Order: vocab.OrderDeleteFirst},
			{N: 3, Start: t0.Add(60 * time.Second), NewFrom: 4, NewTo: 5, OldFrom: 3, OldTo: 2, Order: vocab.OrderDeleteFirst},
			{N: 4, Start: t0.Add(90 * time.Second), NewFrom: 5, NewTo: 5, OldFrom: 2, OldTo: 1, Order: vocab.OrderDeleteFirst},
			{N: 5, Start: t0.Add(120 * time.Second), NewFrom: 5, NewTo: 5, OldFrom: 1, OldTo: 0, Order: vocab.OrderDeleteFirst},
		},
	}, {
		name: "package paced's worked example: instance 4, surge 2, unavailable 1",
		oldR: 4, inst: 4, s: strategy(2, 1, minute, vocab.OrderCreateFirst, false),
		want: []Cycle{
			{N: 1, Start: t0, NewFrom: 0, NewTo: 2, OldFrom: 4, OldTo: 3, Order: vocab.OrderCreateFirst},
			{N: 2, Start: t0.Add(minute), NewFrom: 2, NewTo: 4, OldFrom: 3, OldTo: 2, Order: vocab.OrderCreateFirst},
			{N: 3, Start: t0.Add(2 * minute), NewFrom: 4, NewTo: 4, OldFrom: 2, OldTo: 1, Order: vocab.OrderCreateFirst},
			{N: 4, Start: t0.Add(3 * minute), NewFrom: 4, NewTo: 4, OldFrom: 1, OldTo: 0, Order: vocab.OrderCreateFirst},
		},
	}, {
		name: "a deny window pushes the cycles that fall into it",
		oldR: 3, inst: 3, s: strategy(1, 1, minute, vocab.OrderCreateFirst, false), w: noonDeny,
		want: []Cycle{
			{N: 1, Start: t0, NewFrom: 0, NewTo: 1, OldFrom: 3, OldTo: 2, Order: vocab.OrderCreateFirst},
			{N: 2, Start: t0.Add(61 * minute), NewFrom: 1, NewTo: 2, OldFrom: 2, OldTo: 1, Order: vocab.OrderCreateFirst,
				Wait: `deny window "0 12 * * *" (1h, UTC) active until 2026-11-27T13:00:00Z`},
			{N: 3, Start: t0.Add(62 * minute), NewFrom: 2, NewTo: 3, OldFrom: 1, OldTo: 0, Order: vocab.OrderCreateFirst},
		},
	}, {
		name: "rollingManually: every cycle after the first waits for approval",
		oldR: 2, inst: 3, s: strategy(1, 1, 0, vocab.OrderCreateFirst, true),
		want: []Cycle{
			{N: 1, Start: t0, NewFrom: 0, NewTo: 1, OldFrom: 2, OldTo: 1, Order: vocab.OrderCreateFirst},
			{N: 2, Start: t0, NewFrom: 1, NewTo: 2, OldFrom: 1, OldTo: 0, Order: vocab.OrderCreateFirst, Approval: true},
			{N: 3, Start: t0, NewFrom: 2, NewTo: 3, OldFrom: 0, OldTo: 0, Order: vocab.OrderCreateFirst, Approval: true},
		},
	}, {
		name: "a rollout in flight goes on from where it stands",
		newR: 1, oldR: 1, inst: 2, s: strategy(1, 1, minute, vocab.OrderCreateFirst, false),
		want: []Cycle{
			{N: 1, Start: t0, NewFrom: 1, NewTo: 2, OldFrom: 1, OldTo: 0, Order: vocab.OrderCreateFirst},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w *Windows
			if tt.w != "" {
				w = windows(t, tt.w)
			}
			got := BCSCycles(tt.newR, tt.oldR, tt.inst, tt.s, t0, w)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("BCSCycles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBCSCyclesNeverAllowed(t *testing.T) {
	// An allow window that never opens (30 February): no cycle can start.
	w := windows(t, "windows:\n- kind: allow\n  schedule: \"0 0 30 2 *\"\n  duration: 1h\n")
	got := BCSCycles(0, 2, 2, strategy(1, 1, time.Minute, vocab.OrderCreateFirst, false), t0, w)
	if len(got) != 2 || !got[0].Start.IsZero() || !got[1].Start.IsZero() {
		t.Fatalf("cycles = %+v, want two that never start", got)
	}
	if !strings.Contains(got[0].Wait, "no window lets it start") {
		t.Errorf("Wait = %q, want it to say that no window lets it start", got[0].Wait)
	}
}

func TestCycleAction(t *testing.T) {
	tests := []struct {
		c    Cycle
		want string
	}{
		{Cycle{NewFrom: 0, NewTo: 1, OldFrom: 2, OldTo: 1, Order: vocab.OrderCreateFirst}, "scale new 0→1, then old 2→1"},
		{Cycle{NewFrom: 0, NewTo: 1, OldFrom: 2, OldTo: 1, Order: vocab.OrderDeleteFirst}, "scale old 2→1, then new 0→1"},
		{Cycle{NewFrom: 4, NewTo: 4, OldFrom: 2, OldTo: 1, Order: vocab.OrderCreateFirst}, "scale old 2→1 (new already 4)"},
		{Cycle{NewFrom: 2, NewTo: 3, OldFrom: 0, OldTo: 0, Order: vocab.OrderDeleteFirst}, "scale new 2→3"},
	}
	for _, tt := range tests {
		if got := tt.c.Action(); got != tt.want {
			t.Errorf("%+v.Action() = %q, want %q", tt.c, got, tt.want)
		}
	}
}
