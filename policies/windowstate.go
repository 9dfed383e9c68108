package policies

import (
	"fmt"
	"time"
)

// WindowState is the answer of the windows for one app at one instant.
type WindowState struct {
	// Allowed is true when a rollout may start now.
	Allowed bool
	// Reason explains Allowed and names the deciding window, e.g.
	// `deny window "0 22 * * *" (8h, Asia/Shanghai) active until 2026-11-27T06:00:00+08:00`.
	Reason string
	// Until is when the deciding active window ends; zero when no window
	// is active. For a window whose fires keep overlapping it is the end
	// found after maxChain fires.
	Until time.Time
	// NextChange is when Allowed next flips: a deny window opens or
	// closes, an allow window opens, the last active allow window closes.
	// Allowed stays as it is at least until NextChange. When the flip lies
	// beyond what one call scans (maxNext schedule evaluations, reached
	// only by very dense schedules), NextChange is the last instant
	// scanned: ask again then. Zero: it never flips (no fire within the
	// five years cron searches).
	NextChange time.Time
}

const (
	// maxChain bounds the fires followed to find the end of a window whose
	// fires overlap ("*/10 * * * *" for 30m never closes).
	maxChain = 100
	// maxNext bounds the schedule evaluations one WindowState call spends
	// looking for NextChange.
	maxNext = 10000
)

// scan counts the schedule evaluations of one WindowState call.
type scan struct{ calls int }

func (sc *scan) next(w *Window, t time.Time) time.Time {
	sc.calls++
	return w.sched.Next(t)
}

// WindowState says whether a rollout (or, when rollback is true, a
// rollback) of app may start at now. No window that applies: allowed. An
// active deny window: held. Allow windows that apply but none active: held.
// Windows apply to rollbacks only when they set rollbacks: true.
func (c *Config) WindowState(app string, now time.Time, rollback bool) WindowState {
	var ws []*Window
	if c != nil {
		for i := range c.Windows {
			if c.Windows[i].appliesTo(app, rollback) {
				ws = append(ws, &c.Windows[i])
			}
		}
	}
	if len(ws) == 0 {
		if rollback {
			return WindowState{Allowed: true, Reason: fmt.Sprintf("no window holds rollbacks of app %q", app)}
		}
		return WindowState{Allowed: true, Reason: fmt.Sprintf("no window applies to app %q", app)}
	}
	sc := &scan{}
	st := sc.evaluate(ws, now)
	st.NextChange = sc.nextChange(ws, now, st.Allowed)
	if !st.Allowed && st.Until.IsZero() {
		// Held outside the allow windows: name the one that opens next.
		var next *Window
		var at time.Time
		for _, w := range ws {
			if w.Kind != WindowAllow {
				continue
			}
			if t := sc.next(w, now); !t.IsZero() && (at.IsZero() || t.Before(at)) {
				next, at = w, t
			}
		}
		if next != nil {
			st.Reason += fmt.Sprintf("; next: %s opens at %s", next, next.format(at))
		}
	}
	return st
}

// evaluate computes Allowed, Reason and Until of the applicable windows ws at t.
func (sc *scan) evaluate(ws []*Window, t time.Time) WindowState {
	var deny, allow *Window
	var denyEnd, allowEnd time.Time
	hasAllow := false
	for _, w := range ws {
		if w.Kind == WindowAllow {
			hasAllow = true
		}
		end, active := sc.activeUntil(w, t)
		if !active {
			continue
		}
		switch w.Kind {
		case WindowDeny:
			if deny == nil || end.After(denyEnd) {
				deny, denyEnd = w, end
			}
		case WindowAllow:
			if allow == nil || end.After(allowEnd) {
				allow, allowEnd = w, end
			}
		}
	}
	switch {
	case deny != nil:
		return WindowState{Allowed: false, Until: denyEnd,
			Reason: fmt.Sprintf("%s active until %s", deny, deny.format(denyEnd))}
	case allow != nil:
		return WindowState{Allowed: true, Until: allowEnd,
			Reason: fmt.Sprintf("%s active until %s", allow, allow.format(allowEnd))}
	case hasAllow:
		return WindowState{Allowed: false, Reason: "no allow window active"}
	default:
		return WindowState{Allowed: true, Reason: "no deny window active"}
	}
}

// nextChange scans the windows' boundaries after now for the first instant
// at which Allowed differs from allowed (see WindowState.NextChange).
func (sc *scan) nextChange(ws []*Window, now time.Time, allowed bool) time.Time {
	t := now
	for sc.calls < maxNext {
		var next time.Time
		for _, w := range ws {
			if b := sc.nextBoundary(w, t); !b.IsZero() && (next.IsZero() || b.Before(next)) {
				next = b
			}
		}
		if next.IsZero() {
			return time.Time{}
		}
		if sc.evaluate(ws, next).Allowed != allowed {
			return next
		}
		t = next
	}
	return t
}

// activeUntil reports whether w is active at t and, if so, when its active
// span ends. Active means some fire time f has f ≤ t < f+Duration, i.e. the
// earliest fire after t-Duration is not after t (cron only searches forward,
// so the search starts at t-Duration). Fires that start before the span
// ends extend it, up to maxChain of them.
func (sc *scan) activeUntil(w *Window, t time.Time) (time.Time, bool) {
	f := sc.next(w, t.Add(-w.dur))
	if f.IsZero() || f.After(t) {
		return time.Time{}, false
	}
	end := f.Add(w.dur)
	for range maxChain {
		n := sc.next(w, f)
		if n.IsZero() || n.After(end) {
			break
		}
		f, end = n, n.Add(w.dur)
	}
	return end, true
}

// nextBoundary is the first instant after t at which w opens or closes;
// zero if cron finds no fire within five years.
func (sc *scan) nextBoundary(w *Window, t time.Time) time.Time {
	if end, active := sc.activeUntil(w, t); active {
		return end
	}
	return sc.next(w, t)
}
