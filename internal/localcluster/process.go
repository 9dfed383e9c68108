package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one running piece of the control plane, as recorded in the
// state file so that another process (make cluster-down) can stop exactly it.
type process struct {
	Name   string   `json:"name"`
	Binary string   `json:"binary"` // absolute path of the executable
	Args   []string `json:"args"`
	PID    int      `json:"pid"`
	Log    string   `json:"log"`

	exited chan error // non-nil only in the process that started it
}

// start launches p in its own process group (so an interrupted `make` does
// not take the cluster with it), appending output to p.Log.
func (p *process) start() error {
	lf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.Binary, p.Args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	p.PID = cmd.Process.Pid
	p.exited = make(chan error, 1)
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.exited <- err
	}()
	return nil
}

// failed reports, without blocking, whether p has exited since start; the
// error names the process and its log file and quotes the log's tail.
func (p *process) failed() error {
	if p.exited == nil {
		if !p.alive() {
			return p.crashError(errors.New("not running"))
		}
		return nil
	}
	select {
	case err := <-p.exited:
		p.exited = nil
		if err == nil {
			err = errors.New("exited with status 0")
		}
		return p.crashError(err)
	default:
		return nil
	}
}

func (p *process) crashError(err error) error {
	return fmt.Errorf("%s stopped (%v); see %s:\n%s", p.Name, err, p.Log, tail(p.Log, 12))
}

// alive reports whether p.PID is still the executable we started: a PID file
// never makes us signal an unrelated process that reused the number.
func (p *process) alive() bool {
	if p.PID <= 0 {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	want, _ := filepath.EvalSymlinks(p.Binary)
	if want == "" {
		want = p.Binary
	}
	if exe != want && exe != p.Binary {
		return false
	}
	// A zombie (exited, not yet reaped) is not alive.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// stop sends SIGTERM, waits up to grace for the exit, then SIGKILLs.
func (p *process) stop(grace time.Duration) {
	if !p.alive() {
		return
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if p.exited != nil {
			select {
			case <-p.exited:
				p.exited = nil
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if !p.alive() {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling another process's exit: no event to wait on
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	if p.exited != nil {
		<-p.exited
		p.exited = nil
	}
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
