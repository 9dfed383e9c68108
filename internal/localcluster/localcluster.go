// Package localcluster builds and runs a real Kubernetes control plane on
// loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok as the fake kubelet, all built from the Go module proxy by helper
// modules under hack/tools. `make cluster` and the integration tests
// (package testenv) share this code.
//
// Every process is started by Up and recorded in a state file; Down stops
// exactly those processes (by PID, checked against the executable) and
// removes the state directory.
package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure a local control plane. The zero value is usable from any
// directory inside the gitpace repository.
type Options struct {
	// Dir holds certificates, etcd data, logs, PID/state file and the
	// kubeconfig. Default: <repo>/.cache/cluster.
	Dir string
	// BinDir holds the built binaries. Default: <repo>/.cache/bin, or
	// $GITPACE_BIN_DIR.
	BinDir string
	// ToolsDir holds the helper modules that build them. Default: <repo>/hack/tools.
	ToolsDir string
	// Nodes is the number of fake nodes registered. Default 3.
	Nodes int
	// PodReadyDelay is how long a pod takes from Running to Ready unless its
	// annotation pod-ready.stage.kwok.x-k8s.io/delay says otherwise. Default 1s.
	PodReadyDelay time.Duration
	// Progress receives human-readable progress lines. Default: io.Discard.
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	root := RepoRoot()
	if o.Dir == "" {
		o.Dir = filepath.Join(root, ".cache", "cluster")
	}
	if o.BinDir == "" {
		o.BinDir = os.Getenv("GITPACE_BIN_DIR")
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(root, ".cache", "bin")
	}
	if o.ToolsDir == "" {
		o.ToolsDir = filepath.Join(root, "hack", "tools")
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.PodReadyDelay <= 0 {
		o.PodReadyDelay = time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	o.Dir, _ = filepath.Abs(o.Dir)
	o.BinDir, _ = filepath.Abs(o.BinDir)
	return o
}

// RepoRoot finds the gitpace repository root by walking up from the working
// directory to the directory holding hack/tools.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "hack", "tools", "kube", "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// Cluster is a running local control plane.
type Cluster struct {
	// Kubeconfig is the absolute path of an admin kubeconfig.
	Kubeconfig string `json:"kubeconfig"`
	Dir        string `json:"dir"`
	Ports      Ports  `json:"ports"`
	Nodes      int    `json:"nodes"`

	Processes []*process `json:"processes"`
	opts      Options
}

// Ports are the loopback ports the processes listen on, fixed at first start.
type Ports struct {
	EtcdClient, EtcdPeer, APIServer, ControllerManager, Scheduler, Kwok int
}

func stateFile(dir string) string { return filepath.Join(dir, "cluster.json") }

// Up starts the control plane described by opts, building missing binaries
// first. When it is already running (every recorded process alive and the
// API server ready) it returns at once. A half-dead cluster is stopped and
// started afresh.
func Up(ctx context.Context, opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	if c, err := load(opts); err == nil {
		if c.healthy(ctx) == nil {
			fmt.Fprintf(opts.Progress, "control plane already running (%s)\n", c.Dir)
			return c, nil
		}
		fmt.Fprintf(opts.Progress, "control plane in %s is not healthy; restarting it\n", c.Dir)
		c.Stop()
	}
	if err := Build(ctx, opts); err != nil {
		return nil, err
	}
	c, err := start(ctx, opts)
	if err != nil {
		if c != nil {
			c.Stop()
		}
		return nil, err
	}
	return c, nil
}

// Down stops the control plane recorded in opts.Dir, if any, and removes its
// state. Only processes it started are signalled.
func Down(opts Options) error {
	opts = opts.withDefaults()
	c, err := load(opts)
	if errors.Is(err, os.ErrNotExist) {
		return os.RemoveAll(opts.Dir)
	}
	if err != nil {
		return err
	}
	c.Stop()
	return nil
}

// Stop stops every process of c (newest first) and removes c.Dir.
func (c *Cluster) Stop() {
	for i := len(c.Processes) - 1; i >= 0; i-- {
		c.Processes[i].stop(10 * time.Second)
	}
	_ = os.RemoveAll(c.Dir)
}

// RestConfig returns a client configuration for the admin user.
func (c *Cluster) RestConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
}

// StopProcess stops one named process (e.g. "kube-apiserver"), leaving the
// rest running; StartProcess starts it again with the same arguments. Tests
// use them to prove that gitpace survives an API server restart.
func (c *Cluster) StopProcess(name string) error {
	p := c.process(name)
	if p == nil {
		return fmt.Errorf("no process %q in this cluster", name)
	}
	p.stop(10 * time.Second)
	return nil
}

// StartProcess restarts a process stopped by StopProcess and waits until the
// API server is ready again.
func (c *Cluster) StartProcess(ctx context.Context, name string) error {
	p := c.process(name)
	if p == nil {
		return fmt.Errorf("no process %q in this cluster", name)
	}
	if err := p.start(); err != nil {
		return err
	}
	if err := c.save(); err != nil {
		return err
	}
	return c.waitReady(ctx, p)
}

func (c *Cluster) process(name string) *process {
	for _, p := range c.Processes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func load(opts Options) (*Cluster, error) {
	b, err := os.ReadFile(stateFile(opts.Dir))
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("reading %s: %w", stateFile(opts.Dir), err)
	}
	return c, nil
}

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := stateFile(c.Dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, stateFile(c.Dir))
}

// healthy: every process alive and the API server answers /readyz.
func (c *Cluster) healthy(ctx context.Context) error {
	for _, p := range c.Processes {
		if !p.alive() {
			return fmt.Errorf("%s (pid %d) is not running", p.Name, p.PID)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.readyz(ctx)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// checkPortFree fails with a message naming the piece when its port is taken.
func checkPortFree(name string, port int) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("%s cannot start: port %d on 127.0.0.1 is in use (%v)", name, port, err)
	}
	return l.Close()
}

func writeKubeconfig(file, server string, p pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["gitpace-local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: p.CACert}
	cfg.AuthInfos["gitpace-admin"] = &clientcmdapi.AuthInfo{ClientCertificate: p.AdminCert, ClientKey: p.AdminKey}
	cfg.Contexts["gitpace-local"] = &clientcmdapi.Context{Cluster: "gitpace-local", AuthInfo: "gitpace-admin", Namespace: "default"}
	cfg.CurrentContext = "gitpace-local"
	return clientcmd.WriteToFile(*cfg, file)
}
