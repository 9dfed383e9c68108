package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gitpace/gitpace/revision"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
	"github.com/gitpace/gitpace/status"
)

// commitFlags are shared by the verbs that act through git: they work on a
// local clone, make one commit and push only with --push. They never write
// to the cluster.
type commitFlags struct {
	dir    string
	path   string
	push   bool
	remote string
	auth   sourceFlags
}

func (c *commitFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&c.dir, "dir", ".", "the local git clone to commit in")
	fs.StringVar(&c.path, "path", ".", "directory inside the repository that holds the apps (as given to gitpace run)")
	fs.BoolVar(&c.push, "push", false, "push the commit to --remote")
	fs.StringVar(&c.remote, "remote", "origin", "remote to push to")
	fs.StringVar(&c.auth.cfg.Auth.Username, "git-username", "", "HTTP user name for --push")
	fs.StringVar(&c.auth.cfg.Auth.Password.Env, "git-password-env", "", "environment variable holding the HTTP password or token for --push")
	fs.StringVar(&c.auth.cfg.Auth.Password.File, "git-password-file", "", "file holding the HTTP password or token for --push")
	fs.StringVar(&c.auth.cfg.Auth.SSHKeyFile, "ssh-key", "", "SSH private key for --push")
	fs.StringVar(&c.auth.cfg.Auth.KnownHostsFile, "known-hosts", "", "known_hosts file for --push")
}

// done reports the commit and pushes it when asked.
func (c *commitFlags) done(cmd *cobra.Command, hash, what string) error {
	cmd.Printf("%s: committed %s\n", what, short(hash))
	if !c.push {
		cmd.Printf("push it (or open a pull request) for gitpace to act: git push %s\n", c.remote)
		return nil
	}
	if err := sources.Push(cmd.Context(), c.dir, c.remote, c.auth.cfg.Auth); err != nil {
		return err
	}
	cmd.Printf("pushed to %s\n", c.remote)
	return nil
}

func short(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// appArg returns the app named by args, or "" with --all.
func appArg(args []string, all bool) (string, error) {
	switch {
	case all && len(args) == 0:
		return "", nil
	case !all && len(args) == 1:
		return args[0], nil
	}
	return "", usageErr("name one APP, or --all")
}

func newPauseCommand() *cobra.Command {
	c := &commitFlags{}
	var all bool
	var reason string
	cmd := &cobra.Command{
		Use:   "pause APP|--all [--reason TEXT]",
		Short: "Commit a PAUSE marker: freezes the app's rollouts and holds newer revisions",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := appArg(args, all)
			if err != nil {
				return err
			}
			h, err := sources.Pause(c.dir, c.path, app, reason)
			if err != nil {
				return err
			}
			return c.done(cmd, h, "pause "+orAll(app))
		},
	}
	c.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "pause every app (PAUSE at the root of --path)")
	cmd.Flags().StringVar(&reason, "reason", "", "why; shown by gitpace status")
	return cmd
}

func newResumeCommand() *cobra.Command {
	c := &commitFlags{}
	var all bool
	cmd := &cobra.Command{
		Use:   "resume APP|--all",
		Short: "Commit the removal of a PAUSE marker: unpause, then apply the newest revision",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := appArg(args, all)
			if err != nil {
				return err
			}
			h, err := sources.Resume(c.dir, c.path, app)
			if err != nil {
				return err
			}
			return c.done(cmd, h, "resume "+orAll(app))
		},
	}
	c.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "remove the PAUSE at the root of --path")
	return cmd
}

func newPromoteCommand() *cobra.Command {
	c := &commitFlags{}
	r := &readFlags{}
	var rollout string
	var cycles, wave int
	cmd := &cobra.Command{
		Use:   "promote APP [--rollout NAME] [--cycles N] | promote --wave N [--rollout ID]",
		Short: "Commit a PROMOTE marker approving manual cycles of one BCS rollout, or a manual wave",
		Long: `Promote writes APP/PROMOTE naming the rollout (the new application, e.g.
test-v1562517103) it approves and how many cycles in all are approved, and
commits it. A marker naming another rollout releases nothing, so a stale
approval never releases a later rollout.

Without --rollout, the rollout in flight is read from the cluster (read
only), and --cycles defaults to one more than the app's PROMOTE approves now.

With --wave N (and no APP), it approves manual wave N of gitpace.yaml's
waves: it writes the wave's current rollout (gitpace status shows it; read
from the cluster unless --rollout names it) into PROMOTE-WAVES at the root
of --path and commits it. A later commit that changes an app of the wave
makes a new rollout, which needs a new promote.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if wave != 0 || cmd.Flags().Changed("wave") {
				if len(args) > 0 {
					return usageErr("promote --wave N takes no APP: it approves every app of the wave")
				}
				if wave < 1 {
					return usageErr("--wave: waves count from 1, as gitpace.yaml lists them")
				}
				if rollout == "" {
					var err error
					if rollout, err = waveRollout(cmd.Context(), r, wave); err != nil {
						return err
					}
				}
				h, err := sources.PromoteWave(c.dir, c.path, wave, rollout)
				if err != nil {
					return err
				}
				return c.done(cmd, h, fmt.Sprintf("promote wave %d (rollout %s)", wave, rollout))
			}
			if len(args) != 1 {
				return usageErr("promote needs an APP, or --wave N")
			}
			if rollout == "" {
				kube, err := r.client()
				if err != nil {
					return err
				}
				apps, err := status.Collect(cmd.Context(), kube, r.stateNS, args[0], r.agent)
				if err != nil {
					return err
				}
				if len(apps) > 1 {
					return usageErr("app " + args[0] + " exists for several agents: say which with --agent")
				}
				for _, d := range apps[0].BCS {
					if d.Rollout != "" {
						if rollout != "" {
							return usageErr("app " + args[0] + " has several BCS rollouts in flight: name one with --rollout")
						}
						rollout = d.Rollout
					}
				}
				if rollout == "" {
					return fmt.Errorf("app %s has no BCS rollout in flight (gitpace status %s)", args[0], args[0])
				}
			}
			if cycles <= 0 {
				cycles = sources.NextPromoteCycles(c.dir, c.path, args[0], rollout)
			}
			h, err := sources.Promote(c.dir, c.path, args[0], rollout, cycles)
			if err != nil {
				return err
			}
			return c.done(cmd, h, fmt.Sprintf("promote %s (%s, %d cycles approved)", args[0], rollout, cycles))
		},
	}
	c.add(cmd)
	r.kube.add(cmd.Flags())
	cmd.Flags().StringVar(&r.stateNS, "state-namespace", state.DefaultNamespace, "namespace holding gitpace's state")
	r.addAgent(cmd)
	cmd.Flags().StringVar(&rollout, "rollout", "", "the rollout to approve: a BCS rollout (new application name), or with --wave the wave's rollout ID (default: read from the cluster)")
	cmd.Flags().IntVar(&cycles, "cycles", 0, "total number of cycles approved for this rollout (0: one more than the app's PROMOTE approves now)")
	cmd.Flags().IntVar(&wave, "wave", 0, "approve manual wave N of gitpace.yaml's waves (1-based) instead of an app's cycles")
	return cmd
}

// waveRollout reads from the cluster the current rollout of manual wave
// (1-based) of the agent --agent names (or the only agent with waves).
func waveRollout(ctx context.Context, r *readFlags, wave int) (string, error) {
	kube, err := r.client()
	if err != nil {
		return "", err
	}
	apps, err := status.Collect(ctx, kube, r.stateNS, "", r.agent)
	if err != nil {
		return "", err
	}
	found := map[string]string{} // agent -> rollout
	seen, of := false, 0
	for _, a := range apps {
		if a.Wave == nil {
			continue
		}
		of = max(of, a.Wave.Of)
		if a.Wave.Index != wave {
			continue
		}
		seen = true
		if a.Wave.Manual && a.Wave.Rollout != "" {
			// The apps that wait for the promote carry the wave's current
			// rollout; an app the newest commit did not change may still
			// carry an older one.
			waiting := strings.Contains(a.Reason, "gitpace promote --wave")
			if _, ok := found[a.Agent]; !ok || waiting {
				found[a.Agent] = a.Wave.Rollout
			}
		}
	}
	switch {
	case len(found) == 1:
		for _, id := range found {
			return id, nil
		}
	case len(found) > 1:
		return "", usageErr(fmt.Sprintf("wave %d exists for several agents: say which with --agent", wave))
	case seen:
		return "", fmt.Errorf("wave %d is not manual: it starts by itself once the waves before it are Healthy (gitpace status shows the waves)", wave)
	case of > 0 && wave > of:
		return "", fmt.Errorf("wave %d does not exist: gitpace.yaml has %d waves", wave, of)
	}
	return "", fmt.Errorf("no app of wave %d found in namespace %s (gitpace status shows the waves)", wave, r.stateNS)
}

func newRollbackCommand() *cobra.Command {
	c := &commitFlags{}
	r := &readFlags{}
	var to int
	cmd := &cobra.Command{
		Use:   "rollback APP [--to-revision N]",
		Short: "Commit a git revert of what came after revision N (default: the previous one)",
		Long: `Rollback reads APP's history from the cluster (read only), finds the commit
of revision N, and commits in --dir one revert of every later commit that
changed the app's content (its rendered objects: its files, kustomize
bases, Helm values, gitpace.yaml inline values; not PAUSE or PROMOTE
markers). A commit that also changed other apps is reverted whole. The agent applies it like any commit and
reports a rollback to revision N.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kube, err := r.client()
			if err != nil {
				return err
			}
			hist, err := status.History(cmd.Context(), kube, r.stateNS, args[0], r.agent)
			if err != nil {
				return err
			}
			target, err := rollbackTarget(hist, to)
			if err != nil {
				return err
			}
			commits, err := revision.ContentChanges(c.dir, c.path, target.Revision.Commit, args[0])
			if err != nil {
				return err
			}
			if len(commits) == 0 {
				return fmt.Errorf("app %s: nothing changed after revision %d (%s)", args[0], target.N, target.Revision.Short())
			}
			msg := fmt.Sprintf("gitpace rollback %s to revision %d (%s %s)", args[0], target.N, target.Revision.Short(), target.Revision.Subject)
			h, err := sources.Revert(c.dir, commits, msg)
			if err != nil {
				return err
			}
			return c.done(cmd, h, fmt.Sprintf("rollback %s to revision %d", args[0], target.N))
		},
	}
	c.add(cmd)
	r.kube.add(cmd.Flags())
	cmd.Flags().StringVar(&r.stateNS, "state-namespace", state.DefaultNamespace, "namespace holding gitpace's state")
	r.addAgent(cmd)
	cmd.Flags().IntVar(&to, "to-revision", 0, "history revision to return to (default: the one before the newest)")
	return cmd
}

func rollbackTarget(hist []state.Entry, to int) (state.Entry, error) {
	if to == 0 {
		if len(hist) < 2 {
			return state.Entry{}, fmt.Errorf("no earlier revision to roll back to")
		}
		return hist[len(hist)-2], nil
	}
	for _, e := range hist {
		if e.N == to {
			return e, nil
		}
	}
	return state.Entry{}, fmt.Errorf("no revision %d in history", to)
}

func orAll(app string) string {
	if app == "" {
		return "all apps"
	}
	return app
}
