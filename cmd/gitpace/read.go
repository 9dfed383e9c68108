package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/plan"
	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
	"github.com/gitpace/gitpace/status"
)

// readFlags are shared by the commands that read gitpace's state.
type readFlags struct {
	kube    kubeFlags
	stateNS string
	agent   string
	output  string
}

func (r *readFlags) add(cmd *cobra.Command) {
	r.kube.add(cmd.Flags())
	cmd.Flags().StringVar(&r.stateNS, "state-namespace", state.DefaultNamespace, "namespace holding gitpace's state")
	cmd.Flags().VarP((*outputFormat)(&r.output), "output", "o", "output format: json or yaml (default: a table)")
}

// outputFormat is the -o flag: "", json or yaml, checked when parsed.
type outputFormat string

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "format" }
func (f *outputFormat) Set(v string) error {
	switch v {
	case "", "json", "yaml":
		*f = outputFormat(v)
		return nil
	}
	return fmt.Errorf("want json or yaml, not %q", v)
}

// addAgent adds --agent, which picks one agent's apps where several agents
// share the state namespace.
func (r *readFlags) addAgent(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.agent, "agent", "", "only the apps of this agent identity (gitpace run --name; default: every agent's)")
}

func (r *readFlags) client() (kubernetes.Interface, error) {
	cfg, err := r.kube.config()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func newStatusCommand() *cobra.Command {
	r := &readFlags{}
	cmd := &cobra.Command{
		Use:   "status [APP]",
		Short: "Show each app's applied revision, state and Deployment rollouts",
		Long: `Status shows, per app, the revision in force (commit, author, subject), its
state (Synced, OutOfSync, Progressing, Paused, Held, Failed) with the reason,
and per Deployment DESIRED CURRENT UP-TO-DATE AVAILABLE with the rollout's
progress in 'kubectl rollout status' wording.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kube, err := r.client()
			if err != nil {
				return err
			}
			only := ""
			if len(args) == 1 {
				only = args[0]
			}
			apps, err := status.Collect(cmd.Context(), kube, r.stateNS, only, r.agent)
			if err != nil {
				return err
			}
			if len(apps) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "No gitpace state found in namespace %s (is it gitpace run's --state-namespace?).\n", r.stateNS)
			}
			return status.Print(cmd.OutOrStdout(), r.output, apps, status.AppsTable(apps))
		},
	}
	r.add(cmd)
	r.addAgent(cmd)
	return cmd
}

func newHistoryCommand() *cobra.Command {
	r := &readFlags{}
	cmd := &cobra.Command{
		Use:   "history APP",
		Short: "List an app's revisions: commit, time, author, subject, outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kube, err := r.client()
			if err != nil {
				return err
			}
			h, err := status.History(cmd.Context(), kube, r.stateNS, args[0], r.agent)
			if err != nil {
				return err
			}
			return status.Print(cmd.OutOrStdout(), r.output, h, status.HistoryTable(h))
		},
	}
	r.add(cmd)
	r.addAgent(cmd)
	return cmd
}

func newDiffCommand() *cobra.Command {
	var src sourceFlags
	r := &readFlags{}
	var rev, defaultNS, name string
	var takeover []string
	cmd := &cobra.Command{
		Use:   "diff --repo URL [--rev REV]",
		Short: "Show what a revision would change in the live cluster (exit 0 none, 2 changes, 1 error)",
		Long: `Diff dry-runs every object of revision REV (default: the branch head) with
server-side apply and prints a unified diff per object that would change,
plus the objects a prune would delete. It writes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := src.source()
			if err != nil {
				return err
			}
			defer s.Close() // a temporary mirror goes with the process
			rc, err := r.kube.config()
			if err != nil {
				return err
			}
			name, err := agentName(name, s)
			if err != nil {
				return err
			}
			d, err := plan.Diff(cmd.Context(), plan.Config{AgentName: name, TakeoverManagers: takeover, Source: s, Rest: rc,
				StateNamespace: r.stateNS, DefaultNamespace: defaultNS}, rev)
			if err != nil {
				return err
			}
			if d.Warning != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+d.Warning)
			}
			changed, failed := printDiffs(cmd, r.output, d.Revision.Short(), d.Apps)
			switch {
			case failed:
				return &exitError{code: 1}
			case changed:
				return &exitError{code: 2}
			}
			return nil
		},
	}
	src.add(cmd.Flags())
	r.add(cmd)
	cmd.Flags().StringVar(&rev, "rev", "", "branch, tag or commit to diff (default: the branch head)")
	cmd.Flags().StringVar(&defaultNS, "default-namespace", "default", "namespace for namespaced objects that name none (as given to gitpace run)")
	addNameFlag(cmd, &name)
	addTakeoverFlag(cmd, &takeover)
	return cmd
}

// printDiffs prints the diffs and reports whether anything would change and
// whether any app's revision is invalid.
func printDiffs(cmd *cobra.Command, format, rev string, diffs []revision.AppDiff) (changed, failed bool) {
	w := cmd.OutOrStdout()
	for _, d := range diffs {
		if d.Error != "" {
			failed = true
		}
		if d.Changes.Changed() {
			changed = true
		}
	}
	if format != "" {
		if err := status.Print(w, format, diffs, nil); err != nil {
			cmd.PrintErrln(err) // -o was checked when parsed: a write error
			failed = true
		}
		return changed, failed
	}
	for _, d := range diffs {
		if d.Error != "" {
			cmd.PrintErrf("app %s: revision %s is invalid: %s\n", d.App, rev, d.Error)
			continue
		}
		for _, c := range d.Changes {
			if c.Note != "" {
				cmd.Printf("# app %s: %s: %s\n", d.App, c.Ref, c.Note)
			}
			if c.Action == "unchanged" {
				continue
			}
			if c.Action == "skipped" {
				fmt.Fprintf(w, "# app %s: %s %s\n", d.App, c.Ref, c.Reason)
				continue
			}
			fmt.Fprintf(w, "# app %s: %s %s\n%s", d.App, c.Ref, c.Action, c.Diff)
		}
	}
	if !changed && !failed {
		fmt.Fprintf(w, "revision %s: no changes\n", rev)
	}
	return changed, failed
}

// agentName is the identity diff and plan act as: --name, or the one
// gitpace run derives from the source (agent.DefaultName).
func agentName(name string, s *sources.GitSource) (string, error) {
	if name == "" {
		c := s.Config()
		name = agent.DefaultName(c.URL, c.Branch, c.Path)
	}
	return name, agent.ValidateName(name)
}

// addNameFlag adds --name to diff and plan: they diff as that agent would
// (its inventories decide what a prune deletes).
func addNameFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "name", "", "the agent identity to diff as (gitpace run --name; default derived from --repo, --branch, --path as run does)")
}

// addTakeoverFlag adds --takeover-managers to diff and plan, so that they
// predict what gitpace run with the same list would do.
func addTakeoverFlag(cmd *cobra.Command, managers *[]string) {
	cmd.Flags().StringSliceVar(managers, "takeover-managers", appliers.DefaultTakeoverManagers, "field managers whose fields the agent takes over (as given to gitpace run)")
}
