package policies

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // gitpace.yaml time zones must not depend on the image having /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// WindowKind says whether a window lets rollouts start or stops them.
type WindowKind string

const (
	// WindowAllow: when an app has allow windows, its rollouts start only
	// while one of them is active.
	WindowAllow WindowKind = "allow"
	// WindowDeny: no rollout of the app starts while the window is active.
	// An active deny window beats any allow window.
	WindowDeny WindowKind = "deny"
)

// Window is a sync window: active from each fire time t of Schedule until
// t+Duration (t ≤ now < t+Duration), like Argo CD's sync windows.
type Window struct {
	// Kind is allow or deny.
	Kind WindowKind `json:"kind"`
	// Schedule is a standard 5-field cron expression (minute hour
	// day-of-month month day-of-week), read in TimeZone. Descriptors
	// (@daily) and TZ= prefixes are not accepted.
	Schedule string `json:"schedule"`
	// Duration is how long the window stays active after each fire, a Go
	// duration ("8h", "90m"). It is elapsed time: across a DST change the
	// window ends Duration after it opened, not at the same wall time.
	Duration string `json:"duration"`
	// TimeZone is the IANA zone the schedule is read in; UTC when empty.
	TimeZone string `json:"timeZone,omitempty"`
	// Apps are path.Match patterns of the app names the window applies
	// to; empty means every app.
	Apps []string `json:"apps,omitempty"`
	// Rollbacks makes the window apply to rollbacks (revert commits) too.
	// By default windows do not hold rollbacks, so a revert is never stuck
	// behind a window.
	Rollbacks bool `json:"rollbacks,omitempty"`

	sched cron.Schedule
	dur   time.Duration
	loc   *time.Location
}

var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

func (w *Window) appliesTo(app string, rollback bool) bool {
	if rollback && !w.Rollbacks {
		return false
	}
	return len(w.Apps) == 0 || matchAny(w.Apps, app)
}

// String names the window as messages do: deny window "0 22 * * *" (8h, Asia/Shanghai).
func (w *Window) String() string {
	zone := w.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	return fmt.Sprintf("%s window %q (%s, %s)", w.Kind, w.Schedule, w.Duration, zone)
}

// format prints t in the window's zone.
func (w *Window) format(t time.Time) string {
	return t.In(w.loc).Format(time.RFC3339)
}

// compile validates w and parses its schedule, duration and zone.
func (w *Window) compile(field string) []error {
	var errs []error
	switch w.Kind {
	case WindowAllow, WindowDeny:
	case "":
		errs = append(errs, fmt.Errorf("%s.kind: required (%s or %s)", field, WindowAllow, WindowDeny))
	default:
		errs = append(errs, fmt.Errorf("%s.kind: must be %s or %s, got %q", field, WindowAllow, WindowDeny, w.Kind))
	}

	// The zone is needed to compile the schedule; its error is reported
	// after the schedule's and duration's, in field order.
	w.loc = time.UTC
	var tzErr error
	if w.TimeZone != "" {
		loc, err := time.LoadLocation(w.TimeZone)
		if err == nil && w.TimeZone == "Local" {
			err = errors.New("the host's zone is not allowed; name an IANA zone")
		}
		if err != nil {
			tzErr = fmt.Errorf("%s.timeZone: %q: %w", field, w.TimeZone, err)
		} else {
			w.loc = loc
		}
	}

	switch {
	case w.Schedule == "":
		errs = append(errs, fmt.Errorf("%s.schedule: required", field))
	case strings.Contains(w.Schedule, "TZ="):
		errs = append(errs, fmt.Errorf("%s.schedule: %q: set the zone with timeZone, not TZ=", field, w.Schedule))
	default:
		s, err := scheduleParser.Parse(w.Schedule)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.schedule: %q: %w", field, w.Schedule, err))
			break
		}
		spec := s.(*cron.SpecSchedule) // the parser accepts no descriptors
		spec.Location = w.loc
		w.sched = spec
	}

	if w.Duration == "" {
		errs = append(errs, fmt.Errorf("%s.duration: required", field))
	} else if d, err := time.ParseDuration(w.Duration); err != nil {
		errs = append(errs, fmt.Errorf("%s.duration: %w", field, err))
	} else if d <= 0 {
		errs = append(errs, fmt.Errorf("%s.duration: must be positive, got %q", field, w.Duration))
	} else {
		w.dur = d
	}

	if tzErr != nil {
		errs = append(errs, tzErr)
	}
	errs = append(errs, checkPatterns(field+".apps", w.Apps)...)
	return errs
}

// WindowGate holds a revision while the windows of gitpace.yaml forbid its
// start. It gates starting a rollout; what an in-flight rollout does when a
// deny window opens is the agent's decision.
type WindowGate struct {
	Config *Config
}

// Name returns "window".
func (g *WindowGate) Name() string { return GateWindow }

// Check returns a *Held with RetryAt = the window state's NextChange when
// the windows hold the app now.
func (g *WindowGate) Check(_ context.Context, in GateInput) error {
	st := g.Config.WindowState(in.App, in.Now, in.Rollback)
	if st.Allowed || in.Idle {
		return nil
	}
	return &Held{Gate: g.Name(), Reason: st.Reason, RetryAt: st.NextChange}
}
