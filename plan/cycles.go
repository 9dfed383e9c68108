package plan

import (
	"fmt"
	"time"

	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// Cycle is one BCS update cycle of a planned rollout.
type Cycle struct {
	// N counts the cycles from 1.
	N int32 `json:"n"`
	// Start is the earliest time the cycle can start; zero when no window
	// ever lets it (see Wait).
	Start time.Time `json:"start,omitzero"`
	// NewFrom→NewTo and OldFrom→OldTo are the applications' replicas
	// before the cycle and its targets, fixed when it starts.
	NewFrom int32 `json:"newFrom"`
	NewTo   int32 `json:"newTo"`
	OldFrom int32 `json:"oldFrom"`
	OldTo   int32 `json:"oldTo"`
	// Order is bcs.OrderCreateFirst or bcs.OrderDeleteFirst.
	Order string `json:"order"`
	// Approval is set when the cycle waits for a promote (rollingManually):
	// Start is then the earliest time if it is approved at once.
	Approval bool `json:"approval,omitempty"`
	// Wait says why Start is later than the previous cycle allows, e.g. a
	// deny window; empty otherwise.
	Wait string `json:"wait,omitempty"`
}

// Action is what the cycle does, in its order, e.g. "scale new 0→1, then old 2→1".
func (c Cycle) Action() string {
	newPart := fmt.Sprintf("new %d→%d", c.NewFrom, c.NewTo)
	oldPart := fmt.Sprintf("old %d→%d", c.OldFrom, c.OldTo)
	switch {
	case c.NewFrom == c.NewTo:
		return fmt.Sprintf("scale %s (new already %d)", oldPart, c.NewTo)
	case c.OldFrom == c.OldTo:
		return "scale " + newPart
	case c.Order == vocab.OrderDeleteFirst:
		return fmt.Sprintf("scale %s, then %s", oldPart, newPart)
	default:
		return fmt.Sprintf("scale %s, then %s", newPart, oldPart)
	}
}

// Windows says when an app's rollouts may start. A nil *Windows allows
// every time.
type Windows struct {
	// Config holds the sync windows (gitpace.yaml).
	Config *policies.Config
	// App is the app whose windows apply.
	App string
}

// maxWindowHops bounds the window changes followed to find an allowed time.
const maxWindowHops = 100

// Earliest returns the first time at or after t when a rollout of the app
// may start, and, when that is later than t, the reason it waits. ok is
// false when no allowed time is found (no window opens, or more than
// maxWindowHops changes were followed).
func (w *Windows) Earliest(t time.Time) (at time.Time, wait string, ok bool) {
	if w == nil || w.Config == nil {
		return t, "", true
	}
	for range maxWindowHops {
		st := w.Config.WindowState(w.App, t, false)
		if st.Allowed {
			return t, wait, true
		}
		if wait == "" {
			wait = st.Reason
		}
		if st.NextChange.IsZero() {
			return time.Time{}, wait + "; no window lets it start", false
		}
		t = st.NextChange
	}
	return time.Time{}, wait + fmt.Sprintf("; no allowed time within %d window changes", maxWindowHops), false
}

// BCSCycles plans the update cycles that take a BCS deployment from newR
// pods of the new application and oldR of the old one to instance new and
// 0 old, with the rollout engine's own rule (paced.CycleTargets). Each
// cycle fixes its targets when it starts:
//
//	new = max(min(new + maxSurge, instance), new)
//	old = max(old − maxUnavailable, 0)
//
// The first cycle starts at start (or when the windows next allow), each
// next one at least upgradeDuration after the previous one started, phases
// taking no time, and also only when the windows allow. With
// rollingManually every cycle after the first waits for a promote. The
// rollout finishes (the old application is deleted) when the last cycle
// starts.
//
// The seed (instance 2, maxSurge 1, maxUnavailable 1, upgradeDuration 60 s,
// CreateFirst) from a running application of 2:
//
//	cycle  start   action
//	1      t+0     scale new 0→1, then old 2→1
//	2      t+60s   scale new 1→2, then old 1→0
//
// Instance 5, maxSurge 2, maxUnavailable 1 takes 5 cycles: new 2, 4, 5, 5,
// 5 and old 4, 3, 2, 1, 0 (the old application's deletions pace it).
func BCSCycles(newR, oldR, instance int32, s bcs.Strategy, start time.Time, w *Windows) []Cycle {
	surge, unavailable := max(s.MaxSurge, 1), max(s.MaxUnavailable, 1)
	var cycles []Cycle
	t, never := start, false
	for n := int32(1); oldR > 0 || newR < instance; n++ {
		c := Cycle{N: n, NewFrom: newR, OldFrom: oldR, Order: s.Order, Approval: s.Manually && n > 1}
		tg := paced.CycleTargets(newR, oldR, instance, paced.Strategy{MaxSurge: surge, MaxUnavailable: unavailable})
		c.NewTo, c.OldTo = tg.New, tg.Old
		if !never { // once a cycle can never start, neither can the next
			var ok bool
			c.Start, c.Wait, ok = w.Earliest(t)
			never = !ok
			t = c.Start.Add(s.UpgradeDuration)
		}
		cycles = append(cycles, c)
		newR, oldR = c.NewTo, c.OldTo
	}
	return cycles
}
