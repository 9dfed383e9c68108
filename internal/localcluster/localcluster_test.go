package localcluster

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUpTwiceThenDown starts a private control plane, proves a second Up
// reuses it (same kubeconfig, same PIDs), then that Down leaves none of its
// processes running.
func TestUpTwiceThenDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := Options{Dir: t.TempDir(), Nodes: 1}
	c1, err := Up(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Stop()
	c2, err := Up(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c1.Kubeconfig != c2.Kubeconfig {
		t.Errorf("second Up changed the kubeconfig: %s vs %s", c1.Kubeconfig, c2.Kubeconfig)
	}
	if len(c2.Processes) != 5 {
		t.Fatalf("recorded %d processes, want 5", len(c2.Processes))
	}
	for i, p := range c2.Processes {
		if p.PID != c1.Processes[i].PID {
			t.Errorf("%s restarted by the second Up: pid %d -> %d", p.Name, c1.Processes[i].PID, p.PID)
		}
	}
	if err := Down(opts); err != nil {
		t.Fatal(err)
	}
	for _, p := range c1.Processes {
		if p.alive() {
			t.Errorf("%s (pid %d) still running after Down", p.Name, p.PID)
		}
	}
}

func TestPortInUseNamesThePiece(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	err = checkPortFree("kube-apiserver", port)
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("error = %v, want one naming kube-apiserver and port %d", err, port)
	}
}

func TestCrashNamesProcessAndLog(t *testing.T) {
	dir := t.TempDir()
	p := &process{Name: "etcd", Binary: "/bin/sh", Args: []string{"-c", "echo boom-marker; exit 3"}, Log: dir + "/etcd.log"}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := poll(ctx, "exit", 10*time.Millisecond, func() (bool, error) { return false, p.failed() })
	if err == nil || !strings.Contains(err.Error(), "etcd stopped") || !strings.Contains(err.Error(), p.Log) || !strings.Contains(err.Error(), "boom-marker") {
		t.Fatalf("error = %v, want one naming etcd, its log and quoting it", err)
	}
}

func TestStageConfigDefaultDelay(t *testing.T) {
	b, err := stageConfig(1500 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "__READY_DELAY_MS__") || !strings.Contains(s, "durationMilliseconds: 1500") {
		t.Fatal("ready delay not rendered into the pod-ready stage")
	}
	if !strings.Contains(s, "name: pod-never-ready") {
		t.Fatal("never-ready stage missing")
	}
	if !strings.Contains(s, "name: pod-complete") {
		t.Fatal("pod-complete stage missing: Jobs would never complete")
	}
}
