package main

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "gitpace",
		Short: "GitOps reconciliation with paced rolling updates",
		Long: `gitpace pulls a git repository of Kubernetes and BCS v4 manifests, diffs it
against the live cluster and applies the changes as paced rolling updates.
Git is the only control surface: commit to roll out, commit PAUSE to pause,
git revert to roll back.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand(), newRunCommand(), newStatusCommand(), newHistoryCommand(), newDiffCommand(), newPlanCommand(), newRenderCommand(),
		newPauseCommand(), newResumeCommand(), newRollbackCommand(), newPromoteCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the gitpace version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "gitpace %s\n", buildVersion())
		},
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// exitCoder is an error that carries the process exit code (e.g. `diff`
// exits 2 when there are changes).
type exitCoder interface {
	error
	ExitCode() int
}

type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

func asExitCoder(err error, target *exitCoder) bool { return errors.As(err, target) }
