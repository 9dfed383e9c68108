// Command cluster builds, starts and stops gitpace's local Kubernetes control
// plane (see internal/localcluster). The Makefile's `cluster` and
// `cluster-down` targets run it.
//
//	go run ./hack/cluster up   [--nodes 3] [--pod-ready-delay 1s] [--dir D]
//	go run ./hack/cluster down [--dir D]
//	go run ./hack/cluster build
//
// `up` ends with the line `export KUBECONFIG=<absolute path>`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gitpace/gitpace/internal/localcluster"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cluster up|down|build [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var opts localcluster.Options
	fs.StringVar(&opts.Dir, "dir", "", "state directory (default <repo>/.cache/cluster)")
	fs.IntVar(&opts.Nodes, "nodes", 3, "number of fake nodes")
	fs.DurationVar(&opts.PodReadyDelay, "pod-ready-delay", localclusterDefaultDelay(), "default delay before a pod becomes Ready ($GITPACE_POD_READY_DELAY)")
	_ = fs.Parse(os.Args[2:])
	opts.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		var c *localcluster.Cluster
		c, err = localcluster.Up(ctx, opts)
		if err == nil {
			fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig)
		}
	case "down":
		err = localcluster.Down(opts)
		if err == nil {
			fmt.Fprintln(os.Stderr, "control plane stopped")
		}
	case "build":
		err = localcluster.Build(ctx, opts)
	default:
		err = fmt.Errorf("unknown command %q (want up, down or build)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// localclusterDefaultDelay reads $GITPACE_POD_READY_DELAY, default 1s.
func localclusterDefaultDelay() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("GITPACE_POD_READY_DELAY")); err == nil {
		return d
	}
	return time.Second
}
