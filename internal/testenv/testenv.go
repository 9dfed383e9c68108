// Package testenv gives integration tests a real control plane: one per
// `go test` process (started in TestMain), or the running one named by
// $GITPACE_TEST_KUBECONFIG (what `make test` does). Every test works in a
// namespace of its own.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitpace/gitpace/internal/localcluster"
)

// EnvKubeconfig names a running control plane for tests to reuse.
const EnvKubeconfig = "GITPACE_TEST_KUBECONFIG"

var (
	kubeconfig string
	restConfig *rest.Config
	nsCounter  atomic.Int64
)

// Main runs the package's tests against a control plane, starting a private
// one when $GITPACE_TEST_KUBECONFIG is empty and stopping it afterwards.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	kubeconfig = os.Getenv(EnvKubeconfig)
	if kubeconfig == "" {
		dir, err := os.MkdirTemp("", "gitpace-testenv-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		c, err := localcluster.Up(ctx, localcluster.Options{Dir: dir, Progress: os.Stderr})
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv: starting the control plane:", err)
			return 1
		}
		defer c.Stop()
		kubeconfig = c.Kubeconfig
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: kubeconfig %s: %v\n", kubeconfig, err)
		return 1
	}
	// A stale $GITPACE_TEST_KUBECONFIG (cluster stopped) would otherwise
	// fail every test with "connection refused" and no hint why.
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err == nil {
		_, err = dc.ServerVersion()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: the control plane of %s=%s is unreachable (%v); run make cluster, or unset it to start a private one\n", EnvKubeconfig, kubeconfig, err)
		return 1
	}
	cfg.QPS, cfg.Burst = 200, 400
	restConfig = cfg
	return m.Run()
}

// Kubeconfig is the path of the admin kubeconfig of the shared control plane.
func Kubeconfig() string { return kubeconfig }

// Config returns a copy of the admin client configuration.
func Config(t testing.TB) *rest.Config {
	t.Helper()
	if restConfig == nil {
		t.Fatal("testenv: no control plane; call testenv.Main from TestMain")
	}
	return rest.CopyConfig(restConfig)
}

// Client returns a typed clientset for the shared control plane.
func Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Namespace creates a fresh namespace named after the test, waits until
// its ServiceAccount "default" exists, and deletes it when the test ends.
//
// The serviceaccount controller creates that ServiceAccount shortly after
// the namespace; until then the ServiceAccount admission plugin refuses
// pods (it looks the account up 10 times, 100-200ms apart, then fails
// with "serviceaccount \"default\" not found"), and a controller creating
// them backs off. A test that creates pods at once would race it.
func Namespace(t testing.TB) string {
	t.Helper()
	cs := Client(t)
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("%s-%d-%d", strings.Trim(name, "-"), os.Getpid()%100000, nsCounter.Add(1))
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return name
		}
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("namespace %s: ServiceAccount default: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond) // polling for the serviceaccount controller
	}
}

// Private starts a control plane of the test's own (for tests that stop and
// restart the API server) and stops it when the test ends.
func Private(t testing.TB) *localcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := localcluster.Up(ctx, localcluster.Options{Dir: t.TempDir(), Nodes: 1})
	if err != nil {
		t.Fatalf("starting a private control plane: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}
