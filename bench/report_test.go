package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// verbCounts are a row's requests by the table's columns.
type verbCounts struct {
	get, list, watch, dryRun, patch, create, update, delete, other, writes int
}

func countVerbs(reqs []request) verbCounts {
	var c verbCounts
	for _, r := range reqs {
		if r.write() {
			c.writes++
		}
		switch {
		case r.DryRun:
			c.dryRun++
		case r.Verb == "get":
			c.get++
		case r.Verb == "list":
			c.list++
		case r.Verb == "watch":
			c.watch++
		case r.Verb == "patch" || r.Verb == "apply":
			c.patch++
		case r.Verb == "create":
			c.create++
		case r.Verb == "update":
			c.update++
		case r.Verb == "delete" || r.Verb == "deletecollection":
			c.delete++
		default:
			c.other++
		}
	}
	return c
}

// byKind lists a row's requests by kind, most first: "apply configmaps
// 200, apply configmaps (dry run) [state] 1".
func byKind(r *row) string {
	n := map[string]int{}
	for _, q := range r.reqs {
		k := describe(q)
		if q.Verb == "discovery" {
			k = "discovery"
		}
		if r.stateNS != "" && q.Namespace == r.stateNS {
			k += " [state]"
		}
		n[k]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if n[keys[i]] != n[keys[j]] {
			return n[keys[i]] > n[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s %d", k, n[k])
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func (h *harness) row(key string) *row {
	for _, r := range h.rows {
		if r.key == key {
			return r
		}
	}
	return nil
}

func seconds(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// ratio is a/b of two rows' wall times, 0 if either is missing.
func (h *harness) ratio(a, b string) float64 {
	ra, rb := h.row(a), h.row(b)
	if ra == nil || rb == nil || rb.wall == 0 {
		return 0
	}
	return ra.wall.Seconds() / rb.wall.Seconds()
}

// report prints the table, the requests by kind, the ratios and the goals
// of issue 9, and reports the key figures as benchmark metrics.
func (h *harness) report(out io.Writer) {
	fmt.Fprintf(out, "\n== gitpace side by side (%s; gitpace built in %s; every contestant through the counting proxy) ==\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), h.built.Round(time.Millisecond))
	table := [][]string{{"contestant", "scenario", "wall", "requests", "get", "list", "watch", "dry-run", "patch", "create", "update", "delete", "other", "writes", "apiserver (all)", "peak RSS"}}
	for _, r := range h.rows {
		c := countVerbs(r.reqs)
		rss, server := "-", "?"
		if r.rss > 0 {
			rss = fmt.Sprintf("%.1f MiB", mib(r.rss))
		}
		if r.server >= 0 {
			server = fmt.Sprintf("%.0f", r.server)
		}
		cells := []string{r.contestant, r.scenario, seconds(r.wall)}
		for _, n := range []int{len(r.reqs), c.get, c.list, c.watch, c.dryRun, c.patch, c.create, c.update, c.delete, c.other, c.writes} {
			if r.uncounted {
				cells = append(cells, "-")
				continue
			}
			cells = append(cells, fmt.Sprint(n))
		}
		table = append(table, append(cells, server, rss))
	}
	printTable(out, table, 2)
	fmt.Fprintln(out, `
requests: counted by the benchmark's proxy, this contestant's only; dry-run: any verb with dryRun=All;
patch: real patches and server-side applies; other: discovery (/api, /apis, /openapi); writes: real
create, update, patch, apply, delete. apiserver (all): the API server's apiserver_request_total over
the same span, every client (controllers, kwok, other users of a shared cluster; watches counted when
they end). peak RSS: the process's VmHWM (kubectl, gitpace; for a running gitpace, over its life).
"no proxy": kubectl straight to the API server, requests not counted: what the proxy costs.`)

	fmt.Fprintln(out, "\nrequests by kind:")
	for _, r := range h.rows {
		if !r.uncounted {
			fmt.Fprintf(out, "  %s, %s: %s\n", r.contestant, r.scenario, byKind(r))
		}
	}

	c := h.change
	fmt.Fprintf(out, "\none app of %d changed (%s's ConfigMap):\n", *bigAppsFlag, changedApp())
	fmt.Fprintf(out, "  push → first write naming one of its objects: %s (proxy); → the ConfigMap changed: %s (watch)\n",
		seconds(c.firstWrite), seconds(c.applied))
	fmt.Fprintf(out, "  requests naming its objects: %d (%s)\n", len(c.thisApp), strings.Join(c.thisApp, ", "))
	fmt.Fprintf(out, "  requests naming other apps' objects: %d%s\n", c.otherN, list(c.otherApps))
	fmt.Fprintf(out, "  lists of the apps' namespace without a selector (they read every app): %d%s\n", len(c.wideLists), list(c.wideLists))
	fmt.Fprintf(out, "  requests in the state namespace: %d; other (discovery, cluster-scoped, selected lists): %d\n", c.state, c.rest)

	gpCold, floorCold, kCold := h.row("gitpace-cold"), h.row("floor-cold"), h.row("kubectl-cold")
	gpNoop, kNoop := h.row("gitpace-noop"), h.row("kubectl-noop")
	coldFloor, kubectlCold, kubectlNoop := h.ratio("gitpace-cold", "floor-cold"), h.ratio("kubectl-cold", "gitpace-cold"), h.ratio("kubectl-noop", "gitpace-noop")
	fmt.Fprintln(out, "\nratios (wall time):")
	fmt.Fprintf(out, "  gitpace cold / floor         = %.2f  (%s / %s)\n", coldFloor, seconds(gpCold.wall), seconds(floorCold.wall))
	fmt.Fprintf(out, "  kubectl cold / gitpace cold  = %.2f  (%s / %s)\n", kubectlCold, seconds(kCold.wall), seconds(gpCold.wall))
	fmt.Fprintf(out, "  kubectl no-op / gitpace no-op = %.2f  (%s / %s)\n", kubectlNoop, seconds(kNoop.wall), seconds(gpNoop.wall))

	big := h.row("gitpace-1000-cold")
	idle, idleBig := countVerbs(h.row("gitpace-idle").reqs), countVerbs(h.row("gitpace-1000-idle").reqs)
	idleN := len(h.row("gitpace-idle").reqs) - idle.watch
	idleBigN := len(h.row("gitpace-1000-idle").reqs) - idleBig.watch
	noopWrites := countVerbs(gpNoop.reqs).writes
	fmt.Fprintln(out, "\ngoals (issue 9; informative, the benchmark does not fail on a MISS):")
	goal(out, coldFloor > 0 && coldFloor <= 1.5 && kubectlCold >= 2,
		"cold %d apps: within 1.5x of the floor (%.2fx) and at least 2x faster than kubectl (%.2fx)", *appsFlag, coldFloor, kubectlCold)
	goal(out, kubectlNoop > 1 && noopWrites == 0,
		"no-op %d apps, fresh process: faster than kubectl's no-op (%.2fx) with no write (%d writes)", *appsFlag, kubectlNoop, noopWrites)
	goal(out, c.otherN == 0 && len(c.wideLists) == 0 && c.firstWrite > 0 && c.firstWrite < time.Second,
		"one app of %d changed: only its objects read or written (%d requests named others, %d unselected lists) and push → first write under 1 s (%s)",
		*bigAppsFlag, c.otherN, len(c.wideLists), seconds(c.firstWrite))
	goal(out, big.rss > 0 && big.rss < 150<<20,
		"%d apps (%d objects) cold: %s, peak RSS under 150 MiB (%.1f MiB)", *bigAppsFlag, 3**bigAppsFlag, seconds(big.wall), mib(big.rss))
	goal(out, idleN == 0 && idleBigN == 0,
		"idle: no request but watches (%d apps, %d polls: %d; %d apps, local repo: %d)", *appsFlag, int(idleWindow/idleInterval), idleN, *bigAppsFlag, idleBigN)
	for _, n := range h.notes {
		fmt.Fprintln(out, "note:", n)
	}
	fmt.Fprintln(out)

	b := h.b
	b.ReportMetric(kCold.wall.Seconds(), "kubectl-cold-s")
	b.ReportMetric(kNoop.wall.Seconds(), "kubectl-noop-s")
	b.ReportMetric(floorCold.wall.Seconds(), "floor-cold-s")
	b.ReportMetric(gpCold.wall.Seconds(), "gitpace-cold-s")
	b.ReportMetric(float64(len(gpCold.reqs)), "gitpace-cold-requests")
	b.ReportMetric(gpNoop.wall.Seconds(), "gitpace-noop-s")
	b.ReportMetric(float64(noopWrites), "gitpace-noop-writes")
	b.ReportMetric(float64(idleN), "gitpace-idle-requests")
	b.ReportMetric(big.wall.Seconds(), "gitpace-1000-cold-s")
	b.ReportMetric(mib(big.rss), "gitpace-1000-cold-RSS-MiB")
	b.ReportMetric(float64(c.firstWrite.Milliseconds()), "change-first-write-ms")
	b.ReportMetric(float64(c.otherN), "change-other-app-requests")
}

func goal(out io.Writer, ok bool, format string, args ...any) {
	verdict := "MISS"
	if ok {
		verdict = "PASS"
	}
	fmt.Fprintf(out, "  %s  %s\n", verdict, fmt.Sprintf(format, args...))
}

func list(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return " (" + strings.Join(items, ", ") + ")"
}

// printTable prints rows in aligned columns: the first `left` columns
// aligned left, the others (figures) right.
func printTable(out io.Writer, rows [][]string, left int) {
	width := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < left {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(out, b.String())
	}
}
