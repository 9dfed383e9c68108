package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

//go:embed stages/*.yaml
var stageFiles embed.FS

// Controllers are the kube-controller-manager controllers the local control
// plane runs (--controllers): what Deployments, ReplicaSets, StatefulSets,
// DaemonSets and Jobs need to roll out on their own controllers, plus the
// garbage collector, namespace deletion, service accounts (pods need one),
// node lifecycle (untaints the fake nodes) and pod GC.
var Controllers = []string{
	"deployment", "replicaset", "statefulset", "daemonset", "job",
	"garbagecollector", "namespace", "serviceaccount", "serviceaccount-token", "nodelifecycle", "podgc",
}

// NeverReadyLabel on a pod (any value) keeps it Running but never Ready.
const NeverReadyLabel = "gitpace.dev/never-ready"

// ReadyDelayAnnotation on a pod overrides the cluster's default readiness delay.
const ReadyDelayAnnotation = "pod-ready.stage.kwok.x-k8s.io/delay"

// start brings up every process in order, recording each in the state file as
// soon as it runs so that a failure part-way can be cleaned up.
func start(ctx context.Context, opts Options) (*Cluster, error) {
	t0 := time.Now()
	_ = os.RemoveAll(opts.Dir)
	if err := os.MkdirAll(filepath.Join(opts.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	p, err := writePKI(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("writing certificates: %w", err)
	}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Kubeconfig: filepath.Join(opts.Dir, "kubeconfig"),
		Dir:        opts.Dir,
		Nodes:      opts.Nodes,
		Ports:      Ports{ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]},
		opts:       opts,
	}
	if err := writeKubeconfig(c.Kubeconfig, fmt.Sprintf("https://127.0.0.1:%d", c.Ports.APIServer), p); err != nil {
		return nil, err
	}
	stages, err := stageConfig(opts.PodReadyDelay)
	if err != nil {
		return nil, err
	}
	stagesFile := filepath.Join(opts.Dir, "kwok-stages.yaml")
	if err := os.WriteFile(stagesFile, stages, 0o644); err != nil {
		return nil, err
	}

	bin := func(n string) string { return filepath.Join(opts.BinDir, n) }
	logf := func(n string) string { return filepath.Join(opts.Dir, "logs", n+".log") }
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdPeer)
	procs := []*process{
		{Name: "etcd", Args: []string{
			"--name=default", "--data-dir=" + filepath.Join(opts.Dir, "etcd"),
			"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=default=" + peerURL, "--unsafe-no-fsync=true",
			"--listen-metrics-urls=", "--log-level=warn",
		}},
		{Name: "kube-apiserver", Args: []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(c.Ports.APIServer),
			"--endpoint-reconciler-type=none",
			"--tls-cert-file=" + p.ServerCert, "--tls-private-key-file=" + p.ServerKey,
			"--client-ca-file=" + p.CACert,
			"--service-account-key-file=" + p.SAPub,
			"--service-account-signing-key-file=" + p.SAKey,
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-cluster-ip-range=10.0.0.0/24",
			"--authorization-mode=RBAC",
			"--allow-privileged=true",
			"--v=1",
		}},
		{Name: "kube-controller-manager", Args: []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig,
			// job, statefulset, daemonset: gitpace follows those rollouts
			// and their health (kstatus); a Job's pods are completed by
			// kwok's pod-complete stage.
			"--controllers=" + strings.Join(Controllers, ","),
			"--leader-elect=false",
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(c.Ports.ControllerManager),
			"--service-account-private-key-file=" + p.SAKey, "--root-ca-file=" + p.CACert,
			"--use-service-account-credentials=false",
			"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
			"--concurrent-statefulset-syncs=10", "--concurrent-daemonset-syncs=10", "--concurrent-job-syncs=10",
			"--v=1",
		}},
		{Name: "kube-scheduler", Args: []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig,
			"--leader-elect=false",
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(c.Ports.Scheduler),
			"--v=1",
		}},
		{Name: "kwok", Args: []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--config=" + stagesFile,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			"--server-address=127.0.0.1:" + strconv.Itoa(c.Ports.Kwok),
		}},
	}
	portOf := map[string]int{"etcd": c.Ports.EtcdClient, "kube-apiserver": c.Ports.APIServer,
		"kube-controller-manager": c.Ports.ControllerManager, "kube-scheduler": c.Ports.Scheduler, "kwok": c.Ports.Kwok}
	for _, pr := range procs {
		pr.Binary, pr.Log = bin(pr.Name), logf(pr.Name)
		if err := checkPortFree(pr.Name, portOf[pr.Name]); err != nil {
			return c, err
		}
		fmt.Fprintf(opts.Progress, "starting %-24s log %s\n", pr.Name, pr.Log)
		if err := pr.start(); err != nil {
			return c, err
		}
		c.Processes = append(c.Processes, pr)
		if err := c.save(); err != nil {
			return c, err
		}
		if err := c.waitReady(ctx, pr); err != nil {
			return c, err
		}
	}
	if err := c.registerNodes(ctx); err != nil {
		return c, err
	}
	if err := c.waitPodReady(ctx); err != nil {
		return c, err
	}
	fmt.Fprintf(opts.Progress, "control plane ready in %s (%d fake nodes)\n", time.Since(t0).Round(100*time.Millisecond), opts.Nodes)
	return c, nil
}

// waitReady waits until the piece p serves, failing fast (naming p and its
// log) if it exits first, and after two minutes in any case.
func (c *Cluster) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	check := func(context.Context) error { return nil }
	switch p.Name {
	case "etcd":
		check = func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/health", c.Ports.EtcdClient))
		}
	case "kube-apiserver":
		check = c.readyz
	case "kube-controller-manager", "kube-scheduler":
		port := c.Ports.ControllerManager
		if p.Name == "kube-scheduler" {
			port = c.Ports.Scheduler
		}
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		check = func(ctx context.Context) error {
			return httpOK(ctx, insecure, fmt.Sprintf("https://127.0.0.1:%d/healthz", port))
		}
	}
	err := poll(ctx, p.Name, 100*time.Millisecond, func() (bool, error) {
		if err := p.failed(); err != nil {
			return false, err
		}
		return check(ctx) == nil, nil
	})
	if ctx.Err() != nil && err != nil {
		// Up but never ready: the log says why.
		return fmt.Errorf("%w; see %s:\n%s", err, p.Log, tail(p.Log, 12))
	}
	return err
}

// readyz asks the API server's /readyz with the admin client certificate.
func (c *Cluster) readyz(ctx context.Context) error {
	p := pkiIn(c.Dir)
	cert, err := tls.LoadX509KeyPair(p.AdminCert, p.AdminKey)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cl := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool}}}
	return httpOK(ctx, cl, fmt.Sprintf("https://127.0.0.1:%d/readyz", c.Ports.APIServer))
}

func httpOK(ctx context.Context, cl *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// poll calls f every interval until it reports done, returns an error, or
// ctx ends; the timeout error names what was awaited.
func poll(ctx context.Context, what string, interval time.Duration, f func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// stageConfig renders kwok's Stage documents with the default readiness delay.
func stageConfig(readyDelay time.Duration) ([]byte, error) {
	entries, err := stageFiles.ReadDir("stages")
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var docs []string
	for _, e := range entries {
		b, err := stageFiles.ReadFile("stages/" + e.Name())
		if err != nil {
			return nil, err
		}
		docs = append(docs, strings.ReplaceAll(string(b), "__READY_DELAY_MS__", strconv.FormatInt(readyDelay.Milliseconds(), 10)))
	}
	return []byte(strings.Join(docs, "\n---\n")), nil
}

// registerNodes creates the fake nodes kwok manages and waits until the node
// lifecycle controller has made them schedulable.
func (c *Cluster) registerNodes(ctx context.Context) error {
	cs, err := c.client()
	if err != nil {
		return err
	}
	for i := 0; i < c.Nodes; i++ {
		name := fmt.Sprintf("gitpace-node-%d", i)
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels: map[string]string{
					"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
					"type": "kwok", "topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%3),
				},
			},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("1000"), corev1.ResourceMemory: resource.MustParse("4Ti"),
					corev1.ResourcePods: resource.MustParse("1000"),
				},
				Capacity: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("1000"), corev1.ResourceMemory: resource.MustParse("4Ti"),
					corev1.ResourcePods: resource.MustParse("1000"),
				},
			},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("registering fake node %s: %w", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return poll(ctx, "fake nodes to become Ready and untainted", 200*time.Millisecond, func() (bool, error) {
		if err := c.anyFailed(); err != nil {
			return false, err
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, n := range nodes.Items {
			if nodeReady(&n) && len(n.Spec.Taints) == 0 {
				ready++
			}
		}
		return ready >= c.Nodes, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Cluster) anyFailed() error {
	for _, p := range c.Processes {
		if err := p.failed(); err != nil {
			return err
		}
	}
	return nil
}

// waitPodReady proves the whole chain (admission, service accounts,
// scheduler, kwok) by running one pod to Ready, then deletes it.
func (c *Cluster) waitPodReady(ctx context.Context) error {
	cs, err := c.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gitpace-probe", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "probe"}}},
	}
	err = poll(ctx, "a pod to be admitted (service account \"default\")", 200*time.Millisecond, func() (bool, error) {
		if err := c.anyFailed(); err != nil {
			return false, err
		}
		_, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), nil
	})
	if err != nil {
		return err
	}
	err = poll(ctx, "the probe pod to be scheduled and Ready", 200*time.Millisecond, func() (bool, error) {
		if err := c.anyFailed(); err != nil {
			return false, err
		}
		p, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	zero := int64(0)
	return cs.CoreV1().Pods("default").Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}

func (c *Cluster) client() (kubernetes.Interface, error) {
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
