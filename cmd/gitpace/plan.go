package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gitpace/gitpace/plan"
	"github.com/gitpace/gitpace/status"
)

func newPlanCommand() *cobra.Command {
	var src sourceFlags
	r := &readFlags{}
	var rev, format, defaultNS, name string
	var takeover []string
	cmd := &cobra.Command{
		Use:   "plan --repo URL [--rev REV] [--format text|markdown]",
		Short: "Show what merging a revision would change and roll out (exit 0 none, 2 changes, 1 error)",
		Long: `Plan shows, per app, what revision REV (a branch, tag or commit, e.g. a pull
request's head; default: the branch head) would change in the live cluster:
the object diff (server-side dry runs, as 'gitpace diff') and the rollout each
change triggers: a Deployment's rolling steps; a BCS deployment's cycles with
their targets, earliest start times (upgradeDuration, sync windows) and the
earliest time the rollout can finish. --format markdown is for a CI job to
post on the pull request. It writes nothing to the cluster or to git.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "markdown" {
				return usageErr(fmt.Sprintf("--format %q: want text or markdown", format))
			}
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
			p, err := plan.Make(cmd.Context(), plan.Config{AgentName: name, TakeoverManagers: takeover, Source: s, Rest: rc,
				StateNamespace: r.stateNS, DefaultNamespace: defaultNS}, rev)
			if err != nil {
				return err
			}
			if p.Warning != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+p.Warning)
			}
			w := cmd.OutOrStdout()
			switch {
			case r.output != "":
				err = status.Print(w, r.output, p, nil)
			case format == "markdown":
				err = plan.Markdown(w, p)
			default:
				err = plan.Text(w, p)
			}
			if err != nil {
				return err
			}
			if code := p.ExitCode(); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	src.add(cmd.Flags())
	r.add(cmd)
	cmd.Flags().StringVar(&rev, "rev", "", "branch, tag or commit to plan (default: the branch head)")
	cmd.Flags().StringVar(&format, "format", "text", "report format: text or markdown (-o json|yaml prints the plan's data instead)")
	cmd.Flags().StringVar(&defaultNS, "default-namespace", "default", "namespace for namespaced objects that name none (as the agent's)")
	addNameFlag(cmd, &name)
	addTakeoverFlag(cmd, &takeover)
	return cmd
}
