package main_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitpace/gitpace/internal/testenv"
)

// gitpaceBin is the binary under test, built once by TestMain.
var gitpaceBin string

// binPrefix names the temporary directories holding gitpaceBin; the pid
// that follows lets a later run remove the ones whose process is gone
// (testenv.Main exits the process, so this run cannot remove its own).
const binPrefix = "gitpace-e2e-bin-"

func TestMain(m *testing.M) {
	flag.Parse()
	// These tests wait on pods and clocks, not on the CPU: run them all at
	// once unless -parallel says otherwise.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "16")
	}
	bin, err := buildGitpace()
	if err != nil {
		fmt.Fprintln(os.Stderr, "building gitpace:", err)
		os.Exit(1)
	}
	gitpaceBin = bin
	testenv.Main(m)
}

// buildGitpace builds the real binary with the go tool into a fresh
// temporary directory, after removing those left by finished runs.
func buildGitpace() (string, error) {
	if old, _ := filepath.Glob(filepath.Join(os.TempDir(), binPrefix+"*")); len(old) > 0 {
		for _, d := range old {
			pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(d), binPrefix), "-", 2)[0])
			if err != nil || pid == os.Getpid() {
				continue
			}
			if p, err := os.FindProcess(pid); err != nil || p.Signal(syscall.Signal(0)) != nil {
				_ = os.RemoveAll(d)
			}
		}
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", binPrefix, os.Getpid()))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gitpace")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, "github.com/gitpace/gitpace/cmd/gitpace").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "built %s in %s\n", bin, time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// syncBuffer collects output safely; see testenv.Buffer.
type syncBuffer = testenv.Buffer

// agentProc is one `gitpace` process.
type agentProc struct {
	label          string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{} // closed when the process has exited
	waitErr        error
}

// startAgent starts gitpace with args. When the test ends the process is
// stopped (if still running) and, if the test failed, its output logged.
// Call it after testenv.Namespace so that it stops before the namespaces go.
func startAgent(t *testing.T, label string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{label: label, done: make(chan struct{})}
	p.cmd = exec.Command(gitpaceBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s gitpace: %v", label, err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s gitpace (pid %d, %v) stdout:\n%s\nstderr:\n%s", p.label, p.cmd.Process.Pid, p.waitErr, p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *agentProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("killing %s gitpace: %v", p.label, err)
	}
	<-p.done
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s gitpace did not die of SIGKILL: %v", p.label, p.waitErr)
	}
}

// stop ends a process still running: SIGTERM, then SIGKILL after 10 s.
func (p *agentProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// alive returns a context that also ends, with the exit as its cause, if
// the process exits: the agent never exits by itself.
func (p *agentProc) alive(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-p.done:
			cancel(fmt.Errorf("%s gitpace exited by itself: %v\nstderr:\n%s", p.label, p.waitErr, p.stderr.String()))
		case <-ctx.Done():
		}
	}()
	return ctx
}

// runArgs are the flags of `gitpace run` for a test's repository and namespaces.
func runArgs(repo, ns, stateNS string) []string {
	return []string{"run", "--repo", repo, "--path", "apps", "--kubeconfig", testenv.Kubeconfig(),
		"--state-namespace", stateNS, "--default-namespace", ns, "--listen", "", "--interval", "1s", "--log-level", "debug"}
}

// within returns a context that ends after d or with the test.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeoutCause(context.Background(), d, fmt.Errorf("timed out after %s", d))
	t.Cleanup(cancel)
	return ctx
}
