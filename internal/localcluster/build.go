package localcluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// KubernetesVersion is the version of kube-apiserver, kube-controller-manager,
// kube-scheduler and kubectl the local control plane runs.
const KubernetesVersion = "v1.37.2"

// binary says how one executable of the control plane is built: in which
// helper module (under hack/tools) and from which package.
type binary struct {
	name    string
	module  string // directory under hack/tools holding its go.mod
	pkg     string
	ldflags string
}

var kubeLDFlags = "-X k8s.io/component-base/version.gitVersion=" + KubernetesVersion +
	" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"

// binaries in build order: the slowest first, so progress is honest early.
var binaries = []binary{
	{"kube-apiserver", "kube", "k8s.io/kubernetes/cmd/kube-apiserver", kubeLDFlags},
	{"kube-controller-manager", "kube", "k8s.io/kubernetes/cmd/kube-controller-manager", kubeLDFlags},
	{"kube-scheduler", "kube", "k8s.io/kubernetes/cmd/kube-scheduler", kubeLDFlags},
	{"kubectl", "kube", "k8s.io/kubernetes/cmd/kubectl", kubeLDFlags},
	{"etcd", "etcd", ".", ""},
	{"kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok", ""},
}

// Build compiles every control-plane binary missing from opts.BinDir with the
// go command, from the helper modules under opts.ToolsDir. Present binaries
// are kept (delete one to rebuild it). Progress goes to opts.Progress.
func Build(ctx context.Context, opts Options) error {
	opts = opts.withDefaults()
	if err := os.MkdirAll(opts.BinDir, 0o755); err != nil {
		return err
	}
	var missing []binary
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(opts.BinDir, b.name)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building the local control plane needs the go command: %w", err)
	}
	for i, b := range missing {
		start := time.Now()
		fmt.Fprintf(opts.Progress, "[%d/%d] building %s (cold builds take minutes; the Go build cache makes rebuilds fast)...\n", i+1, len(missing), b.name)
		out := filepath.Join(opts.BinDir, b.name)
		logFile := filepath.Join(opts.BinDir, b.name+".build.log")
		args := []string{"build", "-o", out + ".tmp"}
		if b.ldflags != "" {
			args = append(args, "-ldflags", b.ldflags)
		}
		args = append(args, b.pkg)
		cmd := exec.CommandContext(ctx, gobin, args...)
		cmd.Dir = filepath.Join(opts.ToolsDir, b.module)
		lf, err := os.Create(logFile)
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = lf, lf
		done := make(chan struct{})
		go tick(opts.Progress, b.name, start, done)
		err = cmd.Run()
		close(done)
		lf.Close()
		if err != nil {
			return fmt.Errorf("building %s failed (%v); see %s:\n%s", b.name, err, logFile, tail(logFile, 12))
		}
		if err := os.Rename(out+".tmp", out); err != nil {
			return err
		}
		fmt.Fprintf(opts.Progress, "[%d/%d] built %s in %s\n", i+1, len(missing), b.name, time.Since(start).Round(time.Second))
	}
	return nil
}

// tick prints a heartbeat every 30s so a long cold build is visibly alive.
func tick(w io.Writer, name string, start time.Time, done <-chan struct{}) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fmt.Fprintf(w, "      still building %s (%s)\n", name, time.Since(start).Round(time.Second))
		}
	}
}
