package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/state"
)

type runOptions struct {
	src        sourceFlags
	kube       kubeFlags
	interval   time.Duration
	resync     time.Duration
	once       bool
	stateNS    string
	defaultNS  string
	listen     string
	logFormat  string
	logLevel   string
	verifyKeys string
	bcsStart   time.Duration
	bcsDelete  time.Duration
	elect      bool
	name       string
	allowEmpty bool
	election   agent.Election
	takeover   []string
	workers    int
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run --repo URL [--branch main] [--path DIR]",
		Short: "Run the agent: reconcile the cluster with a git branch, continuously or --once",
		Long: `Run pulls the branch, and for every app (a directory under --path holding
manifests) diffs it against the cluster and applies it with server-side
apply; native Deployments roll out through Kubernetes' own controller.
A local repository is watched for commits; remotes are polled every
--interval, and POST /hooks/git on --listen polls at once.

With --once it reconciles once and exits 0 when in sync, 1 on error.

With --leader-elect, agents sharing --state-namespace elect a leader with a
Lease; only the leader reconciles. A leader that loses the lease exits 1
(to be restarted as a standby); on SIGTERM it stops, then releases the
lease, so a standby takes over at once. --once does not elect.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	fs := cmd.Flags()
	o.src.add(fs)
	o.kube.add(fs)
	fs.DurationVar(&o.interval, "interval", 30*time.Second, "how often to poll the git remote")
	fs.DurationVar(&o.resync, "resync", 10*time.Minute, "how often to diff every app against the cluster even when git did not move")
	fs.BoolVar(&o.once, "once", false, "reconcile once and exit (0 in sync, 1 on error)")
	fs.StringVar(&o.stateNS, "state-namespace", state.DefaultNamespace, "namespace holding gitpace's state (created if missing)")
	fs.StringVar(&o.defaultNS, "default-namespace", "default", "namespace for namespaced objects that name none")
	fs.StringVar(&o.listen, "listen", ":9090", "address for /metrics, /healthz and POST /hooks/git (\"\" disables)")
	fs.StringVar(&o.logFormat, "log-format", "text", "structured log format: text or json (logs go to stderr)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.verifyKeys, "verify-signatures", "", "file of trusted keys (armored OpenPGP public keys; SSH public keys one per line): apply only revisions whose head commit one of them signed")
	fs.DurationVar(&o.bcsStart, "bcs-start-timeout", paced.DefaultStartTimeout, "BCS rollouts: a cycle's start phase (new pods becoming Ready) running longer suspends the rollout (UpdateSuspend, app Failed)")
	fs.DurationVar(&o.bcsDelete, "bcs-delete-timeout", paced.DefaultDeleteTimeout, "BCS rollouts: a cycle's delete phase (old pods going away) running longer suspends the rollout")
	fs.StringVar(&o.name, "name", "", "the agent's identity, recorded on every object it applies (label "+appliers.AgentLabel+"): prune deletes only objects that name it (default: <repo base name>-<hash of --repo, --branch, --path>)")
	fs.BoolVar(&o.allowEmpty, "allow-empty", false, "apply a revision that holds no app under --path, or that keeps none of the agent's apps and would prune every object it manages (held otherwise)")
	fs.BoolVar(&o.elect, "leader-elect", false, "elect a leader among agents sharing --state-namespace (Lease "+agent.LeaseName+"); only the leader reconciles, the others stand by")
	fs.DurationVar(&o.election.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a standby waits before taking over a lease that is not renewed")
	fs.DurationVar(&o.election.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader tries to renew before it gives up (and exits)")
	fs.DurationVar(&o.election.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "how often to try to acquire or renew the lease")
	fs.IntVar(&o.workers, "concurrency", agent.DefaultConcurrency, "how many apps are reconciled at once (one app is never reconciled twice at once)")
	fs.StringSliceVar(&o.takeover, "takeover-managers", appliers.DefaultTakeoverManagers, "field managers whose fields gitpace takes over before applying, so that what git does not declare is removed (hand edits, kubectl-applied leftovers); never entries of the scale or status subresources")
	return cmd
}

func (o *runOptions) run(cmd *cobra.Command) error {
	log, err := newLogger(o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	klog.SetSlogLogger(log) // client-go's own lines (leader election, retries) in the same format
	src, err := o.src.source()
	if err != nil {
		return err
	}
	defer src.Close() // a temporary mirror goes with the process (--cache-dir keeps it)
	rc, err := o.kube.config()
	if err != nil {
		return err
	}
	var kr *policies.KeyRing
	if o.verifyKeys != "" {
		if kr, err = policies.LoadKeyRing(o.verifyKeys); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ag, err := agent.New(agent.Config{
		Name: o.name, AllowEmpty: o.allowEmpty,
		Source: src, Rest: rc, StateNamespace: o.stateNS, DefaultNamespace: o.defaultNS,
		Interval: o.interval, Resync: o.resync, KeyRing: kr,
		BCSStartTimeout: o.bcsStart, BCSDeleteTimeout: o.bcsDelete, TakeoverManagers: o.takeover, Concurrency: o.workers,
		Out: cmd.OutOrStdout(), Log: log, Metrics: agent.NewMetrics(reg),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.once {
		return ag.ReconcileAndReport(ctx)
	}
	if o.listen != "" {
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", o.listen, err)
		}
		srv := &http.Server{Handler: ag.Handler(reg), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		}()
		defer srv.Shutdown(context.Background())
		log.Info("serving /metrics, /healthz and POST /hooks/git", "addr", ln.Addr().String())
	}
	log.Info("gitpace agent starting", "agent", ag.Name(), "repo", o.src.cfg.URL, "branch", o.src.cfg.Branch, "path", o.src.cfg.Path, "interval", o.interval.String())
	if o.elect {
		return ag.RunElected(ctx, o.election)
	}
	return ag.Run(ctx)
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level: " + err.Error())
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, usageErr(fmt.Sprintf("--log-format must be text or json, not %q", format))
}
