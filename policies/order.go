package policies

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// Order between apps: dependsOn (per app rule) and waves (gitpace.yaml's
// waves list). Both only decide when an app's NEW revision may be applied;
// drift correction of a revision in force never waits.

// Wave is one entry of gitpace.yaml's waves list. An app belongs to the
// first wave one of whose Apps patterns matches its name; apps no wave
// matches roll out as without waves. A revision that changes apps of
// several waves rolls them out wave by wave: wave k+1 starts only when
// every app of wave k is Healthy at its newest revision and wave k's
// Interval has passed (the BCS scheme's cycles, lifted from pods to apps:
// Interval is upgradeDuration, MaxApps is instancesPerCycle, Manual is
// rollingManually).
type Wave struct {
	// Apps are path.Match patterns on app names ("canary/*", "eu-*", "*").
	Apps []string `json:"apps"`
	// MaxApps is how many apps of the wave roll out at once: a number >= 1,
	// or a percentage ("25%") of the apps the wave matches in the
	// revision, rounded up, at least 1 (as Kubernetes rounds maxSurge).
	// Unset: every app of the wave at once.
	MaxApps *intstr.IntOrString `json:"maxApps,omitempty"`
	// Interval is how long to wait after the wave is Healthy before the
	// next wave starts, a Go duration ("10m"); unset or "0s": none.
	Interval string `json:"interval,omitempty"`
	// Manual waves start only once `gitpace promote --wave N` committed an
	// approval of this wave's rollout (PROMOTE-WAVES at the root of the
	// source path).
	Manual bool `json:"manual,omitempty"`

	interval time.Duration
}

// IntervalDuration is Interval parsed (ParseConfig validated it).
func (w *Wave) IntervalDuration() time.Duration { return w.interval }

// Limit is how many of the matched apps of the wave may roll out at once
// (see MaxApps); matched is the number of the revision's apps in the wave.
func (w *Wave) Limit(matched int) int {
	if w.MaxApps == nil {
		return max(matched, 1)
	}
	if w.MaxApps.Type == intstr.Int {
		return max(w.MaxApps.IntValue(), 1)
	}
	pct, _ := strconv.Atoi(strings.TrimSuffix(w.MaxApps.StrVal, "%"))
	return max(int(math.Ceil(float64(matched)*float64(pct)/100)), 1)
}

func (w *Wave) compile(field string) []error {
	var errs []error
	if len(w.Apps) == 0 {
		errs = append(errs, fmt.Errorf("%s.apps: required: the app name patterns of the wave", field))
	}
	errs = append(errs, checkPatterns(field+".apps", w.Apps)...)
	if m := w.MaxApps; m != nil {
		switch m.Type {
		case intstr.Int:
			if m.IntValue() < 1 {
				errs = append(errs, fmt.Errorf("%s.maxApps: must be at least 1, got %d", field, m.IntValue()))
			}
		default:
			pct, err := strconv.Atoi(strings.TrimSuffix(m.StrVal, "%"))
			if !strings.HasSuffix(m.StrVal, "%") || err != nil || pct < 1 || pct > 100 {
				errs = append(errs, fmt.Errorf("%s.maxApps: a number >= 1 or a percentage 1%%..100%%, got %q", field, m.StrVal))
			}
		}
	}
	w.interval = 0
	if w.Interval != "" {
		d, err := time.ParseDuration(w.Interval)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.interval: %w", field, err))
		case d < 0:
			errs = append(errs, fmt.Errorf("%s.interval: must not be negative, got %q", field, w.Interval))
		default:
			w.interval = d
		}
	}
	return errs
}

// WaveOf returns the index in c.Waves of the first wave matching app, -1
// when none does (or c is nil).
func (c *Config) WaveOf(app string) int {
	if c == nil {
		return -1
	}
	for i := range c.Waves {
		for _, p := range c.Waves[i].Apps {
			if ok, _ := path.Match(p, app); ok {
				return i
			}
		}
	}
	return -1
}

// DependsOn returns the apps app depends on: the dependsOn of the rule
// that applies to app (Rule). c may be nil.
func (c *Config) DependsOn(app string) []string {
	if _, r := c.ruleFor(app); r != nil {
		return r.DependsOn
	}
	return nil
}

// DependencyCycles finds the apps that are on a dependsOn cycle among apps
// (deps gives each app's dependencies; dependencies outside apps are not
// followed) and returns, for each, the cycle as "a → b → a", starting at
// the cycle's smallest name so that every app of one cycle reports the
// same text. Apps that only depend on a cycle are not on it (they wait).
func DependencyCycles(apps []string, deps func(string) []string) map[string]string {
	in := map[string]bool{}
	for _, a := range apps {
		in[a] = true
	}
	out := map[string]string{}
	// Tarjan's strongly connected components: a component of more than
	// one app, or an app depending on itself, is a cycle.
	index, low, onStack := map[string]int{}, map[string]int{}, map[string]bool{}
	var stack []string
	next := 0
	var visit func(v string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range deps(v) {
			if !in[w] {
				continue
			}
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var comp []string
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp = append(comp, w)
			if w == v {
				break
			}
		}
		self := false
		for _, w := range deps(v) {
			self = self || w == v
		}
		if len(comp) == 1 && !self {
			return
		}
		text := cyclePath(comp, deps)
		for _, w := range comp {
			out[w] = text
		}
	}
	sorted := append([]string(nil), apps...)
	sort.Strings(sorted)
	for _, a := range sorted {
		if _, seen := index[a]; !seen {
			visit(a)
		}
	}
	return out
}

// cyclePath writes one cycle through the component comp, from its smallest
// name, following the smallest dependency inside comp at each step.
func cyclePath(comp []string, deps func(string) []string) string {
	inComp := map[string]bool{}
	for _, w := range comp {
		inComp[w] = true
	}
	sort.Strings(comp)
	start := comp[0]
	p := []string{start}
	seen := map[string]bool{start: true}
	cur := start
	for {
		ds := append([]string(nil), deps(cur)...)
		sort.Strings(ds)
		var nxt string
		for _, d := range ds {
			if inComp[d] && (d == start || !seen[d]) {
				nxt = d
				break
			}
		}
		if nxt == "" { // every way on is seen: close the loop at the first seen one
			for _, d := range ds {
				if inComp[d] {
					nxt = d
					break
				}
			}
		}
		p = append(p, nxt)
		if seen[nxt] {
			break
		}
		seen[nxt] = true
		cur = nxt
	}
	return strings.Join(p, " → ")
}

// OrderCycles returns, for each of apps that is on a dependsOn cycle or
// whose dependsOn runs against the order of the waves (an app of wave k
// waits for every app of the waves before it, so depending, directly or
// through other apps, on an app of a later wave waits forever), the cycle
// as text: "a → b → a", or "wave 1 → x1 → x2 → wave 1 (dependsOn against
// the order of the waves)". c may be nil.
func (c *Config) OrderCycles(apps []string) map[string]string {
	out := DependencyCycles(apps, c.DependsOn)
	if c == nil || len(c.Waves) == 0 {
		return out
	}
	members := make([][]string, len(c.Waves))
	for _, a := range apps {
		if k := c.WaveOf(a); k >= 0 {
			members[k] = append(members[k], a)
		}
	}
	node := func(k int) string { return fmt.Sprintf("\x00wave %d", k+1) }
	all := append([]string(nil), apps...)
	for k := range c.Waves {
		all = append(all, node(k))
	}
	deps := func(n string) []string {
		if k, ok := strings.CutPrefix(n, "\x00wave "); ok {
			i, _ := strconv.Atoi(k)
			return members[i-1]
		}
		d := c.DependsOn(n)
		if k := c.WaveOf(n); k > 0 {
			d = append(d[:len(d):len(d)], node(k-1))
		}
		return d
	}
	for app, cyc := range DependencyCycles(all, deps) {
		if strings.HasPrefix(app, "\x00") {
			continue
		}
		if _, ok := out[app]; !ok {
			out[app] = strings.ReplaceAll(cyc, "\x00", "") + " (dependsOn against the order of the waves)"
		}
	}
	return out
}
