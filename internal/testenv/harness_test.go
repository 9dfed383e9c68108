package testenv_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/internal/localcluster"
	"github.com/gitpace/gitpace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// applySeed server-side-applies one of the seed's Deployment manifests.
func applySeed(t *testing.T, cs kubernetes.Interface, ns, file string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "seed", file))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	force := true
	if _, err := cs.AppsV1().Deployments(ns).Patch(context.Background(), "test", types.ApplyPatchType, js,
		metav1.PatchOptions{FieldManager: "harness-test", Force: &force}); err != nil {
		t.Fatalf("applying %s: %v", file, err)
	}
}

func rolledOut(d *appsv1.Deployment) bool {
	want := *d.Spec.Replicas
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.Replicas == want && d.Status.AvailableReplicas == want
}

func waitRolledOut(t *testing.T, cs kubernetes.Interface, ns string) *appsv1.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=test"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if d, ok := ev.Object.(*appsv1.Deployment); ok && rolledOut(d) {
			return d
		}
	}
	t.Fatalf("deployment test in %s did not roll out: %v", ns, ctx.Err())
	return nil
}

// TestSeedRollingUpdateBounds applies the seed's K8S-scheme manifests
// (replicas 3, maxSurge 1, maxUnavailable 1) and proves, from a pod watch,
// that the real deployment controller keeps its bounds on this control plane.
func TestSeedRollingUpdateBounds(t *testing.T) {
	cs := testenv.Client(t)
	ns := testenv.Namespace(t)

	applySeed(t, cs, ns, "test1-1-0.yaml")
	waitRolledOut(t, cs, ns)

	pw := testenv.WatchDeploymentPods(t, cs, ns, "app=test")
	applySeed(t, cs, ns, "test1-1-1.yaml")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := pw.Until(ctx, "3 ready pods of v1.1.1 and no others", func(pods []corev1.Pod) bool {
		if len(pods) != 3 {
			return false
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image != "hub.docker.com:xxxx/xxxxxx:v1.1.1" || !testenv.PodReady(&p) {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	d := waitRolledOut(t, cs, ns)
	_, minReady := pw.Extremes()
	maxTotal, maxRaw, err := pw.Intended()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("observed %d pod events: max pods %d (%d counting pods of scaled-down ReplicaSets not yet deleted), min ready %d", pw.EventCount(), maxTotal, maxRaw, minReady)
	if maxTotal > 3+1 {
		t.Errorf("total pods reached %d, above replicas+maxSurge = 4", maxTotal)
	}
	if minReady < 3-1 {
		t.Errorf("ready pods fell to %d, below replicas-maxUnavailable = 2", minReady)
	}
	if d.Annotations["deployment.kubernetes.io/revision"] != "2" {
		t.Errorf("revision = %q, want 2", d.Annotations["deployment.kubernetes.io/revision"])
	}
	if got := d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort; got != 8888 {
		t.Errorf("port = %d, want 8888", got)
	}
}

// TestNeverReadyLabel proves the harness's failed-rollout convention: a pod
// labelled gitpace.dev/never-ready runs but never becomes Ready, while an
// unlabelled sibling does.
func TestNeverReadyLabel(t *testing.T) {
	cs := testenv.Client(t)
	ns := testenv.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mk := func(name string, labels map[string]string) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pw := testenv.WatchPods(t, cs, ns, "probe")
	mk("bad", map[string]string{"probe": "1", localcluster.NeverReadyLabel: "true"})
	mk("good", map[string]string{"probe": "1"})
	err := pw.Until(ctx, "good Ready and bad Running", func(pods []corev1.Pod) bool {
		phase := map[string]corev1.PodPhase{}
		ready := map[string]bool{}
		for _, p := range pods {
			phase[p.Name], ready[p.Name] = p.Status.Phase, testenv.PodReady(&p)
		}
		return ready["good"] && phase["bad"] == corev1.PodRunning
	})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := cs.CoreV1().Pods(ns).Get(ctx, "bad", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if testenv.PodReady(bad) {
		t.Fatal("never-ready pod became Ready")
	}
}

// TestReadyDelayAnnotation proves the per-pod readiness delay override: a pod
// annotated with a long delay is not Ready when a default-delay pod created
// after it already is.
func TestReadyDelayAnnotation(t *testing.T) {
	cs := testenv.Client(t)
	ns := testenv.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pw := testenv.WatchPods(t, cs, ns, "probe")
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "slow", Labels: map[string]string{"probe": "1"},
			Annotations: map[string]string{localcluster.ReadyDelayAnnotation: "1h"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "fast", Labels: map[string]string{"probe": "1"}}},
	} {
		p.Spec.Containers = []corev1.Container{{Name: "c", Image: "x"}}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := pw.Until(ctx, "fast Ready", func(pods []corev1.Pod) bool {
		for _, p := range pods {
			if p.Name == "fast" && testenv.PodReady(&p) {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := cs.CoreV1().Pods(ns).Get(ctx, "slow", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if testenv.PodReady(slow) {
		t.Fatal("pod with a 1h ready delay is already Ready")
	}
}
