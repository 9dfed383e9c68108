package policies

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustConfig(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := ParseConfig("gitpace.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	return cfg
}

// equalTimes compares instants, not locations.
var equalTimes = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func TestWindowState(t *testing.T) {
	shanghai := mustLoc(t, "Asia/Shanghai")
	newYork := mustLoc(t, "America/New_York")
	at := func(loc *time.Location, month time.Month, day, hour, min int) time.Time {
		return time.Date(2026, month, day, hour, min, 0, 0, loc)
	}
	const (
		denyNights = `
windows:
- kind: deny
  schedule: "0 22 * * *"
  duration: 8h
  timeZone: Asia/Shanghai
  apps: ["payments/*"]
`
		denyNightsRollbacks = denyNights + "  rollbacks: true\n"
		allowWorkdays       = `
windows:
- kind: allow
  schedule: "0 9 * * 1-5"
  duration: 8h
`
		allowDaysDenyNoon = `
windows:
- kind: allow
  schedule: "0 9 * * *"
  duration: 8h
- kind: deny
  schedule: "0 12 * * *"
  duration: 1h
`
		allowDaysDenyEvening = `
windows:
- kind: allow
  schedule: "0 9 * * *"
  duration: 8h
- kind: deny
  schedule: "0 16 * * *"
  duration: 3h
`
		denyAcrossDST = `
windows:
- kind: deny
  schedule: "30 1 * * *"
  duration: 1h
  timeZone: America/New_York
`
		chained = `
windows:
- kind: deny
  schedule: "0 8,9 * * *"
  duration: 90m
`
		twoDenies = `
windows:
- kind: deny
  schedule: "0 12 * * *"
  duration: 1h
- kind: deny
  schedule: "30 12 * * *"
  duration: 2h
`
	)
	const denyReason = `deny window "0 22 * * *" (8h, Asia/Shanghai) active until 2026-11-27T06:00:00+08:00`
	// 2026-11-26 is a Thursday.
	tests := []struct {
		name     string
		yaml     string
		app      string
		now      time.Time
		rollback bool
		want     WindowState
	}{
		{
			name: "deny active",
			yaml: denyNights, app: "payments/api", now: at(shanghai, 11, 26, 23, 0),
			want: WindowState{Reason: denyReason, Until: at(shanghai, 11, 27, 6, 0), NextChange: at(shanghai, 11, 27, 6, 0)},
		},
		{
			name: "deny active, opened the day before (previous fire found by searching back)",
			yaml: denyNights, app: "payments/api", now: at(shanghai, 11, 27, 5, 59),
			want: WindowState{Reason: denyReason, Until: at(shanghai, 11, 27, 6, 0), NextChange: at(shanghai, 11, 27, 6, 0)},
		},
		{
			name: "deny opens at the fire time itself",
			yaml: denyNights, app: "payments/api", now: at(shanghai, 11, 26, 22, 0),
			want: WindowState{Reason: denyReason, Until: at(shanghai, 11, 27, 6, 0), NextChange: at(shanghai, 11, 27, 6, 0)},
		},
		{
			name: "deny over at fire+duration",
			yaml: denyNights, app: "payments/api", now: at(shanghai, 11, 27, 6, 0),
			want: WindowState{Allowed: true, Reason: "no deny window active", NextChange: at(shanghai, 11, 27, 22, 0)},
		},
		{
			name: "deny inactive",
			yaml: denyNights, app: "payments/api", now: at(shanghai, 11, 27, 10, 0),
			want: WindowState{Allowed: true, Reason: "no deny window active", NextChange: at(shanghai, 11, 27, 22, 0)},
		},
		{
			name: "deny in Shanghai seen from UTC",
			yaml: denyNights, app: "payments/api", now: at(time.UTC, 11, 26, 14, 0), // 22:00 in Shanghai
			want: WindowState{Reason: denyReason, Until: at(time.UTC, 11, 26, 22, 0), NextChange: at(time.UTC, 11, 26, 22, 0)},
		},
		{
			name: "wildcard does not match another app",
			yaml: denyNights, app: "web/front", now: at(shanghai, 11, 26, 23, 0),
			want: WindowState{Allowed: true, Reason: `no window applies to app "web/front"`},
		},
		{
			name: "wildcard does not cross a slash",
			yaml: denyNights, app: "payments/api/v2", now: at(shanghai, 11, 26, 23, 0),
			want: WindowState{Allowed: true, Reason: `no window applies to app "payments/api/v2"`},
		},
		{
			name: "rollback not held by default",
			yaml: denyNights, app: "payments/api", now: at(shanghai, 11, 26, 23, 0), rollback: true,
			want: WindowState{Allowed: true, Reason: `no window holds rollbacks of app "payments/api"`},
		},
		{
			name: "rollback held by a window with rollbacks: true",
			yaml: denyNightsRollbacks, app: "payments/api", now: at(shanghai, 11, 26, 23, 0), rollback: true,
			want: WindowState{Reason: denyReason, Until: at(shanghai, 11, 27, 6, 0), NextChange: at(shanghai, 11, 27, 6, 0)},
		},
		{
			name: "allow only, outside: held until the next opening",
			yaml: allowWorkdays, app: "web/front", now: at(time.UTC, 11, 28, 12, 0), // Saturday
			want: WindowState{
				Reason:     `no allow window active; next: allow window "0 9 * * 1-5" (8h, UTC) opens at 2026-11-30T09:00:00Z`,
				NextChange: at(time.UTC, 11, 30, 9, 0),
			},
		},
		{
			name: "allow only, inside",
			yaml: allowWorkdays, app: "web/front", now: at(time.UTC, 11, 26, 10, 0),
			want: WindowState{
				Allowed:    true,
				Reason:     `allow window "0 9 * * 1-5" (8h, UTC) active until 2026-11-26T17:00:00Z`,
				Until:      at(time.UTC, 11, 26, 17, 0),
				NextChange: at(time.UTC, 11, 26, 17, 0),
			},
		},
		{
			name: "allow only, rollback outside is not held",
			yaml: allowWorkdays, app: "web/front", now: at(time.UTC, 11, 28, 12, 0), rollback: true,
			want: WindowState{Allowed: true, Reason: `no window holds rollbacks of app "web/front"`},
		},
		{
			name: "allow and deny overlap: deny wins",
			yaml: allowDaysDenyNoon, app: "a", now: at(time.UTC, 11, 26, 12, 30),
			want: WindowState{
				Reason:     `deny window "0 12 * * *" (1h, UTC) active until 2026-11-26T13:00:00Z`,
				Until:      at(time.UTC, 11, 26, 13, 0),
				NextChange: at(time.UTC, 11, 26, 13, 0), // the allow window is still active then
			},
		},
		{
			name: "allow active, deny coming: NextChange before Until",
			yaml: allowDaysDenyNoon, app: "a", now: at(time.UTC, 11, 26, 10, 0),
			want: WindowState{
				Allowed:    true,
				Reason:     `allow window "0 9 * * *" (8h, UTC) active until 2026-11-26T17:00:00Z`,
				Until:      at(time.UTC, 11, 26, 17, 0),
				NextChange: at(time.UTC, 11, 26, 12, 0),
			},
		},
		{
			name: "deny outlives the allow window: held until the next allow opening",
			yaml: allowDaysDenyEvening, app: "a", now: at(time.UTC, 11, 26, 16, 30),
			want: WindowState{
				Reason:     `deny window "0 16 * * *" (3h, UTC) active until 2026-11-26T19:00:00Z`,
				Until:      at(time.UTC, 11, 26, 19, 0),
				NextChange: at(time.UTC, 11, 27, 9, 0),
			},
		},
		{
			name: "two active denies: the one ending last decides",
			yaml: twoDenies, app: "a", now: at(time.UTC, 11, 26, 12, 45),
			want: WindowState{
				Reason:     `deny window "30 12 * * *" (2h, UTC) active until 2026-11-26T14:30:00Z`,
				Until:      at(time.UTC, 11, 26, 14, 30),
				NextChange: at(time.UTC, 11, 26, 14, 30),
			},
		},
		{
			name: "overlapping fires extend the window",
			yaml: chained, app: "a", now: at(time.UTC, 11, 26, 8, 30),
			want: WindowState{
				Reason:     `deny window "0 8,9 * * *" (90m, UTC) active until 2026-11-26T10:30:00Z`,
				Until:      at(time.UTC, 11, 26, 10, 30),
				NextChange: at(time.UTC, 11, 26, 10, 30),
			},
		},
		{
			name: "DST: the day before, 01:30 EST for 1h ends 02:30 EST",
			yaml: denyAcrossDST, app: "a", now: at(newYork, 3, 7, 2, 0),
			want: WindowState{
				Reason:     `deny window "30 1 * * *" (1h, America/New_York) active until 2026-03-07T02:30:00-05:00`,
				Until:      at(newYork, 3, 7, 2, 30),
				NextChange: at(newYork, 3, 7, 2, 30),
			},
		},
		{
			name: "DST: clocks jump 02:00→03:00, so 01:30 EST + 1h ends 03:30 EDT",
			yaml: denyAcrossDST, app: "a", now: at(newYork, 3, 8, 3, 15),
			want: WindowState{
				Reason:     `deny window "30 1 * * *" (1h, America/New_York) active until 2026-03-08T03:30:00-04:00`,
				Until:      at(newYork, 3, 8, 3, 30),
				NextChange: at(newYork, 3, 8, 3, 30),
			},
		},
		{
			name: "DST: after the change the window opens at 01:30 EDT",
			yaml: denyAcrossDST, app: "a", now: at(newYork, 3, 8, 12, 0),
			want: WindowState{Allowed: true, Reason: "no deny window active", NextChange: at(time.UTC, 3, 9, 5, 30)},
		},
		{
			name: "no windows at all",
			yaml: "onFailure: hold\n", app: "a", now: at(time.UTC, 11, 26, 10, 0),
			want: WindowState{Allowed: true, Reason: `no window applies to app "a"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustConfig(t, tt.yaml)
			got := cfg.WindowState(tt.app, tt.now, tt.rollback)
			if diff := cmp.Diff(tt.want, got, equalTimes); diff != "" {
				t.Errorf("WindowState(%q, %s, rollback=%v) (-want +got):\n%s", tt.app, tt.now, tt.rollback, diff)
			}
		})
	}
}

func TestWindowStateZeroConfig(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, cfg := range []*Config{nil, {}} {
		if got := cfg.WindowState("a", now, false); !got.Allowed {
			t.Errorf("%#v.WindowState = %+v, want allowed", cfg, got)
		}
	}
}

// TestWindowStateAlwaysActive checks that a window whose fires always
// overlap costs a bounded scan: held, Until after maxChain fires, and
// NextChange the last instant scanned, where asking again says held again.
func TestWindowStateAlwaysActive(t *testing.T) {
	cfg := mustConfig(t, "windows:\n- kind: deny\n  schedule: '*/10 * * * *'\n  duration: 30m\n")
	now := time.Date(2026, 11, 26, 10, 5, 0, 0, time.UTC)
	got := cfg.WindowState("a", now, false)
	if got.Allowed || !got.Until.After(now.Add(16*time.Hour)) || !got.NextChange.After(got.Until) {
		t.Fatalf("WindowState = %+v, want held, Until ≥ 100 fires ahead, NextChange after Until", got)
	}
	if again := cfg.WindowState("a", got.NextChange, false); again.Allowed {
		t.Errorf("WindowState at NextChange = %+v, want held", again)
	}
}

func TestWindowGate(t *testing.T) {
	cfg := mustConfig(t, "windows:\n- kind: allow\n  schedule: '0 9 * * 1-5'\n  duration: 8h\n")
	g := &WindowGate{Config: cfg}
	saturday := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	err := g.Check(context.Background(), GateInput{App: "a", Now: saturday})
	var held *Held
	if !errors.As(err, &held) {
		t.Fatalf("Check = %v, want *Held", err)
	}
	want := &Held{
		Gate:    "window",
		Reason:  `no allow window active; next: allow window "0 9 * * 1-5" (8h, UTC) opens at 2026-11-30T09:00:00Z`,
		RetryAt: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC),
	}
	if diff := cmp.Diff(want, held, equalTimes); diff != "" {
		t.Errorf("Held (-want +got):\n%s", diff)
	}
	monday := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	if err := g.Check(context.Background(), GateInput{App: "a", Now: monday}); err != nil {
		t.Errorf("Check at the opening = %v, want nil", err)
	}
	if err := g.Check(context.Background(), GateInput{App: "a", Now: saturday, Rollback: true}); err != nil {
		t.Errorf("Check of a rollback = %v, want nil", err)
	}
	if err := g.Check(context.Background(), GateInput{App: "a", Now: saturday, Idle: true}); err != nil {
		t.Errorf("Check of an idle app (nothing to roll) = %v, want nil", err)
	}
}
