package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitpace/gitpace/internal/localcluster"
	"github.com/gitpace/gitpace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// buildGitpace builds ./cmd/gitpace with the go tool into a temporary
// directory and returns the binary's path and how long the build took.
func buildGitpace(b *testing.B) (string, time.Duration) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "gitpace")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, "github.com/gitpace/gitpace/cmd/gitpace").CombinedOutput()
	if err != nil {
		b.Fatalf("go build ./cmd/gitpace: %v\n%s", err, out)
	}
	return bin, time.Since(start)
}

// findKubectl returns the kubectl that `make cluster` builds: in
// $GITPACE_BIN_DIR, else in .cache/bin of this checkout, else in .cache/bin
// of the checkout whose cluster $GITPACE_TEST_KUBECONFIG names (a worktree
// using another checkout's cluster), else on $PATH.
func findKubectl(b *testing.B) string {
	b.Helper()
	var tried []string
	try := func(dir string) string {
		if dir == "" {
			return ""
		}
		p := filepath.Join(dir, "kubectl")
		tried = append(tried, p)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
		return ""
	}
	for _, dir := range []string{
		os.Getenv("GITPACE_BIN_DIR"),
		filepath.Join(localcluster.RepoRoot(), ".cache", "bin"),
		filepath.Join(filepath.Dir(filepath.Dir(testenv.Kubeconfig())), "bin"),
	} {
		if p := try(dir); p != "" {
			return p
		}
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	b.Fatalf("no kubectl: looked at %s and on $PATH; `make cluster` builds it", strings.Join(tried, ", "))
	return ""
}

// proc is one process of a contestant (kubectl or gitpace).
type proc struct {
	label          string
	cmd            *exec.Cmd
	stdout, stderr testenv.Buffer
	start, end     time.Time
	done           chan struct{}
	err            error
	hwm            atomic.Int64 // bytes: the largest VmHWM read
}

// startProc starts bin with args and the environment extra added; the
// process is killed when the benchmark ends if it still runs.
func startProc(b *testing.B, label string, extra []string, bin string, args ...string) *proc {
	b.Helper()
	p := &proc{label: label, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), extra...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", label, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.end = time.Now()
		close(p.done)
	}()
	go p.sampleHWM()
	b.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to end and fails the benchmark, with the
// process's output, if it did not exit 0.
func (p *proc) wait(b *testing.B) {
	b.Helper()
	<-p.done
	if p.err != nil {
		b.Fatalf("%s: %v\nstdout (end):\n%s\nstderr (end):\n%s", p.label, p.err, tail(p.stdout.String()), tail(p.stderr.String()))
	}
}

// stop sends SIGTERM, waits up to a minute (then kills), and fails the
// benchmark if the process did not exit 0 on SIGTERM.
func (p *proc) stop(b *testing.B) {
	b.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		b.Fatalf("stopping %s: %v", p.label, err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
		b.Fatalf("%s did not stop within a minute of SIGTERM\nstderr (end):\n%s", p.label, tail(p.stderr.String()))
	}
	if p.err != nil {
		b.Fatalf("%s on SIGTERM: %v\nstderr (end):\n%s", p.label, p.err, tail(p.stderr.String()))
	}
}

// wall is the time from start to exit.
func (p *proc) wall() time.Duration { return p.end.Sub(p.start) }

// peakRSS is the process's peak resident set size in bytes (0 if never
// read): its VmHWM, the high-water mark of its memory since exec.
//
// Not its rusage's ru_maxrss: os/exec starts a process with
// clone(CLONE_VM|CLONE_VFORK), and on exec Linux records the high-water
// mark of the memory the child shared with its parent (this benchmark's,
// 70 MiB and more) in the child's maxrss (fs/exec.c, exec_mmap), so every
// child smaller than its parent reports the parent's figure.
func (p *proc) peakRSS() int64 { return p.hwm.Load() }

// sampleHWM reads VmHWM from /proc/PID/status every 10 ms until the
// process exits. VmHWM only grows, so the last read misses at most what
// the process's last 10 ms added.
func (p *proc) sampleHWM() {
	file := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(file); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					if kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil && kib*1024 > p.hwm.Load() {
						p.hwm.Store(kib * 1024)
					}
				}
			}
		}
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

// tail is the last 40 lines of s.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 40 {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-40)}, lines[len(lines)-40:]...)
	}
	return strings.Join(lines, "\n")
}
