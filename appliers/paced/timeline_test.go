package paced

import (
	"fmt"
	"time"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// watchLatency is how much later than the engine the test's own watch may
// see a pod change; cycle spacing is measured from the test's view.
const watchLatency = 250 * time.Millisecond

// checkCycles replays the timeline after resourceVersion since against the expected
// cycles (each a list of steps such as "new 2", "old 1") and reports:
//   - a step taken before its phase's condition held: CreateFirst scales the
//     old application down only when the new one has as many Ready pods as
//     replicas; DeleteFirst scales the new one up only when the old one has
//     no more pods than replicas;
//   - a cycle that started less than upgradeDuration after the previous one
//     ended (its last phase's condition held).
//
// It returns, for every cycle after the first, the time from the end of the
// previous cycle to its start.
func checkCycles(timeline []event, since uint64, cycles [][]string, order string, upgrade time.Duration) ([]time.Duration, []error) {
	var errs []error
	type counts struct{ pods, good, replicas int32 }
	apps := map[string]*counts{}
	get := func(app string) *counts {
		if apps[app] == nil {
			apps[app] = &counts{}
		}
		return apps[app]
	}
	var oldApp, newApp string
	cycle, step := 0, 0
	var gaps []time.Duration
	var cycleEnd time.Time     // when the previous cycle's last condition held
	var pendingEnd func() bool // the condition ending the current cycle, once its last step happened
	for _, e := range timeline {
		if e.kind == "pods" {
			c := get(e.app)
			c.pods, c.good = e.pods, e.good
		}
		if e.kind == "create" || e.kind == "scale" {
			get(e.app).replicas = e.replicas
			if roles(e.app) == "old" {
				oldApp = e.app
			} else {
				newApp = e.app
			}
		}
		if e.rv <= since {
			continue
		}
		if pendingEnd != nil && pendingEnd() {
			cycleEnd, pendingEnd = e.at, nil
		}
		if e.kind != "scale" || cycle >= len(cycles) {
			continue
		}
		got := fmt.Sprintf("%s %d", roles(e.app), e.replicas)
		if want := cycles[cycle][step]; got != want {
			errs = append(errs, fmt.Errorf("cycle %d step %d: %s, want %s", cycle+1, step+1, got, want))
			return gaps, errs
		}
		if step == 0 && cycle > 0 {
			if cycleEnd.IsZero() {
				errs = append(errs, fmt.Errorf("cycle %d started (%s) before cycle %d ended", cycle+1, got, cycle))
			} else {
				gap := e.at.Sub(cycleEnd)
				gaps = append(gaps, gap)
				if gap < upgrade-watchLatency {
					errs = append(errs, fmt.Errorf("cycle %d started %s after cycle %d ended, want ≥ upgradeDuration %s", cycle+1, gap, cycle, upgrade))
				}
			}
		}
		o, n := get(oldApp), get(newApp)
		if order == vocab.OrderCreateFirst && roles(e.app) == "old" && n.good < n.replicas {
			errs = append(errs, fmt.Errorf("cycle %d: old scaled to %d with %d of %d new pods Ready", cycle+1, e.replicas, n.good, n.replicas))
		}
		if order == vocab.OrderDeleteFirst && roles(e.app) == "new" && o.pods > o.replicas {
			errs = append(errs, fmt.Errorf("cycle %d: new scaled to %d with %d old pods left, want ≤ %d", cycle+1, e.replicas, o.pods, o.replicas))
		}
		step++
		if step == len(cycles[cycle]) {
			app, last := e.app, roles(e.app)
			pendingEnd = func() bool {
				c := get(app)
				if last == "old" {
					return c.pods <= c.replicas
				}
				return c.good >= c.replicas
			}
			cycleEnd = time.Time{}
			if pendingEnd() {
				cycleEnd, pendingEnd = e.at, nil
			}
			cycle, step = cycle+1, 0
		}
	}
	if cycle < len(cycles) {
		errs = append(errs, fmt.Errorf("%d of %d cycles seen", cycle, len(cycles)))
	}
	return gaps, errs
}

// flatten is the steps of cycles framed by the rollout's create and delete.
func flatten(cycles [][]string) []string {
	out := []string{"create new 0"}
	for _, c := range cycles {
		out = append(out, c...)
	}
	return append(out, "delete old")
}
