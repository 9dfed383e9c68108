// Package status collects what `gitpace status` and `gitpace history` show
// from the state in the cluster and the live objects, and prints it as
// kubectl-style tables or as JSON/YAML.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

// App is one app's status.
type App struct {
	Name string `json:"name"`
	// Agent is the identity of the agent that reconciles the app ("" for
	// state written before agents had identities).
	Agent   string            `json:"agent,omitempty"`
	Applied *sources.Revision `json:"applied,omitempty"`
	Phase   state.Phase       `json:"phase"`
	Reason  string            `json:"reason,omitempty"`
	// Health and HealthReason: the app's second axis (appliers/health),
	// as the agent last computed it.
	Health       health.Health                `json:"health,omitempty"`
	HealthReason string                       `json:"healthReason,omitempty"`
	Rejected     *state.Rejection             `json:"rejected,omitempty"`
	Deployments  []appliers.DeploymentRollout `json:"deployments,omitempty"`
	// Workloads are the app's StatefulSets and DaemonSets, as `kubectl
	// rollout status` sees them.
	Workloads []appliers.DeploymentRollout `json:"workloads,omitempty"`
	// FailingPods are the not-Ready pods of a failed rollout.
	FailingPods []state.PodIssue `json:"failingPods,omitempty"`
	// BCS are the app's BCS v4 deployments as last stepped by the agent.
	BCS []paced.Status `json:"bcs,omitempty"`
	// PruneHeld says what was not pruned while another app's revision is
	// invalid.
	PruneHeld string `json:"pruneHeld,omitempty"`
	// Conflict names objects that another agent declares too and applied
	// last ("" when none).
	Conflict string `json:"conflict,omitempty"`
	// ReadyAt is when the app was first Synced and Healthy at the
	// revision it runs (a wave's interval counts from its last app's).
	ReadyAt time.Time `json:"readyAt,omitzero"`
	// Wave is the app's wave of gitpace.yaml's waves (nil: none).
	Wave    *state.Wave `json:"wave,omitempty"`
	Objects int         `json:"objects"`
	Updated time.Time   `json:"updated"`
}

// Collect reads every app's state (or only the apps named only; of the
// agent named agent when it is not "") and the live Deployments of its
// inventory.
func Collect(ctx context.Context, kube kubernetes.Interface, stateNS, only, agent string) ([]App, error) {
	all, err := find(ctx, kube, stateNS, only, agent)
	if err != nil {
		return nil, err
	}
	var out []App
	for _, st := range all {
		a := App{Name: st.Name, Agent: st.Agent, Applied: st.Applied, Phase: st.Phase, Reason: st.Reason, Rejected: st.Rejected,
			Health: st.Health, HealthReason: st.HealthReason,
			Objects: len(st.Inventory), Updated: st.Updated, BCS: st.BCS, FailingPods: st.FailingPods, Wave: st.Wave, ReadyAt: st.ReadyAt, PruneHeld: st.PruneHeld, Conflict: st.Conflict}
		for _, ref := range st.Inventory {
			if ref.Group == "apps" && (ref.Kind == "StatefulSet" || ref.Kind == "DaemonSet") {
				r, err := workload(ctx, kube, ref)
				if err != nil {
					return nil, err
				}
				if r != nil {
					a.Workloads = append(a.Workloads, *r)
				}
				continue
			}
			if ref.Kind != "Deployment" || ref.Group != "apps" {
				continue
			}
			d, err := kube.AppsV1().Deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("Deployment %s/%s: %w", ref.Namespace, ref.Name, err)
			}
			a.Deployments = append(a.Deployments, appliers.TypedDeploymentStatus(d))
		}
		out = append(out, a)
	}
	return out, nil
}

// workload reads a StatefulSet or DaemonSet's rollout (nil when it is gone).
func workload(ctx context.Context, kube kubernetes.Interface, ref appliers.ObjectRef) (*appliers.DeploymentRollout, error) {
	var r appliers.DeploymentRollout
	var err error
	if ref.Kind == "StatefulSet" {
		var s *appsv1.StatefulSet
		if s, err = kube.AppsV1().StatefulSets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
			r = appliers.TypedStatefulSetStatus(s)
		}
	} else {
		var d *appsv1.DaemonSet
		if d, err = kube.AppsV1().DaemonSets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
			r = appliers.TypedDaemonSetStatus(d)
		}
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return &r, nil
}

// find lists the states of app only ("" = every app) of agent ("" = every
// agent), sorted by agent, then app.
func find(ctx context.Context, kube kubernetes.Interface, stateNS, only, agent string) ([]*state.App, error) {
	all, err := state.NewStore(kube, stateNS).List(ctx)
	if err != nil {
		return nil, err
	}
	var out []*state.App
	known := map[string]bool{}
	for _, st := range all {
		if agent != "" && st.Agent != agent {
			continue
		}
		known[st.Name] = true
		if only == "" || st.Name == only {
			out = append(out, st)
		}
	}
	if only != "" && len(out) == 0 {
		where := "namespace " + stateNS
		if agent != "" {
			where += ", agent " + agent
		}
		return nil, fmt.Errorf("app %q not found in %s (known: %s)", only, where, strings.Join(sortedNames(known), ", "))
	}
	return out, nil
}

// History returns one app's history, oldest first. When agents sharing the
// state namespace each have an app of that name, agent must say which.
func History(ctx context.Context, kube kubernetes.Interface, stateNS, app, agent string) ([]state.Entry, error) {
	sts, err := find(ctx, kube, stateNS, app, agent)
	if err != nil {
		return nil, err
	}
	if len(sts) > 1 {
		var agents []string
		for _, st := range sts {
			agents = append(agents, st.Agent)
		}
		return nil, fmt.Errorf("app %q exists for agents %s: say which with --agent", app, strings.Join(agents, ", "))
	}
	return sts[0].History, nil
}

func sortedNames(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Print writes v as a table (format "" or "wide"), "json" or "yaml".
func Print(w io.Writer, format string, v any, table func(io.Writer)) error {
	switch format {
	case "":
		table(w)
		return nil
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q (want json or yaml)", format)
}

// newTable is a tabwriter with kubectl's spacing; call Flush when done.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0) }

// AppsTable prints apps like `kubectl get`: one line per app, then a second
// table of their Deployments with `kubectl rollout status` wording.
func AppsTable(apps []App) func(io.Writer) {
	return func(out io.Writer) {
		w := newTable(out)
		fmt.Fprintln(w, "APP\tAGENT\tREVISION\tSTATE\tHEALTH\tAUTHOR\tSUBJECT\tMESSAGE")
		for _, a := range apps {
			rev, author, subject := "<none>", "", ""
			if a.Applied != nil {
				rev, author, subject = a.Applied.Short(), a.Applied.Author, a.Applied.Subject
			}
			agent := a.Agent
			if agent == "" {
				agent = "<none>"
			}
			h, msg := string(a.Health), a.Reason
			if h == "" {
				h = "<unknown>" // state written before gitpace computed health
			}
			if msg == "" && a.Health != health.Healthy {
				msg = a.HealthReason
			}
			if msg == "" {
				msg = a.PruneHeld
			}
			if a.Conflict != "" { // a warning beside any other message
				msg = strings.TrimPrefix(msg+"; conflict: "+a.Conflict, "; ")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, agent, rev, a.Phase, h, trim(author, 30), trim(subject, 40), msg)
		}
		w.Flush()
		var rows []string
		for _, a := range apps {
			for _, d := range a.Deployments {
				rows = append(rows, fmt.Sprintf("%s\t%s/%s\t%d\t%d\t%d\t%d\t%s", a.Name, d.Namespace, d.Name,
					d.Desired, d.Current, d.UpToDate, d.Available, d.Message))
			}
		}
		if len(rows) > 0 {
			fmt.Fprintln(out)
			w = newTable(out)
			fmt.Fprintln(w, "APP\tDEPLOYMENT\tDESIRED\tCURRENT\tUP-TO-DATE\tAVAILABLE\tROLLOUT")
			for _, r := range rows {
				fmt.Fprintln(w, r)
			}
			w.Flush()
		}
		workloadTable(out, apps)
		bcsTables(out, apps)
		wavesTable(out, apps)
	}
}

// WaveSummary is one wave of one agent, as `gitpace status` counts its
// apps: Done (Synced and Healthy, waiting for nothing), Waiting (a new
// revision waits for the order between apps), Failed, and Rolling (the
// rest: applied and progressing).
type WaveSummary struct {
	Agent                                string
	Index, Of                            int
	Manual                               bool
	Apps, Done, Rolling, Waiting, Failed int
	// Next is when the wave may start at the earliest (the interval of the
	// wave before it), what releases it, or why the waves stopped.
	Next string
	rank int // of Next: the most telling waiting reason of the wave's apps
}

// waveNext says, from a waiting app's reason, what its wave waits for,
// ranked: stopped waves first, then a manual wave's promote, a start time,
// a maxApps slot, the waves before it.
func waveNext(a App) (string, int) {
	r := a.Reason
	switch {
	case strings.Contains(r, "waves stopped: "):
		_, after, _ := strings.Cut(r, "waves stopped: ")
		return "stopped: " + trim(after, 80), 5
	case a.Wave.Manual && strings.Contains(r, "gitpace promote --wave"):
		return fmt.Sprintf("gitpace promote --wave %d (rollout %s)", a.Wave.Index, a.Wave.Rollout), 4
	case a.Wave.NextAt != nil:
		return "at " + a.Wave.NextAt.Format(time.RFC3339), 3
	case strings.Contains(r, "(maxApps)"):
		return "a maxApps slot", 2
	case strings.Contains(r, " waits for wave "):
		return "the waves before it to be Healthy", 1
	}
	return "", 0
}

// Waves summarizes apps by agent and wave, in order.
func Waves(apps []App) []WaveSummary {
	idx := map[string]int{}
	var out []WaveSummary
	for _, a := range apps {
		if a.Wave == nil {
			continue
		}
		key := fmt.Sprintf("%s\x00%d", a.Agent, a.Wave.Index)
		i, ok := idx[key]
		if !ok {
			i = len(out)
			idx[key] = i
			out = append(out, WaveSummary{Agent: a.Agent, Index: a.Wave.Index, Of: a.Wave.Of, Manual: a.Wave.Manual})
		}
		w := &out[i]
		w.Apps++
		waiting := a.Phase == state.OutOfSync && strings.Contains(a.Reason, " waits: ")
		switch {
		case a.Phase == state.Failed || a.Health == health.Degraded:
			w.Failed++
		case waiting:
			w.Waiting++
			if next, rank := waveNext(a); rank > w.rank {
				w.Next, w.rank = next, rank
			}
		case a.Phase == state.Synced && a.Health == health.Healthy:
			w.Done++
		default:
			w.Rolling++
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].Index < out[j].Index
	})
	return out
}

// wavesTable prints the waves of gitpace.yaml: for each, its apps done,
// rolling, waiting and failed, and when it may start; nothing without waves.
func wavesTable(out io.Writer, apps []App) {
	ws := Waves(apps)
	if len(ws) == 0 {
		return
	}
	fmt.Fprintln(out)
	w := newTable(out)
	fmt.Fprintln(w, "AGENT\tWAVE\tAPPS\tDONE\tROLLING\tWAITING\tFAILED\tNEXT")
	for _, s := range ws {
		wave := fmt.Sprintf("%d of %d", s.Index, s.Of)
		if s.Manual {
			wave += " (manual)"
		}
		next := s.Next
		if next == "" {
			next = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Agent, wave, s.Apps, s.Done, s.Rolling, s.Waiting, s.Failed, next)
	}
	w.Flush()
}

// workloadTable prints the apps' StatefulSets and DaemonSets with `kubectl
// rollout status` wording; nothing when there are none.
func workloadTable(out io.Writer, apps []App) {
	var rows []string
	for _, a := range apps {
		for _, d := range a.Workloads {
			rows = append(rows, fmt.Sprintf("%s\t%s/%s/%s\t%d\t%d\t%d\t%d\t%s", a.Name, d.Kind, d.Namespace, d.Name,
				d.Desired, d.Current, d.UpToDate, d.Available, d.Message))
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(out)
	w := newTable(out)
	fmt.Fprintln(w, "APP\tWORKLOAD\tDESIRED\tCURRENT\tUP-TO-DATE\tAVAILABLE\tROLLOUT")
	for _, r := range rows {
		fmt.Fprintln(w, r)
	}
	w.Flush()
}

// bcsTables prints BCS deployments as `bcs-client list -t app` did, plus a
// deployment line: cycle k of n, next cycle, paused or suspended and why.
func bcsTables(out io.Writer, apps []App) {
	var any bool
	for _, a := range apps {
		any = any || len(a.BCS) > 0
	}
	if !any {
		return
	}
	fmt.Fprintln(out)
	w := newTable(out)
	fmt.Fprintln(w, "NAME\tSTATUS\tINSTANCE\tRUNNING_INSTANCE\tMESSAGE\tCREATETIME\tNAMESPACE")
	for _, a := range apps {
		for _, d := range a.BCS {
			for _, ap := range d.Apps {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", ap.Name, ap.Status, ap.Instance, ap.RunningInstance,
					trim(ap.Message, 25), ap.CreateTime.Format("2006-01-02 15:04:05 -0700 MST"), ap.Namespace)
			}
		}
	}
	w.Flush()
	fmt.Fprintln(out)
	w = newTable(out)
	fmt.Fprintln(w, "APP\tBCS DEPLOYMENT\tSTATUS\tCYCLE\tNEXT CYCLE\tMESSAGE")
	for _, a := range apps {
		for _, d := range a.BCS {
			cycle, next := "-", "-"
			if d.Rollout != "" {
				cycle = fmt.Sprintf("%d of %d", d.Cycle, d.Cycles)
				if !d.NextCycleAt.IsZero() {
					next = d.NextCycleAt.Format(time.RFC3339)
				}
			}
			fmt.Fprintf(w, "%s\t%s/%s\t%s\t%s\t%s\t%s\n", a.Name, d.Namespace, d.Name, d.Status, cycle, next, d.Reason)
		}
	}
	w.Flush()
}

// HistoryTable prints revisions like `kubectl rollout history`, with commits.
func HistoryTable(entries []state.Entry) func(io.Writer) {
	return func(out io.Writer) {
		w := newTable(out)
		defer w.Flush()
		fmt.Fprintln(w, "REVISION\tCOMMIT\tTIME\tAUTHOR\tSUBJECT\tOUTCOME")
		for _, e := range entries {
			outcome := string(e.Outcome)
			if e.Message != "" {
				outcome += " (" + e.Message + ")"
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.N, e.Revision.Short(), e.Revision.Time.Format(time.RFC3339),
				trim(e.Revision.Author, 30), trim(e.Revision.Subject, 50), outcome)
		}
	}
}

// trim shortens s to n characters (runes: authors and subjects are often
// not ASCII), ending in "...".
func trim(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}
